/* From the call to the child's code running, at tiny resident size (issue 2), interleaved:
 *  - ckpt(): the call in the host to the first line of the pod's code. The pod prints a
 *    CLOCK_MONOTONIC timestamp (pods cannot write back to the host; stdout lands in the journal
 *    record's `output`), the host keeps its start times and joins the two by pod id afterwards.
 *  - raw fork() (THE BASELINE): fork() to the child's first line; the child writes its timestamp
 *    to a pipe.
 *  - naive unshare: fork(), the child unshares every namespace (user, mount, pid, net with a fresh
 *    network namespace, ipc, uts) and forks again to be in the new PID namespace; the grandchild's
 *    first line writes its timestamp to a pipe. No mounts, no overlay, no supervision.
 * The host waits for each child (the pod: its journal record) before the next measurement, and
 * takes no CPU from it meanwhile (`wait_lines`).
 *
 * usage: INVITE_JOURNAL=FILE latency RUNS */
#include "bench.h"
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>
#include "invite.h"

static double child_time(int fd) {
    double t = 0;
    if (read(fd, &t, sizeof t) != sizeof t) {
        fprintf(stderr, "latency: child wrote no timestamp\n");
        exit(1);
    }
    return t;
}

int main(int argc, char **argv) {
    const char *journal = getenv("INVITE_JOURNAL");
    if (argc < 2 || !journal) {
        fprintf(stderr, "usage: INVITE_JOURNAL=FILE latency RUNS\n");
        return 2;
    }
    int n = atoi(argv[1]);
    double *fk = calloc(n, 8), *un = calloc(n, 8), *ck = calloc(n, 8), *start = calloc(n + 1, 8);
    int pp[2];
    if (pipe(pp)) return 1;
    long records = count_lines(journal);
    int pods = 0, unshare_failed = 0;
    for (int i = 0; i < n; i++) {
        double t0 = now_us();
        pid_t p = fork();
        if (p == 0) {
            double t = now_us();
            if (write(pp[1], &t, sizeof t)) {}
            _exit(0);
        }
        fk[i] = child_time(pp[0]) - t0;
        waitpid(p, NULL, 0);

        t0 = now_us();
        p = fork();
        if (p == 0) {
            if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |
                        CLONE_NEWUTS)) {
                double t = -1;
                if (write(pp[1], &t, sizeof t)) {}
                _exit(1);
            }
            pid_t q = fork();
            if (q == 0) {
                double t = now_us();
                if (write(pp[1], &t, sizeof t)) {}
                _exit(0);
            }
            waitpid(q, NULL, 0);
            _exit(0);
        }
        double t = child_time(pp[0]);
        if (t < 0) unshare_failed = 1;
        un[i] = t - t0;
        waitpid(p, NULL, 0);

        t0 = now_us();
        int id = ckpt();
        if (id > 0) {
            printf("T=%.3f\n", now_us());
            exit(0);
        }
        if (id < 0) {
            fprintf(stderr, "latency: ckpt() failed: %s\n", invite_last_error());
            return 1;
        }
        start[++pods] = t0;
        records = wait_lines(journal, records, 30e6);
    }
    /* Join: each test record names its pod ("pod":"K") and carries the pod's "T=..." line. */
    FILE *f = fopen(journal, "r");
    static char line[1 << 17];
    int got = 0;
    while (f && fgets(line, sizeof line, f)) {
        char *pod = strstr(line, "\"pod\":\""), *out = strstr(line, "T=");
        if (!strstr(line, "\"kind\":\"test\"") || !pod || !out) continue;
        int k = atoi(pod + 7);
        if (k >= 1 && k <= pods && got < n) ck[got++] = atof(out + 2) - start[k];
    }
    if (f) fclose(f);
    if (unshare_failed) fprintf(stderr, "latency: unshare() failed in the naive child\n");
    double c = median(ck, got), b = median(fk, n), u = median(un, n);
    printf("# call to child code: ckpt() %.1f us (%d of %d pods), raw fork %.1f us, naive unshare "
           "%.1f us; medians\n", c, got, n, b, u);
    row("latency_ckpt_vs_fork", c, b, "us", got);
    row("latency_ckpt_vs_unshare", c, u, "us", got);
    info("latency_unshare", u, "us", n);
    return got == n && !unshare_failed ? 0 : 1;
}
