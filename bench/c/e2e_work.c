/* The work of the end-to-end benchmark: a CPU-bound step (xorshift rounds) that also writes one
 * word of the program's heap, a page further on each call, as a program with live data does
 * (after a fork, each such write first copies its page). Built as is and, with e2e_work.ic,
 * through invite-precompile. */
unsigned long e2e_step(unsigned long *state, int rounds, unsigned long *heap, unsigned long words)
{
    unsigned long x = *state;
    for (int i = 0; i < rounds; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    *state = x;
    if (words) {
        static unsigned long at;
        heap[at] = x;
        at = (at + 4096 / sizeof *heap + 1) % words;
    }
    return x;
}
