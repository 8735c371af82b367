/* The function under test of the fast-path benchmark. Built twice: as is (the baseline, renamed
 * to fp_plain by -Dfp_work=fp_plain) and through invite-precompile with fastpath_target.ic, whose
 * test has probability 0, so every call takes the wrapper's fast path and no pod ever starts. */
int fp_work(int x)
{
    return x * 3 + 1;
}
