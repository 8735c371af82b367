/* A stand-in for libinvite.a, for the instrumenter's tests only: every sampled site forks; the
 * child runs the test and exits with its verdict, the parent prints one line per test:
 *   [invite] FUNCTION TEST pre|post pass|fail|crash
 * on stdout, or appended to the file $INVITE_STUB_LOG when that is set (bzip2 writes its
 * compressed data to stdout).
 * It implements exactly the call-site API of invite.h, so the generated code is checked against
 * the real header without needing the real runtime. */
#include "invite.h"
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static int in_pod;

int invite_sample_slow(invite_site *site) {
    site->countdown = 1; /* sample every call */
    return site->probability > 0.0;
}

/* The fast path's slow path: the thread's countdowns stay unset, so every call comes here. */
int invite_sample_slow_tls(invite_site *site, long long **countdowns) {
    (void)countdowns;
    return invite_sample_slow(site);
}

int invite_pod_enter(invite_site *site) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        in_pod = 1;
        return 1;
    }
    int status = 0;
    waitpid(pid, &status, 0);
    const char *outcome = WIFEXITED(status) ? (WEXITSTATUS(status) == 0 ? "pass" : "fail")
                          : (WIFSIGNALED(status) && WTERMSIG(status) == 6) ? "fail" : "crash";
    const char *log = getenv("INVITE_STUB_LOG");
    FILE *to = log ? fopen(log, "a") : stdout;
    if (!to) abort();
    fprintf(to, "[invite] %s %s %s %s\n", site->function, site->test,
            site->phase == INVITE_PRE ? "pre" : "post", outcome);
    if (to != stdout) fclose(to);
    return 0;
}

void invite_pod_exit(int passed) {
    fflush(stdout);
    _exit(passed ? 0 : 1);
}

int invite_in_pod(void) { return in_pod; }

void invite_fail_str(const char *message) {
    fprintf(stderr, "%s\n", message);
    if (in_pod) invite_pod_exit(0);
}
