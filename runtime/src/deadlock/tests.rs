use super::*;

#[test]
fn the_state_is_read_after_the_command_whatever_it_holds() {
    assert_eq!(thread_state("42 (a) b) S 1 42"), Some('S'));
    assert_eq!(thread_state("42 (x) R 1"), Some('R'));
    assert_eq!(thread_state("garbage"), None);
}

#[test]
fn only_futex_waits_without_a_timeout_count() {
    let nr = libc::SYS_futex;
    // pthread_mutex_lock: FUTEX_WAIT | FUTEX_PRIVATE_FLAG, no timeout.
    let lock = format!("{nr} 0x5581d0a4c040 0x80 0x2 0x0 0x0 0x0 0x7ffc 0x7f01");
    assert_eq!(untimed_futex_wait(&lock), Some((0x5581d0a4c040, 0x80)));
    // FUTEX_WAIT_BITSET | PRIVATE | CLOCK_REALTIME with a timeout: a timed wait, not stuck.
    let timed = format!("{nr} 0x10 0x189 0x2 0x7ffc1000 0x0 0xffffffff 0x7ffc 0x7f01");
    assert_eq!(untimed_futex_wait(&timed), None);
    // FUTEX_WAKE is no wait; nanosleep and wait4 are no futex.
    assert_eq!(
        untimed_futex_wait(&format!("{nr} 0x10 0x81 0x1 0x0 0x0 0x0 0 0")),
        None
    );
    assert_eq!(
        untimed_futex_wait("230 0x0 0x0 0x7ffc 0x0 0x0 0x0 0 0"),
        None
    );
    assert_eq!(untimed_futex_wait("running"), None);
    // FUTEX_LOCK_PI without a timeout.
    let pi = format!("{nr} 0x20 0x86 0x0 0x0 0x0 0x0 0 0");
    assert_eq!(untimed_futex_wait(&pi), Some((0x20, 0x86)));
}

#[test]
fn shared_mappings_are_not_private() {
    let maps = "55d0c3e40000-55d0c3e41000 rw-p 00003000 08:01 1234 /usr/bin/x\n\
                7f0000000000-7f0000001000 rw-s 00000000 00:01 99 /dev/zero (deleted)\n";
    assert!(in_private_mapping(maps, 0x55d0c3e40010));
    assert!(!in_private_mapping(maps, 0x7f0000000010));
    assert!(!in_private_mapping(maps, 0x10));
}

#[test]
fn a_watch_names_nothing_before_its_first_period() {
    let mut w = Watch::new(1_000);
    assert_eq!(w.due_ns(), 1_000 + PERIOD_NS);
    assert_eq!(
        w.look(std::process::id() as i32, 1_000, Origin::default()),
        None
    );
    // This process is running: never deadlocked.
    let now = w.due_ns();
    assert_eq!(
        w.look(std::process::id() as i32, now, Origin::default()),
        None
    );
    let now = w.due_ns();
    assert_eq!(
        w.look(std::process::id() as i32, now, Origin::default()),
        None
    );
}
