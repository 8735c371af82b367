/* Parent pause per ckpt() against a raw fork() at one resident size (issue 2).
 *
 * usage: INVITE_JOURNAL=FILE pause MB RUNS [OPEN]
 *
 * With OPEN (a path, best on XFS or btrfs: issue 20), the host holds that file (8 MiB, written
 * once) open for writing across every round, so ckpt()'s pause includes cloning it (and its
 * companions) where the file system has reflinks; its rows are named pause_MBmb_open_*.
 *
 * Each round, interleaved, with the process MB MiB bigger (every page written):
 *  - ckpt():  the time the host spends in ckpt() (the whole call, not only its fork). The pod
 *             exits at once; the host waits for its journal record before the next round, so
 *             pods never overlap the next measurement.
 *  - fork, child lives on (THE BASELINE): the time fork() takes to return in the parent while the
 *             child stays alive for a while, as a pod's supervisor does (it forks twice more,
 *             builds the pod, waits for the test); the parent reaps it after it exits.
 *  - fork, waited: the child _exit()s at once and the parent waitpid()s it right away; reported
 *             both as the fork() pause and as the whole fork-to-reaped cycle.
 *
 * Rows: the median ckpt() pause against the fork whose child lives on (pause_MBmb) and against
 * the fork whose previous child was already reaped (pause_MBmb_vs_reaped: what a pod's pause adds
 * to a bare fork); and the worst of the first three ckpt() calls, where the runtime starts up
 * (the first pods while no blank is ready yet), against the worst of the same process's first
 * three forks whose child lives on (pause_MBmb_first3): the same statistic of the same fresh
 * process's raw forks (the worst of three samples of any pause lies above their median, and a
 * process's first forks are its dearest). The median fork of the whole run, which the row was
 * read against before, is the pause_MBmb row's baseline. */
#include "bench.h"
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#include "invite.h"

static void wait_records(const char *journal, long want) {
    double deadline = now_us() + 30e6;
    while (count_lines(journal) < want) {
        if (now_us() > deadline) {
            fprintf(stderr, "pause: no journal record after 30 s\n");
            exit(1);
        }
        usleep(200);
    }
}

int main(int argc, char **argv) {
    const char *journal = getenv("INVITE_JOURNAL");
    if (argc < 3 || !journal) {
        fprintf(stderr, "usage: INVITE_JOURNAL=FILE pause MB RUNS [OPEN]\n");
        return 2;
    }
    const char *open_file = argc > 3 ? argv[3] : NULL;
    const char *suffix = open_file ? "_open" : "";
    if (open_file) {
        static char chunk[1 << 20];
        memset(chunk, 'd', sizeof chunk);
        int fd = open(open_file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        for (int i = 0; fd >= 0 && i < 8; i++)
            if (write(fd, chunk, sizeof chunk) != (ssize_t)sizeof chunk) return 1;
        if (fd < 0 || fsync(fd) != 0) {
            fprintf(stderr, "pause: cannot write %s\n", open_file);
            return 1;
        }
        /* Left open for writing: the host's file as pods see it. */
    }
    size_t mb = atol(argv[1]);
    int n = atoi(argv[2]);
    char *heap = grow_resident(mb);
    /* How long the baseline's child lives: about as long as a pod at this size. */
    useconds_t live = 2000 + (useconds_t)mb * 40;
    double *ck = calloc(n, 8), *fl = calloc(n, 8), *fw = calloc(n, 8), *fwc = calloc(n, 8);
    long records = count_lines(journal);
    for (int i = 0; i < n; i++) {
        /* Touch the heap again so every round starts from the same state: pages written since
         * the last fork are private again. */
        for (size_t off = 0; off < (mb << 20); off += 4096) heap[off]++;

        double t0 = now_us();
        int id = ckpt();
        if (id > 0) _exit(0);
        ck[i] = now_us() - t0;
        if (id < 0) {
            fprintf(stderr, "pause: ckpt() failed: %s\n", invite_last_error());
            return 1;
        }
        wait_records(journal, ++records);
        /* The supervisor journals, then exits: let it tear its copy of the address space down
         * before the next fork, as the baseline's child has when waitpid() returns. */
        usleep(1000 + (useconds_t)mb * 20);

        for (size_t off = 0; off < (mb << 20); off += 4096) heap[off]++;
        t0 = now_us();
        pid_t p = fork();
        if (p == 0) {
            usleep(live);
            _exit(0);
        }
        fl[i] = now_us() - t0;
        waitpid(p, NULL, 0);

        for (size_t off = 0; off < (mb << 20); off += 4096) heap[off]++;
        t0 = now_us();
        p = fork();
        if (p == 0) _exit(0);
        fw[i] = now_us() - t0;
        waitpid(p, NULL, 0);
        fwc[i] = now_us() - t0;
    }
    /* The first three before median() sorts the array. The first includes the runtime's one-time
     * start-up (configuration, journal, the plan from the mount table). */
    double firsts[3] = {0, 0, 0}, first3 = 0, first3_fork = 0;
    for (int i = 0; i < n && i < 3; i++) {
        firsts[i] = ck[i];
        first3 = ck[i] > first3 ? ck[i] : first3;
        first3_fork = fl[i] > first3_fork ? fl[i] : first3_fork;
    }
    double c = median(ck, n), l = median(fl, n), w = median(fw, n), wc = median(fwc, n);
    printf("# %zu MiB%s: ckpt() pause %.1f us, fork pause (child lives on) %.1f us (x%.2f), "
           "fork pause (waited) %.1f us, fork..waitpid %.1f us; medians of %d\n",
           mb, open_file ? ", a file open for writing" : "", c, l, c / l, w, wc, n);
    char key[64];
    snprintf(key, sizeof key, "pause_%zumb%s", mb, suffix);
    row(key, c, l, "us", n);
    snprintf(key, sizeof key, "pause_%zumb%s_vs_reaped", mb, suffix);
    row(key, c, w, "us", n);
    snprintf(key, sizeof key, "pause_%zumb%s_first3", mb, suffix);
    row(key, first3, first3_fork, "us", n < 3 ? n : 3);
    snprintf(key, sizeof key, "pause_%zumb%s_first_ckpt", mb, suffix);
    info(key, firsts[0], "us", 1);
    for (int i = 1; i < n && i < 3; i++) {
        snprintf(key, sizeof key, "pause_%zumb%s_ckpt_%d", mb, suffix, i + 1);
        info(key, firsts[i], "us", 1);
    }
    snprintf(key, sizeof key, "pause_%zumb%s_fork_waited", mb, suffix);
    info(key, w, "us", n);
    snprintf(key, sizeof key, "pause_%zumb%s_fork_wait_cycle", mb, suffix);
    info(key, wc, "us", n);
    return 0;
}
