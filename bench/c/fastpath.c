/* Fast path per call at probability 0 (issue 3): a call through the wrapper invite-precompile
 * generates against the same function uninstrumented. Both live in other translation units, so
 * neither call is inlined into the loop; the loop is the same. Blocks of calls alternate between
 * the two (order swapped every round) and the medians of the per-call times are reported.
 *
 * usage: fastpath [ROUNDS] [CALLS_PER_BLOCK] */
#include "bench.h"

int fp_work(int x);  /* instrumented: the wrapper, the site at probability 0 */
int fp_plain(int x); /* the same function, not instrumented */

static double block(long calls, int which) {
    volatile int sink;
    int acc = 0;
    double t0 = now_ns();
    if (which)
        for (long i = 0; i < calls; i++) acc += fp_work((int)i);
    else
        for (long i = 0; i < calls; i++) acc += fp_plain((int)i);
    double t = now_ns() - t0;
    sink = acc;
    (void)sink;
    return t / calls;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 41;
    long calls = argc > 2 ? atol(argv[2]) : 20000000;
    double *wrapped = calloc(rounds, sizeof *wrapped), *plain = calloc(rounds, sizeof *plain);
    block(calls / 10, 1); /* register the site, warm up */
    block(calls / 10, 0);
    for (int r = 0; r < rounds; r++) {
        if (r % 2) {
            wrapped[r] = block(calls, 1);
            plain[r] = block(calls, 0);
        } else {
            plain[r] = block(calls, 0);
            wrapped[r] = block(calls, 1);
        }
    }
    double best_w = wrapped[0], best_p = plain[0];
    for (int r = 0; r < rounds; r++) {
        if (wrapped[r] < best_w) best_w = wrapped[r];
        if (plain[r] < best_p) best_p = plain[r];
    }
    double mw = median(wrapped, rounds), mp = median(plain, rounds);
    printf("# C fast path: wrapper %.3f ns/call, plain %.3f ns/call (medians of %d blocks of %ld calls); "
           "best %.3f vs %.3f\n", mw, mp, rounds, calls, best_w, best_p);
    row("fastpath_c", mw, mp, "ns", rounds);
    info("fastpath_c_best_delta", best_w - best_p, "ns", rounds);
    return 0;
}
