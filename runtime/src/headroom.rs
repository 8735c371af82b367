//! The host's headroom in its cgroups: how much memory and how many processes its cgroup (and
//! every ancestor with a limit) still allows. A pod's memory and processes count against the
//! host's cgroup, so a pod started without room could make the host the one that is OOM-killed
//! or whose `fork()` and `pthread_create()` fail. Admission turns a pod away (skip reason
//! `cgroup`) unless the room left covers every running pod's bound and this one's.
//!
//! cgroup v1 (the `memory` and `pids` hierarchies: `memory.limit_in_bytes` and
//! `memory.usage_in_bytes`, `pids.max` and `pids.current`) and v2 (`memory.max` and
//! `memory.current`, `pids.max` and `pids.current`), found from /proc/self/cgroup and
//! /proc/self/mountinfo once. Usages are read again at most every `REFRESH_NS`, limits (which
//! change only when someone sets them) every `LIMITS_REFRESH_NS`: where no level has a limit, a
//! sampled call reads nothing in between (each reading is a system call on the host's pause).

use std::ffi::CString;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// What one pod may hold of the host's cgroup that the OOM killer cannot take back from its
/// processes: the SysV/POSIX IPC bound, plus working room.
pub const POD_MEMORY: u64 = SHM_BYTES + (64 << 20);
/// SysV shared memory a pod's IPC namespace may hold in all (`shmall`): a segment that would take
/// the total past it fails with ENOSPC, whatever `shmmax` allows. (Applied by `pod::limits`.)
pub const SHM_BYTES: u64 = 64 << 20;
/// Processes one pod may have: its PID namespace's `pid_max` (Linux 6.14+), or RLIMIT_NPROC.
pub const POD_PIDS: u64 = 512;
/// Processes left to the host whatever its pods do.
pub const HOST_PIDS: u64 = 32;

const REFRESH_NS: u64 = 10_000_000;
const LIMITS_REFRESH_NS: u64 = 1_000_000_000;

/// Each cgroup level with a limit file, from the host's own up to the mount's root, and the
/// host's own cgroup directory per controller.
#[derive(Default)]
struct Levels {
    memory: Vec<Level>,
    pids: Vec<Level>,
    own: Vec<Own>,
}

/// One cgroup level with a limit file: its limit as last read, and its usage.
struct Level {
    limit: Counter,
    usage: Counter,
    /// The limit as last read: `UNREAD`, `NO_LIMIT` or the number.
    known: AtomicU64,
}

const UNREAD: u64 = u64::MAX;
const NO_LIMIT: u64 = u64::MAX - 1;

impl Level {
    fn new(limit: PathBuf, usage: PathBuf) -> Level {
        Level {
            limit: Counter::new(limit),
            usage: Counter::new(usage),
            known: AtomicU64::new(UNREAD),
        }
    }

    /// The limit, read now if `reread` or never read, else as last read.
    fn limit(&self, reread: bool) -> Option<u64> {
        match self.known.load(Ordering::Relaxed) {
            UNREAD => {}
            _ if reread => {}
            NO_LIMIT => return None,
            n => return Some(n),
        }
        let limit = self.limit.read();
        self.known
            .store(limit.unwrap_or(NO_LIMIT), Ordering::Relaxed);
        limit
    }
}

/// A limit or usage file, kept open: a reading on admission's path is one `pread`, not an
/// open, a stat, two reads and a close (tens of microseconds of the host's pause). Read into a
/// buffer on the stack: admission runs inside sampled calls, which may hold the program's
/// allocator's lock.
struct Counter {
    path: CString,
    file: Option<std::fs::File>,
    /// The process that opened `file`: in any other (a pod, a parked checkpoint) the runtime's
    /// descriptors are closed, and the number may be another file's.
    opener: libc::pid_t,
}

impl Counter {
    fn new(path: PathBuf) -> Counter {
        let file = std::fs::File::open(&path).ok();
        if let Some(f) = &file {
            crate::ownfd::mark(std::os::fd::AsRawFd::as_raw_fd(f)); // no pod inherits it
        }
        Counter {
            path: CString::new(path.into_os_string().into_encoded_bytes()).unwrap_or_default(),
            file,
            opener: crate::sys::getpid(),
        }
    }

    /// A limit or usage; `None` for `max` and v1's "no limit" (near `i64::MAX`).
    fn read(&self) -> Option<u64> {
        let mut buf = [0u8; 32];
        let n = match &self.file {
            Some(f) if crate::sys::getpid() == self.opener => {
                std::os::unix::fs::FileExt::read_at(f, &mut buf, 0).ok()?
            }
            _ => crate::sys::read_start(&self.path, &mut buf)?,
        };
        parse_number(std::str::from_utf8(&buf[..n]).ok()?)
    }
}

/// The host's cgroup in the hierarchy of one controller.
#[derive(Clone, Debug, PartialEq)]
pub struct Own {
    pub controller: &'static str,
    pub dir: PathBuf,
    /// cgroup v2 (one hierarchy, `memory.max`), else v1.
    pub v2: bool,
}

/// The host's own cgroups, for the controllers the runtime uses.
pub fn own() -> &'static [Own] {
    &LEVELS.get_or_init(find).own
}

/// At start-up: find the host's levels and read them once, so that a first `ckpt()` within
/// `LIMITS_REFRESH_NS` reads no limit.
pub fn read_early() {
    let _ = no_room(0);
}

/// The memory the host's cgroups still allow now (`u64::MAX`: no limit).
pub fn memory_room() -> u64 {
    let limits_due = limits_due(crate::sys::monotonic_ns());
    room(&LEVELS.get_or_init(find).memory, limits_due)
}

/// Whether the limits were last read over `LIMITS_REFRESH_NS` ago (or never).
fn limits_due(now: u64) -> bool {
    let last = LIMITS_AT.load(Ordering::Relaxed);
    last == 0 || now.saturating_sub(last) > LIMITS_REFRESH_NS
}

/// The memory room of the last reading (`no_room`) if it is at most `REFRESH_NS` old, else read
/// now: no second reading right after admission's.
pub fn memory_room_recent() -> u64 {
    let last = READ_AT.load(Ordering::Relaxed);
    if last != 0 && crate::sys::monotonic_ns().saturating_sub(last) <= REFRESH_NS {
        return MEMORY.load(Ordering::Relaxed);
    }
    memory_room()
}

static LEVELS: OnceLock<Levels> = OnceLock::new();
static READ_AT: AtomicU64 = AtomicU64::new(0);
static LIMITS_AT: AtomicU64 = AtomicU64::new(0);
/// `u64::MAX`: no limit.
static MEMORY: AtomicU64 = AtomicU64::new(u64::MAX);
static PIDS: AtomicU64 = AtomicU64::new(u64::MAX);

/// Why the host's cgroup has no room for `pods` pods (this one included), or `None`. Nothing
/// is allocated (admission's path): the reason is put in words only when it is displayed.
pub fn no_room(pods: u64) -> Option<NoRoom> {
    let now = crate::sys::monotonic_ns();
    let last = READ_AT.load(Ordering::Relaxed);
    if last == 0 || now.saturating_sub(last) > REFRESH_NS {
        let levels = LEVELS.get_or_init(find);
        let limits_due = limits_due(now);
        MEMORY.store(room(&levels.memory, limits_due), Ordering::Relaxed);
        PIDS.store(room(&levels.pids, limits_due), Ordering::Relaxed);
        if limits_due {
            LIMITS_AT.store(now.max(1), Ordering::Relaxed);
        }
        READ_AT.store(now.max(1), Ordering::Relaxed);
    }
    let memory = MEMORY.load(Ordering::Relaxed);
    let pids = PIDS.load(Ordering::Relaxed);
    if memory < pods.saturating_mul(POD_MEMORY) {
        return Some(NoRoom::Memory { left: memory, pods });
    }
    if pids < pods.saturating_mul(POD_PIDS).saturating_add(HOST_PIDS) {
        return Some(NoRoom::Pids { left: pids, pods });
    }
    None
}

/// What the host's cgroup lacks for `pods` pods (`no_room`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoRoom {
    Memory { left: u64, pods: u64 },
    Pids { left: u64, pods: u64 },
}

impl fmt::Display for NoRoom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            NoRoom::Memory { left, pods } => write!(
                f,
                "the host's cgroup has {} MiB of memory left, {pods} pod(s) need {} MiB",
                left >> 20,
                (pods * POD_MEMORY) >> 20
            ),
            NoRoom::Pids { left, pods } => write!(
                f,
                "the host's cgroup has room for {left} more processes, {pods} pod(s) need {} and \
                 the host keeps {HOST_PIDS}",
                pods * POD_PIDS
            ),
        }
    }
}

/// Whether memory allows `waiting` frozen copies of the host (the wait queue's snapshots) beside
/// the running pods: each may come to hold as much as the host's resident memory, if the host
/// rewrites every page while it waits. The room is the host's cgroups' (as for `no_room`) and the
/// machine's available memory (`MemAvailable`), read again at most every `REFRESH_NS`.
pub fn queue_room(waiting: u64) -> bool {
    static READ: AtomicU64 = AtomicU64::new(0);
    static FREE: AtomicU64 = AtomicU64::new(u64::MAX);
    static RESIDENT: AtomicU64 = AtomicU64::new(0);
    let now = crate::sys::monotonic_ns();
    let last = READ.load(Ordering::Relaxed);
    if last == 0 || now.saturating_sub(last) > REFRESH_NS {
        // `MemAvailable` is the third line.
        let mut buf = [0u8; 512];
        let available = crate::sys::read_start(c"/proc/meminfo", &mut buf)
            .and_then(|n| kib_of(std::str::from_utf8(&buf[..n]).ok()?, "MemAvailable:"))
            .unwrap_or(u64::MAX);
        FREE.store(memory_room().min(available), Ordering::Relaxed);
        RESIDENT.store(resident_bytes(), Ordering::Relaxed);
        READ.store(now.max(1), Ordering::Relaxed);
    }
    let copies = waiting.saturating_mul(RESIDENT.load(Ordering::Relaxed));
    FREE.load(Ordering::Relaxed) >= copies.saturating_add(POD_MEMORY)
}

/// `NAME: N kB` of /proc/meminfo, in bytes.
fn kib_of(meminfo: &str, name: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with(name))?;
    let kib = line[name.len()..].trim().trim_end_matches("kB").trim();
    kib.parse::<u64>().ok().map(|k| k << 10)
}

/// The host's resident memory that is not shared with files (what a copy could duplicate).
fn resident_bytes() -> u64 {
    let mut buf = [0u8; 128];
    let n = crate::sys::read_start(c"/proc/self/statm", &mut buf).unwrap_or(0);
    let mut f = std::str::from_utf8(&buf[..n])
        .unwrap_or("")
        .split_whitespace()
        .map(|n| n.parse::<u64>().ok());
    let pages = match (f.next(), f.next(), f.next()) {
        (Some(_), Some(Some(resident)), Some(Some(shared))) => resident.saturating_sub(shared),
        _ => 0,
    };
    pages * crate::sys::page_size() as u64
}

/// The least room left over the levels (`u64::MAX` when none has a limit); their limits read
/// again if `reread_limits`, else as last read.
fn room(levels: &[Level], reread_limits: bool) -> u64 {
    levels
        .iter()
        .filter_map(|level| {
            let limit = level.limit(reread_limits)?;
            Some(limit.saturating_sub(level.usage.read().unwrap_or(0)))
        })
        .min()
        .unwrap_or(u64::MAX)
}

fn parse_number(s: &str) -> Option<u64> {
    s.trim().parse::<u64>().ok().filter(|n| *n < 1 << 62)
}

fn find() -> Levels {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    levels_of(&cgroups, &mounts)
}

/// The levels named by `/proc/self/cgroup` (`cgroups`) in the hierarchies of `mountinfo`, those
/// whose limit file exists.
fn levels_of(cgroups: &str, mountinfo: &str) -> Levels {
    let mut levels = Levels::default();
    for line in cgroups.lines() {
        // "ID:CONTROLLERS:PATH"; v2 is "0::PATH".
        let mut it = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        for (ctrl, limit, usage) in [
            ("memory", "limit_in_bytes", "usage_in_bytes"),
            ("pids", "max", "current"),
        ] {
            let v2 = ctrls.is_empty();
            if !v2 && !ctrls.split(',').any(|c| c == ctrl) {
                continue;
            }
            let Some((mount, root)) = mount_of(mountinfo, if v2 { "" } else { ctrl }) else {
                continue;
            };
            let (limit, usage) = if v2 {
                let l = if ctrl == "memory" { "max" } else { limit };
                let u = if ctrl == "memory" { "current" } else { usage };
                (format!("{ctrl}.{l}"), format!("{ctrl}.{u}"))
            } else {
                (format!("{ctrl}.{limit}"), format!("{ctrl}.{usage}"))
            };
            let rel = path.strip_prefix(root.as_str()).unwrap_or(path);
            let mut dir = mount.join(rel.trim_start_matches('/'));
            let enabled = !v2
                || std::fs::read_to_string(dir.join("cgroup.controllers"))
                    .is_ok_and(|c| c.split_whitespace().any(|c| c == ctrl));
            if enabled {
                levels.own.push(Own {
                    controller: ctrl,
                    dir: dir.clone(),
                    v2,
                });
            }
            let out = if ctrl == "memory" {
                &mut levels.memory
            } else {
                &mut levels.pids
            };
            loop {
                if dir.join(&limit).exists() {
                    out.push(Level::new(dir.join(&limit), dir.join(&usage)));
                }
                if dir == mount || !dir.pop() {
                    break;
                }
            }
        }
    }
    levels
}

/// Where the v1 hierarchy of `ctrl` (or v2, for `""`) is mounted, and the cgroup path it shows
/// as its root.
pub(crate) fn mount_of(mountinfo: &str, ctrl: &str) -> Option<(PathBuf, String)> {
    mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let f: Vec<&str> = pre.split(' ').collect();
        let p: Vec<&str> = post.split(' ').collect();
        let (root, point) = (*f.get(3)?, *f.get(4)?);
        let (fstype, opts) = (*p.first()?, *p.get(2)?);
        let hit = if ctrl.is_empty() {
            fstype == "cgroup2"
        } else {
            fstype == "cgroup" && opts.split(',').any(|o| o == ctrl)
        };
        hit.then(|| (PathBuf::from(point), root.to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn available_memory_is_read_from_meminfo() {
        let m = "MemTotal:       16000000 kB\nMemAvailable:    2048 kB\n";
        assert_eq!(kib_of(m, "MemAvailable:"), Some(2 << 20));
        assert_eq!(kib_of(m, "SwapFree:"), None);
        assert!(resident_bytes() > 0);
        assert!(
            queue_room(1),
            "a test process has room for one copy of itself"
        );
        assert!(!queue_room(u64::MAX), "no machine holds that many copies");
    }

    #[test]
    fn mounts_are_found_by_controller() {
        let mi = "30 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                  31 25 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        let (p, r) = mount_of(mi, "memory").unwrap();
        assert_eq!(p, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(r, "/");
        assert!(mount_of(mi, "pids").is_none());
        assert_eq!(
            mount_of(mi, "").unwrap().0,
            Path::new("/sys/fs/cgroup/unified")
        );
    }

    fn write(p: &Path, s: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    }

    /// A v2 tree (as a container with its own cgroup namespace sees it) and a v1 pair of
    /// hierarchies, made of plain files: the least room over every level with a limit counts.
    #[test]
    fn the_least_room_over_every_level_counts_in_v1_and_v2() {
        let t = tempfile::tempdir().unwrap();
        let v2 = t.path().join("v2");
        write(&v2.join("memory.max"), "max\n");
        write(&v2.join("memory.current"), "1000\n");
        write(&v2.join("app/memory.max"), "1073741824\n");
        write(&v2.join("app/memory.current"), "73741824\n");
        write(&v2.join("app/web/memory.max"), "max\n");
        write(&v2.join("app/web/memory.current"), "50\n");
        write(&v2.join("app/web/pids.max"), "100\n");
        write(&v2.join("app/web/pids.current"), "40\n");
        let mi = format!("40 1 0:30 /ctr {} rw - cgroup2 cgroup2 rw\n", v2.display());
        write(&v2.join("app/web/cgroup.controllers"), "cpu memory pids\n");
        let l = levels_of("0::/ctr/app/web\n", &mi);
        assert_eq!(room(&l.memory, true), 1_000_000_000);
        assert_eq!(l.own.len(), 2);
        assert_eq!(l.own[1].dir, v2.join("app/web"));
        assert!(l.own[1].v2);
        assert_eq!(room(&l.pids, true), 60);

        let v1 = t.path().join("v1");
        write(
            &v1.join("memory/a/memory.limit_in_bytes"),
            "9223372036854771712\n",
        );
        write(&v1.join("memory/a/memory.usage_in_bytes"), "5\n");
        write(
            &v1.join("memory/memory.limit_in_bytes"),
            "9223372036854771712\n",
        );
        write(&v1.join("memory/memory.usage_in_bytes"), "5\n");
        write(&v1.join("pids/b/pids.max"), "max\n");
        write(&v1.join("pids/b/pids.current"), "3\n");
        let mi = format!(
            "30 25 0:26 / {m} rw - cgroup cgroup rw,memory\n\
             31 25 0:27 / {p} rw - cgroup cgroup rw,pids\n",
            m = v1.join("memory").display(),
            p = v1.join("pids").display()
        );
        let l = levels_of("4:memory:/a\n8:pids:/b\n0::/\n", &mi);
        assert_eq!(
            room(&l.memory, true),
            u64::MAX,
            "v1's no-limit value is no limit"
        );
        assert_eq!(room(&l.pids, true), u64::MAX);
        assert_eq!(l.own[0].dir, v1.join("memory/a"));
        assert_eq!((l.own[1].controller, l.own[1].v2), ("pids", false));
    }

    /// Limits are read again only when asked (every `LIMITS_REFRESH_NS`), usages on every
    /// reading; a level with no limit has no usage read at all.
    #[test]
    fn limits_are_kept_between_readings_and_usages_are_read_each_time() {
        let t = tempfile::tempdir().unwrap();
        let v2 = t.path().join("v2");
        write(&v2.join("app/memory.max"), "1000\n");
        write(&v2.join("app/memory.current"), "100\n");
        write(&v2.join("app/cgroup.controllers"), "memory\n");
        let mi = format!("40 1 0:30 / {} rw - cgroup2 cgroup2 rw\n", v2.display());
        let l = levels_of("0::/app\n", &mi);
        assert_eq!(room(&l.memory, false), 900, "a limit never read is read");
        write(&v2.join("app/memory.current"), "300\n");
        write(&v2.join("app/memory.max"), "5000\n");
        assert_eq!(
            room(&l.memory, false),
            700,
            "the usage anew, the limit as last read"
        );
        assert_eq!(room(&l.memory, true), 4700, "the limit read again");
        write(&v2.join("app/memory.max"), "max\n");
        assert_eq!(room(&l.memory, true), u64::MAX);
        write(&v2.join("app/memory.max"), "2000\n");
        assert_eq!(room(&l.memory, false), u64::MAX, "no limit, as last read");
    }
}
