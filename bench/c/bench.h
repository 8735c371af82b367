/* Shared helpers of the benchmark harnesses: a monotonic clock, medians, resident memory, and
 * the one output format the driver (scripts/bench.sh) reads:
 *
 *   row KEY FIGURE BASELINE UNIT N     one table row: figure and its baseline, same run
 *   info KEY VALUE UNIT N              a figure shown beside the table (no baseline)
 *
 * Everything else a harness prints is for humans. */
#ifndef INVITE_BENCH_H
#define INVITE_BENCH_H
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static inline double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static inline double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int bench_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of v[0..n) (sorts v). */
static inline double median(double *v, int n) {
    if (n <= 0) return 0.0 / 0.0;
    qsort(v, n, sizeof *v, bench_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Make the process `mb` MiB bigger, every page touched (written), as a live program's heap is. */
static inline char *grow_resident(size_t mb) {
    if (!mb) return NULL;
    char *p = malloc(mb << 20);
    if (!p) { perror("malloc"); exit(1); }
    memset(p, 1, mb << 20);
    return p;
}

static inline void row(const char *key, double figure, double baseline, const char *unit, int n) {
    printf("row %s %.4f %.4f %s %d\n", key, figure, baseline, unit, n);
    fflush(stdout);
}

static inline void info(const char *key, double value, const char *unit, int n) {
    printf("info %s %.4f %s %d\n", key, value, unit, n);
    fflush(stdout);
}

/* Count complete lines in a file (the journal: one record per line). */
static inline long count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    long n = 0;
    char buf[1 << 16];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0)
        for (size_t i = 0; i < got; i++) n += buf[i] == '\n';
    fclose(f);
    return n;
}

/* Wait until the journal at `path` has more than `lines` lines, for at most `timeout_us`; returns
 * its lines. The waiting host must take no CPU from the pod it waits for (a raw fork's parent
 * waits blocked in read()): it looks at the file's size every 500 us and reads the file only
 * when the size changed, instead of counting a growing journal's lines every 100 us. */
static inline long wait_lines(const char *path, long lines, double timeout_us) {
    struct stat st;
    off_t seen = -1;
    long n = lines;
    for (double deadline = now_us() + timeout_us; now_us() < deadline; usleep(500)) {
        if (stat(path, &st) != 0 || st.st_size == seen) continue;
        seen = st.st_size;
        if ((n = count_lines(path)) > lines) break;
    }
    return n;
}
#endif
