/* ckpt() to the pod's code with a 1 GiB file open for writing in the host, against the same with
 * no file open (issue 20), interleaved in one run: pods copy a file the host writes only when the
 * test writes it, so its size must not show in the pod's start.
 *   - figure: the host holds FILE (1 GiB of data, written once) open O_RDWR across ckpt();
 *   - baseline: the same host with the file closed.
 * The pod prints a CLOCK_MONOTONIC timestamp; the host joins it with its start time by pod id.
 *
 * usage: INVITE_JOURNAL=FILE openfile RUNS DATAFILE [MIB] */
#include "bench.h"
#include <fcntl.h>
#include <unistd.h>
#include "invite.h"

int main(int argc, char **argv) {
    const char *journal = getenv("INVITE_JOURNAL");
    if (argc < 3 || !journal) {
        fprintf(stderr, "usage: INVITE_JOURNAL=FILE openfile RUNS DATAFILE [MIB]\n");
        return 2;
    }
    int n = atoi(argv[1]);
    long mib = argc > 3 ? atol(argv[3]) : 1024;
    int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    static char chunk[1 << 20];
    memset(chunk, 'd', sizeof chunk);
    for (long i = 0; fd >= 0 && i < mib; i++)
        if (write(fd, chunk, sizeof chunk) != (ssize_t)sizeof chunk) return 1;
    if (fd < 0 || fsync(fd) != 0) return 1;
    close(fd);
    double *start = calloc(2 * n + 1, 8), *with = calloc(n, 8), *without = calloc(n, 8);
    char *open_at = calloc(2 * n + 1, 1);
    long records = count_lines(journal);
    int pods = 0;
    for (int i = 0; i < 2 * n; i++) {
        int opened = (i % 2) == 0;
        fd = opened ? open(argv[2], O_RDWR | O_CLOEXEC) : -1;
        double t0 = now_us();
        int id = ckpt();
        if (id > 0) {
            printf("T=%.3f\n", now_us());
            exit(0);
        }
        if (id < 0) {
            fprintf(stderr, "openfile: ckpt() failed: %s\n", invite_last_error());
            return 1;
        }
        start[++pods] = t0;
        open_at[pods] = (char)opened;
        if (fd >= 0) close(fd);
        records = wait_lines(journal, records, 30e6); /* takes no CPU from the pod meanwhile */
    }
    FILE *f = fopen(journal, "r");
    static char line[1 << 17];
    int nw = 0, no = 0;
    while (f && fgets(line, sizeof line, f)) {
        char *pod = strstr(line, "\"pod\":\""), *out = strstr(line, "T=");
        if (!strstr(line, "\"kind\":\"test\"") || !pod || !out) continue;
        int k = atoi(pod + 7);
        if (k < 1 || k > pods) continue;
        double d = atof(out + 2) - start[k];
        if (open_at[k] && nw < n) with[nw++] = d;
        else if (!open_at[k] && no < n) without[no++] = d;
    }
    if (f) fclose(f);
    unlink(argv[2]);
    double w = median(with, nw), o = median(without, no);
    printf("# ckpt() to pod code: %.1f us with a %ld MiB file open for writing (%d pods), %.1f us "
           "without (%d pods); medians\n", w, mib, nw, o, no);
    row("latency_open_1g", w, o, "us", nw < no ? nw : no);
    return nw == n && no == n ? 0 : 1;
}
