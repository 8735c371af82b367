//! The stock's state machine, without root: a blank over a temporary directory (its "scratch")
//! and pipes for its namespaces, walked through EMPTY → READY → TAKEN → READY → EMPTY.
//! One test: the slots are the process's, and tests run in parallel.

use super::*;
use std::ffi::CString;
use std::os::fd::IntoRawFd;

fn pipe_end() -> RawFd {
    let (r, _) = sys::pipe().expect("pipe");
    r.into_raw_fd()
}

fn blank_over(dir: &std::path::Path) -> Blank {
    std::fs::create_dir_all(dir.join("upper/etc")).unwrap();
    std::fs::create_dir(dir.join(pod::MQUEUE_DIR.to_str().unwrap())).unwrap();
    let path = CString::new(dir.to_str().unwrap()).unwrap();
    let scratch_fd = sys::open(
        &path,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    )
    .expect("open")
    .into_raw_fd();
    let dirs = upper_dirs(dir.to_str().unwrap(), vec!["upper".into()]);
    let baseline = Baseline::of(scratch_fd, &dirs).expect("baseline");
    let [(out_r, out_w), (st_r, st_w)] = [(); 2].map(|()| {
        sys::pipe()
            .map(|(r, w)| (r.into_raw_fd(), w.into_raw_fd()))
            .unwrap()
    });
    Blank {
        ns: [pipe_end(), pipe_end(), pipe_end()],
        scratch_fd,
        dirs,
        out_r,
        st_r,
        out_w,
        st_w,
        scratch: Scratch::decode("0 1\n/tmp/s/root\n/\t/tmp/s/upper\n").unwrap(),
        baseline,
        uses: 0,
    }
}

fn state(i: usize) -> u8 {
    slots()[i].state.load(Ordering::Acquire)
}

#[test]
fn a_blank_is_armed_taken_put_back_recycled_and_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let mut stock = Stock::new(2);
    assert!(take().is_none(), "an empty stock gives nothing");

    let blank = blank_over(tmp.path());
    let (mnt, st_w) = (blank.ns[0], blank.st_w);
    assert_eq!(blank.dirs.len(), 2, "the upper layer and its one directory");
    assert!(blank.pristine(), "as the builder left it");
    stock.blanks[0] = Some(blank);
    stock.arm(0);
    assert_eq!(state(0), READY);

    let t = take().expect("a ready blank");
    assert_eq!(
        (t.index, t.mnt, t.st_w),
        (0, mnt, st_w),
        "what the test needs, published"
    );
    assert_eq!(state(0), TAKEN);
    assert!(take().is_none(), "a taken blank is nobody else's");
    put_back(t);
    assert_eq!(state(0), READY, "a fork that failed gives the blank back");

    let t = take().expect("taken again");
    stock.release(t.index, true);
    assert_eq!(state(0), READY, "a pristine blank goes back in the stock");
    assert_eq!(stock.blank(0).map(|b| b.uses), Some(1));

    // A pod that wrote in its upper layer leaves the blank dirty: the watcher drops it.
    std::fs::write(tmp.path().join("upper/etc/motd"), "changed").unwrap();
    assert!(!stock.blank(0).unwrap().pristine());
    let t = take().expect("taken a third time");
    stock.release(t.index, false);
    assert_eq!(state(0), EMPTY);
    assert!(stock.blank(0).is_none());

    // A blank that served its last pod is dropped even if pristine.
    let tmp2 = tempfile::tempdir().unwrap();
    let mut worn = blank_over(tmp2.path());
    worn.uses = MAX_USES - 1;
    stock.blanks[1] = Some(worn);
    stock.arm(1);
    let t = take().expect("the worn blank");
    assert_eq!(t.index, 1);
    stock.release(1, true);
    assert_eq!(state(1), EMPTY);
    assert!(take().is_none());

    // Shared with the host's forks: a waiting copy takes the blank itself, its descriptors
    // copied out of the host, and leaves its key for the watcher to adopt it by.
    share();
    let host = sys::pidfd_open(sys::getpid()).expect("pidfd").into_raw_fd();
    let tmp3 = tempfile::tempdir().unwrap();
    stock.blanks[0] = Some(blank_over(tmp3.path()));
    stock.arm(0);
    // SAFETY: the child only takes the blank (atomics and system calls) and exits at once.
    match unsafe { sys::fork() }.expect("fork") {
        sys::Forked::Child => {
            // Through the copied write end of the status pipe, the host reads it.
            let ok = borrow(host, 42).is_some_and(|t| {
                [t.mnt, t.ipc, t.uts, t.out_w]
                    .iter()
                    .all(|fd| sys::get_fd_flags(*fd).is_ok())
                    && sys::write(t.st_w, b"x").is_ok_and(|n| n == 1)
            });
            sys::exit_now(if ok { 0 } else { 1 })
        }
        sys::Forked::Parent(pid) => {
            let (_, status, _) = sys::wait4(pid, 0).expect("wait");
            assert_eq!(status, 0, "the copy took the blank and its descriptors");
        }
    }
    let mut got = [0u8; 1];
    let st_r = stock.blank(0).unwrap().st_r;
    assert_eq!(sys::read(st_r, &mut got).ok(), Some(1));
    assert_eq!(&got, b"x", "the copy wrote to the blank's own pipe");
    assert_eq!(state(0), TAKEN, "taken in the host's stock, by the copy");
    assert_eq!(borrowed().collect::<Vec<_>>(), vec![(0, 42)]);
    assert!(
        !stock.taken_unwatched(|_| false),
        "a borrowed blank is the lender's to adopt, not a pod the host forked"
    );
    adopted(0);
    assert_eq!(borrowed().count(), 0, "adopted once");
    stock.release(0, false);
    assert_eq!(state(0), EMPTY);
    assert!(
        borrow(host, 43).is_none(),
        "no ready blank: the copy asks the watcher"
    );
    sys::close(host);
}
