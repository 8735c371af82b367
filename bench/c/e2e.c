/* End to end (issue 3): a CPU-bound program, single-threaded, calling an instrumented function
 * about a million times a second (its test at probability 0.001: a thousand samples a second,
 * far more than a 5 % budget pays for, so the budget decides). Linked once with the
 * uninstrumented e2e_work.c and once with its invite-precompile output; the driver runs the two
 * interleaved and compares calls per second.
 *
 * With THREADS > 1 (0: one per core), that many threads each run the loop (no heap): a host
 * that uses every core; calls per second are their sum.
 *
 * usage: e2e SECONDS [HEAP_MB [THREADS]]   prints "calls_per_s X" */
#include <pthread.h>
#include <unistd.h>
#include "bench.h"

unsigned long e2e_step(unsigned long *state, int rounds, unsigned long *heap, unsigned long words);

static double seconds;
static unsigned long *heap, words;

static void *loop(void *arg) {
    unsigned long state = 88172645463325252UL + (unsigned long)arg, calls = 0;
    double t0 = now_us(), end = t0 + seconds * 1e6, t;
    do {
        for (int i = 0; i < 1024; i++) e2e_step(&state, 300, heap, words);
        calls += 1024;
    } while ((t = now_us()) < end);
    static double total;
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lock);
    total += calls / ((t - t0) / 1e6);
    pthread_mutex_unlock(&lock);
    printf("state %lu\n", state);
    return &total;
}

int main(int argc, char **argv) {
    seconds = argc > 1 ? atof(argv[1]) : 3;
    size_t mb = argc > 2 ? atol(argv[2]) : 0;
    long threads = argc > 3 ? atol(argv[3]) : 1;
    if (threads <= 0) threads = sysconf(_SC_NPROCESSORS_ONLN);
    heap = (unsigned long *)grow_resident(mb);
    words = threads > 1 ? 0 : (mb << 20) / sizeof *heap;
    pthread_t t[256];
    if (threads > 256) threads = 256;
    double *total = NULL;
    for (long i = 1; i < threads; i++) pthread_create(&t[i], NULL, loop, (void *)i);
    total = loop(NULL);
    for (long i = 1; i < threads; i++) pthread_join(t[i], NULL);
    printf("calls_per_s %.1f\n", *total);
    return 0;
}
