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
    SLOTS[i].state.load(Ordering::Acquire)
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
}
