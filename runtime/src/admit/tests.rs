//! Unit tests of admission (see `admit.rs`).

use super::*;

const SECOND: u64 = 1_000_000_000;

fn limits(max_concurrent: u32, max_queue: u32) -> Limits {
    Limits {
        max_concurrent,
        max_overhead: None,
        max_pod_cpu: None,
        max_queue,
    }
}

const REPEAT: Call = Call {
    first_run: false,
    site: 1,
};
const NEW: Call = Call {
    first_run: true,
    site: 2,
};

/// A world of plain functions with clock `C`.
type At<C> = World<fn(u64) -> bool, fn(u64) -> bool, C, fn(u32) -> bool>;

/// Room everywhere; the host has run `elapsed_ns` on one CPU.
fn world(elapsed_ns: u64) -> At<impl FnOnce() -> Clock> {
    World {
        room: (|_| true) as fn(u64) -> bool,
        queue_room: (|_| true) as fn(u64) -> bool,
        clock: move || Clock {
            elapsed_ns,
            cpus: 1.0,
        },
        alive: (|_| true) as fn(u32) -> bool,
    }
}

fn no_clock() -> At<fn() -> Clock> {
    World {
        room: |_| true,
        queue_room: |_| true,
        clock: || panic!("the clock is read only for a repeat under a budget"),
        alive: |_| true,
    }
}

#[test]
fn past_the_cap_a_call_waits_until_the_queue_is_full() {
    let ledger = Ledger::new();
    let l = limits(2, 2);
    assert_eq!(decide(&ledger, l, REPEAT, world(SECOND)), Ok(Admitted::Run));
    assert_eq!(decide(&ledger, l, REPEAT, world(SECOND)), Ok(Admitted::Run));
    assert!(matches!(
        decide(&ledger, l, REPEAT, world(SECOND)),
        Ok(Admitted::Wait(_, None))
    ));
    assert!(matches!(
        decide(&ledger, l, REPEAT, world(SECOND)),
        Ok(Admitted::Wait(_, None))
    ));
    assert_eq!(decide(&ledger, l, REPEAT, world(SECOND)), Err(Skip::Queue));
    assert_eq!((ledger.running(), ledger.queue().waiting()), (2, 2));
    assert_eq!(
        decide(&ledger, limits(2, 0), REPEAT, world(SECOND)),
        Err(Skip::Concurrency),
        "without a queue, the cap turns calls away"
    );
}

#[test]
fn a_never_run_test_displaces_a_waiting_repeat_when_the_queue_is_full() {
    let ledger = Ledger::new();
    let l = limits(1, 1);
    assert_eq!(decide(&ledger, l, REPEAT, world(SECOND)), Ok(Admitted::Run));
    let Ok(Admitted::Wait(repeat, None)) = decide(&ledger, l, REPEAT, world(SECOND)) else {
        panic!("the repeat waits");
    };
    let Ok(Admitted::Wait(new, Some(gone))) = decide(&ledger, l, NEW, no_clock()) else {
        panic!("the never-run test takes the repeat's place");
    };
    assert_eq!((gone, new.slot), (repeat.key, repeat.slot));
    assert_eq!(gone.site(), 1);
    assert_eq!(
        decide(&ledger, l, NEW, no_clock()),
        Err(Skip::Queue),
        "a never-run test does not displace another"
    );
}

#[test]
fn a_free_slot_goes_to_the_waiters_first_and_never_run_tests_jump_repeats() {
    let ledger = Ledger::new();
    let l = limits(1, 4);
    assert_eq!(decide(&ledger, l, REPEAT, world(SECOND)), Ok(Admitted::Run));
    assert!(matches!(
        decide(&ledger, l, NEW, no_clock()),
        Ok(Admitted::Wait(..))
    ));
    ledger.release();
    assert!(
        matches!(
            decide(&ledger, l, REPEAT, world(SECOND)),
            Ok(Admitted::Wait(..))
        ),
        "a never-run test waits for the free slot: the repeat queues behind it"
    );
    let third = Call {
        first_run: true,
        site: 3,
    };
    assert!(
        matches!(
            decide(&ledger, l, third, no_clock()),
            Ok(Admitted::Wait(..))
        ),
        "another never-run test queues behind the first"
    );
}

#[test]
fn no_memory_for_a_waiting_copy_turns_the_call_away() {
    let ledger = Ledger::new();
    let l = limits(1, 4);
    ledger.reserve_any();
    let short = World {
        queue_room: (|_| false) as fn(u64) -> bool,
        ..world(SECOND)
    };
    assert_eq!(decide(&ledger, l, REPEAT, short), Err(Skip::Queue));
    assert_eq!(ledger.queue().waiting(), 0);
}

#[test]
fn no_room_in_the_cgroup_reserves_nothing_and_asks_for_all_pods() {
    let ledger = Ledger::new();
    ledger.reserve_any();
    let asked = std::cell::Cell::new(0);
    let w = World {
        room: |n| {
            asked.set(n);
            false
        },
        queue_room: |_| true,
        clock: || Clock {
            elapsed_ns: SECOND,
            cpus: 1.0,
        },
        alive: |_| true,
    };
    assert_eq!(decide(&ledger, limits(2, 4), REPEAT, w), Err(Skip::Cgroup));
    assert_eq!(asked.get(), 2, "room for the running pod and this one");
    assert_eq!(ledger.running(), 1);
}

#[test]
fn the_host_budget_is_a_share_of_elapsed_time_and_counts_the_drain_of_the_backlog() {
    let ledger = Ledger::new();
    let l = Limits {
        max_overhead: Some(10.0),
        ..limits(1, 8)
    };
    assert_eq!(
        decide(
            &ledger,
            Limits {
                max_overhead: Some(0.0),
                ..l
            },
            NEW,
            no_clock()
        ),
        Err(Skip::Budget),
        "a budget of 0 starts nothing, not even a new test"
    );
    ledger.charge(50_000_000); // 50 ms of pauses: 10 % of half a second
    assert_eq!(
        decide(&ledger, l, REPEAT, world(SECOND / 4)),
        Err(Skip::Budget),
        "an idle host's elapsed time counts, not its CPU time"
    );
    assert_eq!(decide(&ledger, l, REPEAT, world(SECOND)), Ok(Admitted::Run));
    ledger.pod_ended(0, 40_000_000); // a pod lasts 40 ms
    ledger.reserve_any();
    // Running at the cap: this call would wait, and the drain would wait for it: 50 + 40 ms.
    assert_eq!(
        decide(&ledger, l, REPEAT, world(SECOND * 8 / 10)),
        Err(Skip::Budget)
    );
    assert!(matches!(
        decide(&ledger, l, REPEAT, world(SECOND)),
        Ok(Admitted::Wait(..))
    ));
    assert!(
        matches!(decide(&ledger, l, NEW, no_clock()), Ok(Admitted::Wait(..))),
        "a never-run test is not held to the budget"
    );
}

#[test]
fn a_spent_budget_stays_shut_only_while_decide_would_refuse_a_repeat() {
    let ledger = Ledger::new();
    let l = Limits {
        max_overhead: Some(5.0),
        ..limits(4, 8)
    };
    let started = 7 * SECOND;
    ledger.charge(10_000_000); // 10 ms spent: 5 % of 200 ms
    assert!(
        !ledger.budget_shut(started),
        "open until a refusal shuts it"
    );
    ledger.shut_budget(started, 5.0);
    for ms in [0, 100, 199, 200, 201, 500] {
        let elapsed = ms * 1_000_000;
        let shut = ledger.budget_shut(started + elapsed);
        assert_eq!(shut, ms < 200, "at {ms} ms");
        if shut {
            assert_eq!(
                decide(&ledger, l, REPEAT, world(elapsed)),
                Err(Skip::Budget),
                "shut at {ms} ms, where decide refuses too"
            );
        }
    }
    // More spent later moves the instant on; an earlier refusal never moves it back.
    ledger.charge(10_000_000);
    ledger.shut_budget(started, 5.0);
    assert!(ledger.budget_shut(started + 399_000_000));
    assert!(!ledger.budget_shut(started + 400_000_000));
    ledger.shut_budget(started, 50.0);
    assert!(ledger.budget_shut(started + 399_000_000));
    // `0` (no pod at all) and `off` never shut it: `decide` says so itself.
    let other = Ledger::new();
    other.charge(SECOND);
    other.shut_budget(started, 0.0);
    assert!(!other.budget_shut(started));
}

#[test]
fn the_pods_cpu_is_a_share_of_the_machine_over_elapsed_time() {
    let ledger = Ledger::new();
    let l = Limits {
        max_pod_cpu: Some(50.0),
        ..limits(8, 8)
    };
    ledger.pod_ended(SECOND / 4, SECOND / 4);
    // 250 ms spent + this one at the mean (250 ms) = 500 ms: half of one CPU over 1 s.
    assert_eq!(decide(&ledger, l, REPEAT, world(SECOND)), Ok(Admitted::Run));
    // Now 250 + two at 250 = 750 ms > 500 ms.
    assert_eq!(decide(&ledger, l, REPEAT, world(SECOND)), Err(Skip::PodCpu));
    let two_cpus = World {
        room: |_| true,
        queue_room: |_| true,
        clock: || Clock {
            elapsed_ns: SECOND,
            cpus: 2.0,
        },
        alive: |_| true,
    };
    assert_eq!(
        decide(&ledger, l, REPEAT, two_cpus),
        Ok(Admitted::Run),
        "two CPUs allow twice as much"
    );
}

#[test]
fn a_copy_on_write_fault_has_a_measurable_cost() {
    let ns = crate::sys::measure_cow_fault_ns().expect("measured");
    assert!((1..1_000_000).contains(&ns), "{ns} ns per fault");
    eprintln!("cow fault: {ns} ns");
}

#[test]
fn pods_cpu_is_the_hosts_loss_only_beyond_the_machines_idle_time() {
    assert_eq!(crowded(30_000_000, 0), 30_000_000); // every core busy: all of it
    assert_eq!(crowded(30_000_000, 10_000_000), 20_000_000);
    assert_eq!(crowded(30_000_000, 200_000_000), 0); // idle cores ran the pods
}

#[test]
fn with_every_slot_taken_a_call_asks_no_waiters_liveness() {
    let ledger = Ledger::new();
    let l = limits(1, 1);
    assert_eq!(decide(&ledger, l, REPEAT, world(SECOND)), Ok(Admitted::Run));
    let t = ledger
        .queue()
        .enqueue(ledger.queue().key(true, 1), 1)
        .unwrap();
    ledger.queue().set_pid(t, 100);
    // A host whose calls find the queue full and every slot taken (what a host calling faster
    // than pods end does all the time): each look cost a `kill(pid, 0)` for nothing.
    let w = World {
        room: |_| true,
        queue_room: |_| true,
        clock: || Clock {
            elapsed_ns: SECOND,
            cpus: 1.0,
        },
        alive: |_| panic!("a waiter's liveness asked with every slot taken"),
    };
    assert_eq!(decide(&ledger, l, REPEAT, w), Err(Skip::Queue));
}
