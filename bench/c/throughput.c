/* Sustained pod tests per second (issue 3): a tiny process calls a site at probability 1 with a
 * trivial test for a fixed wall time; the pods' journal records are counted. When admission turns
 * a call away (all INVITE_MAX_CONCURRENT slots busy), the host sleeps 50 us, as a host doing its
 * own work would, instead of spinning on a core the pods need.
 *
 * The baseline, in the same run: the same loop with a raw fork() per test (the child runs the
 * trivial test and _exit()s), at most the same number of children at once, reaped by the host.
 *
 * usage: INVITE_JOURNAL=FILE INVITE_MAX_CONCURRENT=C throughput SECONDS
 * Prints the pod rate from the records (time from the first call until the last record is
 * written, every pod drained). */
#include "bench.h"
#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>
#include "invite.h"

static volatile int state = 7;

static int trivial_test(int x) { return x == 7; }

static int work(int x) { return x * 2; }

static int work_wrapped(int x, long *started) {
    static invite_site site = INVITE_SITE("work", "trivial_test", "throughput.c", 24, INVITE_PRE, 1.0, 0);
    if (invite_sample(&site)) {
        ++*started;
        if (invite_pod_enter(&site)) invite_pod_exit(trivial_test(x));
    } else {
        usleep(50);
    }
    return work(x);
}

static double fork_rate(double seconds, int concurrent) {
    long done = 0;
    int running = 0;
    double t0 = now_us(), end = t0 + seconds * 1e6;
    while (now_us() < end) {
        while (running > 0 && waitpid(-1, NULL, WNOHANG) > 0) running--, done++;
        if (running >= concurrent) {
            usleep(50);
            continue;
        }
        pid_t p = fork();
        if (p == 0) _exit(trivial_test(state) ? 0 : 1);
        if (p > 0) running++;
    }
    while (running > 0 && waitpid(-1, NULL, 0) > 0) running--, done++;
    return done / ((now_us() - t0) / 1e6);
}

int main(int argc, char **argv) {
    const char *journal = getenv("INVITE_JOURNAL");
    const char *conc = getenv("INVITE_MAX_CONCURRENT");
    if (argc < 2 || !journal || !conc) {
        fprintf(stderr, "usage: INVITE_JOURNAL=FILE INVITE_MAX_CONCURRENT=C throughput SECONDS\n");
        return 2;
    }
    double seconds = atof(argv[1]);
    long before = count_lines(journal), started = 0, sum = 0;

    double forks = fork_rate(seconds, atoi(conc));

    double t0 = now_us(), end = t0 + seconds * 1e6;
    while (now_us() < end) sum += work_wrapped(state, &started);
    /* Drain: wait until every started pod has its record. */
    double deadline = now_us() + 60e6;
    while (count_lines(journal) - before < started && now_us() < deadline) usleep(1000);
    double elapsed = (now_us() - t0) / 1e6;
    long records = count_lines(journal) - before;

    FILE *f = fopen(journal, "r");
    static char line[1 << 17];
    long pass = 0;
    while (f && fgets(line, sizeof line, f))
        pass += strstr(line, "\"kind\":\"test\"") && strstr(line, "\"outcome\":\"pass\"");
    if (f) fclose(f);
    double rate = records / elapsed;
    printf("# %ld pod tests in %.2f s (%ld pass): %.0f/s; raw fork tests %.0f/s; concurrency %s\n",
           records, elapsed, pass, rate, forks, conc);
    row("throughput", rate, forks, "tests/s", (int)records);
    return records == started && pass == records && sum ? 0 : 1;
}
