/* End to end (issue 3): a CPU-bound program, single-threaded, calling an instrumented function
 * about a million times a second (its test at probability 0.001: a thousand samples a second,
 * far more than a 5 % budget pays for, so the budget decides). Linked once with the
 * uninstrumented e2e_work.c and once with its invite-precompile output; the driver runs the two
 * interleaved and compares calls per second.
 *
 * usage: e2e SECONDS [HEAP_MB]   prints "calls_per_s X" */
#include "bench.h"

unsigned long e2e_step(unsigned long *state, int rounds, unsigned long *heap, unsigned long words);

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 3;
    size_t mb = argc > 2 ? atol(argv[2]) : 0;
    unsigned long *heap = (unsigned long *)grow_resident(mb);
    unsigned long words = (mb << 20) / sizeof *heap, state = 88172645463325252UL, calls = 0;
    double t0 = now_us(), end = t0 + seconds * 1e6, t;
    do {
        for (int i = 0; i < 1024; i++) e2e_step(&state, 300, heap, words);
        calls += 1024;
    } while ((t = now_us()) < end);
    printf("calls_per_s %.1f\nstate %lu\n", calls / ((t - t0) / 1e6), state);
    return 0;
}
