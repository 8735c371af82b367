/*
 * invite.h — in vivo testing for C.
 *
 * Two layers:
 *   1. ckpt(): the seed's contract. Checkpoint the calling process into an isolated pod.
 *   2. The call-site API used by code that invite-precompile generates (and by hand-written wrappers).
 *
 * Link with `invite-precompile --libs` (static by default). See README.md for the full contract.
 */
#ifndef INVITE_H
#define INVITE_H

#include <stdarg.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- ckpt() ------------------------------------------------------------------------------
 * Returns < 0: a negative errno, no pod was started (see invite_last_error()).
 *           0: in the original process, which goes on as if nothing happened.
 *         > 0: in the pod; the value is its child id: 1, 2, 3 for the first, second, third pod
 *              this process started. The pod ends when its code exits; exit status 0 is `pass`,
 *              any other status `fail`, death by a signal `crash` (SIGABRT: `fail`).
 * Held to INVITE_MAX_CONCURRENT: with every slot taken, -EAGAIN (call it again later).
 * The macro records the caller's file:line as the pod's site; (ckpt)() calls the function itself.
 */
int ckpt(void);
int invite_ckpt_at(const char *file, int line, const char *function);
#define ckpt() invite_ckpt_at(__FILE__, __LINE__, __func__)

/* ---- invite_checkpoint() ------------------------------------------------------------------
 * Keep a live checkpoint named NAME (1-32 of A-Z a-z 0-9 _ -): a frozen copy-on-write copy of this
 * process, parked beside it, from which an operator starts pods later (`invite branch NAME`).
 * Returns < 0: a negative errno, no checkpoint (see invite_last_error()): EINVAL a bad name,
 *              EEXIST the name is taken, EAGAIN too many live checkpoints, ENOTSUP in a pod or
 *              isolation unavailable, ECANCELED in vivo testing off.
 *           0: in the original process, at once.
 *         > 0: in the k-th pod branched from the checkpoint: k = 1, 2, 3... Such a pod is
 *              journaled like a ckpt() pod (phase `manual`, test `branch`, pod path NAME/k).
 * The checkpoint lives until `invite drop NAME` or until this process exits.
 * See docs/live-checkpoints.md.
 */
int invite_checkpoint(const char *name);
int invite_checkpoint_at(const char *name, const char *file, int line, const char *function);
#define invite_checkpoint(name) invite_checkpoint_at((name), __FILE__, __LINE__, __func__)

/* The message of the last failure of ckpt() or invite_checkpoint() in this thread (a static
 * string; never NULL). */
const char *invite_last_error(void);

/* End the current in vivo test as `fail` with a message (printf format). Outside a pod this only
 * prints the message to stderr and returns, so the host program keeps running. */
void invite_fail_str(const char *message);
static inline void invite_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void invite_fail(const char *fmt, ...) {
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    invite_fail_str(buf);
}

/* Write the summary record to the journal now (it is also written when the process exits). */
void invite_flush_summary(void);

/* ---- call-site API ------------------------------------------------------------------------
 * One static `invite_site` per (function under test, test). The fast path, invite_sample(), is a
 * relaxed load and store of the calling thread's countdown for the site: no lock, syscall or
 * allocation. When the
 * countdown runs out the runtime decides (probability, concurrency, budget) whether to start a pod.
 *
 *   static invite_site site = INVITE_SITE("withdraw", "check_funds", "bank.c", 42, INVITE_PRE, 0.2, 0);
 *   static invite_site *site_listed INVITE_LISTED = &site;   // optional: see INVITE_LISTED
 *   if (invite_sample(&site) && invite_pod_enter(&site)) {
 *       check_funds(a, amount);            // runs in the pod, on the live state
 *       invite_pod_exit(1);                // never returns
 *   }
 */
enum invite_phase { INVITE_PRE = 1, INVITE_POST = 2 };

typedef struct invite_site {
    long long countdown;       /* runtime-owned: unused since countdowns are per thread (kept: the layout) */
    const char *function;      /* function under test, e.g. "account_withdraw" */
    const char *test;          /* test name, e.g. "check_funds" */
    const char *file;          /* file of the function under test */
    unsigned line;             /* line of the function under test */
    unsigned phase;            /* INVITE_PRE or INVITE_POST */
    double probability;        /* compiled-in probability, 0.0 ..= 1.0 */
    unsigned timeout_ms;       /* per-site deadline; 0 = INVITE_TIMEOUT_MS */
    unsigned index;            /* runtime-owned: the site's slot in each thread's countdowns; 0 = none yet */
    void *next;                /* runtime-owned */
} invite_site;

#define INVITE_SITE(function, test, file, line, phase, probability, timeout_ms) \
    { 0, (function), (test), (file), (line), (phase), (probability), (timeout_ms), 0, 0 }

/* List a site, so that the summary has its row even when its function is never called:
 *   static invite_site *site_listed INVITE_LISTED = &site;
 * puts a pointer to it in the `invite_sites` section, which the runtime reads only when it writes
 * the summary (pointers, not the sites, so that the linker never pads between entries). */
#define INVITE_LISTED __attribute__((section("invite_sites"), used))

/* The calling thread's countdowns, one per site (runtime-owned; null until the thread's first
 * slow path): each thread counts its own calls, so none is lost under many threads. Weak and
 * hidden: one variable per program or shared library however many of its files include this
 * header, and not exported; initial-exec, so reading it is one load. */
__attribute__((weak, visibility("hidden"), tls_model("initial-exec"))) __thread long long *invite_countdowns;

/* Slow path: registers the site on first use, draws the thread's next countdown, and returns 1
 * when a pod should be started now (admission already granted), else 0. `countdowns` is the
 * address of the calling thread's invite_countdowns. */
int invite_sample_slow_tls(invite_site *site, long long **countdowns);
/* The slow path of objects compiled with an earlier invite.h. */
int invite_sample_slow(invite_site *site);

static inline int invite_sample(invite_site *site) {
    long long *cd = invite_countdowns;
    if (__builtin_expect(cd != 0, 1)) {
        unsigned i = __atomic_load_n(&site->index, __ATOMIC_RELAXED);
        long long c = __atomic_load_n(&cd[i], __ATOMIC_RELAXED);
        if (__builtin_expect(c > 1, 1)) {
            __atomic_store_n(&cd[i], c - 1, __ATOMIC_RELAXED);
            return 0;
        }
    }
    return invite_sample_slow_tls(site, &invite_countdowns);
}

/* Start a pod for a sampled site. Returns 1 in the pod (run the test, then invite_pod_exit), 0 in
 * the original (also when no pod could be started: that is journaled or counted, never fatal). */
int invite_pod_enter(invite_site *site);

/* End the test in the pod: passed != 0 is `pass`, 0 is `fail`. Never returns. */
void invite_pod_exit(int passed) __attribute__((noreturn));

/* Non-zero inside a pod. */
int invite_in_pod(void);

#ifdef __cplusplus
}
#endif
#endif /* INVITE_H */
