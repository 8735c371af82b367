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

/* The lines written to `path` past *off, which moves to the end of what was read. */
static long count_lines_from(const char *path, off_t *off) {
    struct stat st;
    if (stat(path, &st) != 0 || st.st_size <= *off) return 0;
    FILE *f = fopen(path, "r");
    if (!f || fseeko(f, *off, SEEK_SET) != 0) {
        if (f) fclose(f);
        return 0;
    }
    long n = 0;
    char buf[1 << 16];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        *off += got;
        for (char *p = buf; (p = memchr(p, '\n', buf + got - p)); p++) n++;
    }
    fclose(f);
    return n;
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
    long started = 0, sum = 0;
    struct stat st;
    off_t journal_size_at_start = stat(journal, &st) == 0 ? st.st_size : 0;

    double forks = fork_rate(seconds, atoi(conc));

    double t0 = now_us(), end = t0 + seconds * 1e6;
    while (now_us() < end) sum += work_wrapped(state, &started);
    /* Drain: wait until every started pod has its record. The journal's new bytes only are read,
     * and only when its size changed: recounting a 10 MB journal every millisecond took a core
     * from the pods for as long as the drain lasted (longer with the queue's backlog). */
    double deadline = now_us() + 60e6;
    long records = 0;
    off_t off = journal_size_at_start;
    for (;;) {
        records += count_lines_from(journal, &off);
        if (records >= started || now_us() >= deadline) break;
        usleep(1000);
    }
    double elapsed = (now_us() - t0) / 1e6;

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
