//! End to end with the real runtime (`libinvite.a`, linked with `--cflags`/`--libs`): the
//! fixtures' tests run in pods and the journal records them. Fails while `libinvite.a` has not
//! been built (`cargo build -p invite-clib --release`), unless INVITE_TESTS_ALLOW_SKIP=1.

mod support;
use std::process::Command;
use support::*;

/// Instrument fixtures/c/DIR/NAME.c, build it against the runtime, run it with every test
/// sampled; returns (stdout, the journal's `kind:"test"` lines, the whole journal).
/// Every test record of a run passed (`text`: what the run printed, for the message).
fn assert_all_passed(tests: &[String], text: &str) {
    assert!(
        tests.iter().all(|l| l.contains("\"outcome\":\"pass\"")),
        "{text}"
    );
}

fn run_fixture(dir: &str, name: &str) -> Option<(String, Vec<String>, String)> {
    run_fixture_with(dir, name, "gcc", &[], &[])
}

/// As `run_fixture`, compiled by `cc`, run with `args` and the extra environment `env`.
fn run_fixture_with(
    dir: &str,
    name: &str,
    cc: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Option<(String, Vec<String>, String)> {
    let Some(rt) = invite_instrumenter::Runtime::locate()
        .ok()
        .filter(|r| r.library.is_some())
    else {
        cannot_run("libinvite.a is not built (cargo build --release -p invite-clib)");
        return None;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join(format!("{name}.c"));
    let o = Command::new(env!("CARGO_BIN_EXE_invite-precompile"))
        .arg(format!("{name}.c"))
        .arg("-o")
        .arg(&out)
        .current_dir(fixtures().join(dir))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let exe = tmp.path().join(name);
    let mut cmd = Command::new(cc);
    cmd.args(["-std=gnu99", "-Wall", "-Wextra", "-Werror"])
        .arg(rt.cflags())
        .arg(&out)
        .arg("-o")
        .arg(&exe);
    cmd.args(rt.libs().unwrap().split_whitespace());
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let journal = tmp.path().join("invite.jsonl");
    let o = output_within(
        Command::new(&exe)
            .args(args)
            .envs(env.iter().copied())
            .env("INVITE_PROBABILITY", "1")
            // Pods run at idle priority: on a loaded machine one can wait seconds for a CPU.
            // The deadline and the exit drain are generous (they are not what these tests check).
            .env("INVITE_TIMEOUT_MS", "60000")
            .env("INVITE_DRAIN_MS", "60000")
            .env("INVITE_MAX_OVERHEAD", "off")
            .env("INVITE_MAX_CONCURRENT", "16")
            .env("INVITE_JOURNAL", &journal)
            .current_dir(tmp.path()),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&journal).unwrap();
    let tests = text
        .lines()
        .filter(|l| l.contains("\"kind\":\"test\""))
        .map(String::from)
        .collect();
    assert!(
        text.lines().any(|l| l.contains("\"kind\":\"summary\"")),
        "{text}"
    );
    Some((String::from_utf8(o.stdout).unwrap(), tests, text))
}

/// The command's output; a run that has not ended after two minutes (a deadlock: these programs
/// take well under a second) is killed and fails the test instead of hanging it.
fn output_within(cmd: &mut Command) -> std::process::Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(120) {
            let _ = child.kill();
            panic!("the program never ended (a deadlock? killed after two minutes)");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn has(tests: &[String], test: &str, outcome: &str) -> bool {
    tests.iter().any(|l| {
        l.contains(&format!("\"test\":\"{test}\""))
            && l.contains(&format!("\"outcome\":\"{outcome}\""))
    })
}

#[test]
fn bank_overdraft_is_journaled_as_a_failure() {
    let Some((stdout, tests, text)) = run_fixture("legacy", "bank") else {
        return;
    };
    assert_eq!(stdout, "ada: balance -1 after 3 transactions\n");
    assert!(has(&tests, "check_after", "fail"), "{text}");
    assert!(has(&tests, "check_funds", "pass"), "{text}");
    assert!(has(&tests, "deposit_sane", "pass"), "{text}");
    assert!(
        tests.iter().all(|l| l.contains("\"site\":\"bank.c:")),
        "{text}"
    );
}

#[test]
fn seed_demo_tests_pass_in_pods() {
    let Some((stdout, tests, text)) = run_fixture("seed", "testinviteckpt") else {
        return;
    };
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    for t in ["sum_pre", "sum_post", "max_is_bound", "sorted"] {
        assert!(has(&tests, t, "pass"), "{t}: {text}");
    }
    assert_all_passed(&tests, &text);
}

#[test]
fn outermost_tests_sample_only_the_outermost_call_of_a_recursion() {
    let Some((stdout, tests, text)) = run_fixture("outermost", "recurse") else {
        return;
    };
    assert_eq!(stdout, "120\n6\n");
    let count = |test: &str| {
        tests
            .iter()
            .filter(|l| l.contains(&format!("\"test\":\"{test}\"")))
            .count()
    };
    // fact(5) and fact(3) recurse down to fact(1): 8 calls, 2 of them outermost.
    assert_eq!(count("outer_call_only"), 2, "{text}");
    assert_eq!(count("outer_result"), 2, "{text}");
    assert_eq!(count("every_call"), 8, "{text}");
    assert!(
        tests.iter().all(|l| l.contains("\"outcome\":\"pass\"")),
        "a nested call was tested: {text}"
    );
}

/// The program's own `realloc` is instrumented: the runtime's own allocations (at load, in
/// admission reading the host's limits, in the pod's start probing the plan, on its thread)
/// call it too. Those calls must not be tested (each would wait for the work it is part of, for
/// ever: issue #16's hangs); the program's own calls are, each of them (p = 1), and no other.
#[test]
fn an_instrumented_allocator_is_not_tested_from_inside_the_runtime() {
    let Some((stdout, tests, text)) = run_fixture("allocator", "realloc") else {
        return;
    };
    assert_eq!(stdout, "grew to 256\n");
    assert!(has(&tests, "realloc_sane", "pass"), "{text}");
    assert_all_passed(&tests, &text);
    // main grows its buffer four times: four tests, none of a call the runtime made.
    assert_eq!(tests.len(), 4, "{text}");
}

/// A library with its own `pthread_atfork` prepare handler that takes the lock its instrumented
/// function runs under (jemalloc's shape): glibc's `fork` would run that handler in the sampled
/// call and the host would wait for itself for ever (issue #16). The runtime's fork runs only its
/// own handlers: the host finishes with its own result, the test that only reads passes, and the
/// test that takes the lock its pod inherited held is named a deadlock (`error`). Alone, and with
/// a thread of the program's own running. The program is on glibc's malloc, where the default
/// (`auto`) is glibc's fork, for its malloc resets: `INVITE_FORK=direct` is what such a program
/// sets (README, "The fork").
#[test]
fn a_programs_atfork_handler_does_not_run_in_the_runtimes_fork() {
    for cc in compilers() {
        for args in [&[][..], &["threads"][..]] {
            let Some((stdout, tests, text)) =
                run_fixture_with("atfork", "table", cc, args, &[("INVITE_FORK", "direct")])
            else {
                return;
            };
            assert_eq!(stdout, "sum 60\n", "{cc} {args:?}");
            let of = |test: &str| {
                tests
                    .iter()
                    .filter(|l| l.contains(&format!("\"test\":\"{test}\"")))
                    .collect::<Vec<_>>()
            };
            // Three calls, every one sampled.
            let (reads, relocks) = (of("slot_in_range"), of("sum_under_held_lock"));
            assert_eq!(
                (reads.len(), relocks.len()),
                (3, 3),
                "{cc} {args:?}: {text}"
            );
            assert!(
                reads.iter().all(|l| l.contains("\"outcome\":\"pass\"")),
                "{text}"
            );
            for l in relocks {
                assert!(l.contains("\"outcome\":\"error\""), "{cc} {args:?}: {l}");
                assert!(l.contains("deadlock") && l.contains("table_lock"), "{l}");
            }
        }
    }
}

/// An allocator that calls an instrumented function while holding its own lock, which its
/// `malloc` takes (jemalloc's shape, without atfork handlers). From the sampled call to the fork,
/// and in the host until the call returns, the runtime must not allocate (it would wait for the
/// lock its own thread holds: the first call's `OnceLock`s in `sample_slow`, admission's reads of
/// /proc and the cgroup files, the pods' cgroup, the plan, the warm state were all made there);
/// in the fork's copy, which inherits the lock held for ever, neither may the supervisor, the
/// pod's setup or the runtime after the test (they use pages of their own, `sys::heap`, and no
/// `opendir`). The fixture's allocator aborts with its caller's stack where it would have waited.
/// Cold pods, then 60 calls with warm pods and the wait queue (`INVITE_WARM=wait`: every pod
/// warm where the host is root), then on a thread of the program's own (its first warm pod
/// registered a thread-local destructor through `calloc`): every started test has its record,
/// and passed. In the host, the runtime's thread, which lends blanks to waiting copies and makes
/// new ones while the call waits for one, must not call that `malloc` either (it would wait
/// until the call returns, and the call for it: a stall of a second, the wait's limit, per
/// call); the fixture aborts when another thread wants its lock while the call holds it.
#[test]
fn an_allocator_that_holds_its_lock_in_an_instrumented_call_does_not_hang_the_host() {
    let Some((stdout, tests, text)) = run_fixture("allocator", "locked") else {
        return;
    };
    assert_eq!(stdout, "sum 36\n");
    assert_eq!(tests.len(), 8, "{text}");
    assert_all_passed(&tests, &text);
    let Some((stdout, tests, text)) = run_fixture_with(
        "allocator",
        "locked",
        "gcc",
        &["60"],
        // No CPU budget for pods: on a busy machine it would turn calls away, and the count
        // asserted below is of pods, not of the machine's speed.
        &[("INVITE_WARM", "wait"), ("INVITE_MAX_POD_CPU", "off")],
    ) else {
        return;
    };
    assert_eq!(stdout, "sum 1830\n");
    let started = summary_count(&text, "started");
    assert!(started >= 16, "{text}");
    assert_eq!(tests.len() as u64, started, "{text}");
    assert_all_passed(&tests, &text);
    let Some((stdout, tests, text)) = run_fixture_with(
        "allocator",
        "locked",
        "gcc",
        &["8", "thread"],
        &[("INVITE_WARM", "wait")],
    ) else {
        return;
    };
    assert_eq!(stdout, "sum 36\n");
    assert_eq!(tests.len(), 8, "{text}");
    assert_all_passed(&tests, &text);
}

/// The same allocator while another thread loads and unloads a library all along: the dynamic
/// linker frees memory, under its own lock, as it unloads one. A runtime that takes the linker's
/// lock between the sampled call and the fork (to find where the program's code is, say) waits
/// for that thread, which waits for the allocator's lock the call holds: the host hangs, and
/// `run_fixture_with` fails at its time limit (as it did with `be3344a`'s `dl_iterate_phdr` in
/// `ckpt()`).
#[test]
fn a_thread_unloading_libraries_beside_a_locked_allocator_does_not_hang_the_host() {
    let Some((stdout, tests, text)) = run_fixture_with(
        "allocator",
        "locked",
        "gcc",
        &["60", "loader"],
        &[("INVITE_WARM", "wait"), ("INVITE_MAX_POD_CPU", "off")],
    ) else {
        return;
    };
    let (handoffs, sum) = stdout.split_once('\n').unwrap_or_default();
    assert_eq!(sum, "sum 1830\n");
    // The calls that took the allocator's lock while the other thread waited for it in
    // `dlclose` (all 60 here; one inside the linker's lock was enough to hang `be3344a`): a few
    // at least, or the test tests nothing (a starved machine can let some waits run out).
    let handoffs: u32 = handoffs
        .strip_prefix("handoffs ")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(handoffs >= 10, "{stdout}");
    let started = summary_count(&text, "started");
    assert_eq!(tests.len() as u64, started, "{text}");
    assert_all_passed(&tests, &text);
}

/// The summary's `"NAME":N` for the journal's one site.
fn summary_count(journal: &str, name: &str) -> u64 {
    let summary = journal
        .lines()
        .rfind(|l| l.contains("\"kind\":\"summary\""))
        .expect("a summary");
    let key = format!("\"{name}\":");
    let at = summary.find(&key).expect("the count") + key.len();
    summary[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a number")
}
