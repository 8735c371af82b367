/* An idle host (issue 14): a server that waits for requests ~95 % of the time. Each request
 * sleeps SLEEP_MS (the wait), then makes one call of the instrumented function, a step of about
 * a millisecond (e2e_step, 10^6 rounds). Linked once with the uninstrumented e2e_work.c and once
 * with its invite-precompile output through idle_work.ic (the test on one request in four); the
 * driver runs the two interleaved under default settings and compares wall time.
 *
 * usage: idle REQUESTS SLEEP_MS   prints "wall_s X" */
#include <unistd.h>
#include "bench.h"

unsigned long e2e_step(unsigned long *state, int rounds, unsigned long *heap, unsigned long words);

int main(int argc, char **argv) {
    long requests = argc > 1 ? atol(argv[1]) : 100;
    long sleep_ms = argc > 2 ? atol(argv[2]) : 19;
    unsigned long state = 88172645463325252UL;
    double t0 = now_us();
    for (long i = 0; i < requests; i++) {
        usleep(sleep_ms * 1000);
        e2e_step(&state, 1000000, NULL, 0);
    }
    printf("wall_s %.4f\nstate %lu\n", (now_us() - t0) / 1e6, state);
    return 0;
}
