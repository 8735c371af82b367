//! How many CPUs the host's pods may share: the CPUs the process may run on, or fewer when its
//! cgroup (or an ancestor) sets a CPU quota. The pods' own CPU bound (`INVITE_MAX_POD_CPU`) is a
//! share of this over wall-clock time.
//!
//! cgroup v1: `cpu.cfs_quota_us` / `cpu.cfs_period_us` in the `cpu` hierarchy (-1: no quota);
//! v2: `cpu.max` ("QUOTA PERIOD", or "max PERIOD"). The least quota from the host's own cgroup up
//! to the mount's root counts. Read once: a quota changed later is not seen.

use crate::sys;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The machine's idle CPU time so far, every CPU summed (`idle` and `iowait` of /proc/stat's
/// `cpu` line), in ns; `None` where /proc/stat cannot be read.
pub fn idle_ns() -> Option<u64> {
    // Only the first line, into a buffer on the stack: admission's path allocates nothing.
    let mut buf = [0u8; 256];
    let n = sys::read_start(c"/proc/stat", &mut buf)?;
    idle_ticks(std::str::from_utf8(&buf[..n]).ok()?)
        .map(|t| t.saturating_mul(1_000_000_000 / sys::clock_ticks_per_s()))
}

/// `idle + iowait` from the first line of /proc/stat (`cpu  user nice system idle iowait ...`).
fn idle_ticks(stat: &str) -> Option<u64> {
    let mut f = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace();
    let mut nth = |n| f.nth(n)?.parse::<u64>().ok();
    let idle = nth(3)?;
    Some(idle + nth(0).unwrap_or(0))
}

/// The CPUs the host's pods may share (at least 0.01).
pub fn machine() -> f64 {
    static CPUS: OnceLock<f64> = OnceLock::new();
    *CPUS.get_or_init(|| {
        let online = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        quota_of(&cgroups, &mounts).map_or(online, |q| q.min(online))
    })
}

/// The least CPU quota (in CPUs) over the host's cgroups in the `cpu` hierarchy (v1) or the
/// unified one (v2), or `None`.
fn quota_of(cgroups: &str, mountinfo: &str) -> Option<f64> {
    let mut least: Option<f64> = None;
    for line in cgroups.lines() {
        let mut it = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let v2 = ctrls.is_empty();
        if !v2 && !ctrls.split(',').any(|c| c == "cpu") {
            continue;
        }
        let Some((mount, root)) = crate::headroom::mount_of(mountinfo, if v2 { "" } else { "cpu" })
        else {
            continue;
        };
        let rel = path.strip_prefix(root.as_str()).unwrap_or(path);
        let mut dir: PathBuf = mount.join(rel.trim_start_matches('/'));
        loop {
            if let Some(q) = if v2 { quota_v2(&dir) } else { quota_v1(&dir) } {
                least = Some(least.map_or(q, |l| l.min(q)));
            }
            if dir == mount || !dir.pop() {
                break;
            }
        }
    }
    least.map(|q| q.max(0.01))
}

fn quota_v1(dir: &Path) -> Option<f64> {
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .ok()?
            .trim()
            .parse::<i64>()
            .ok()
    };
    let (quota, period) = (read("cpu.cfs_quota_us")?, read("cpu.cfs_period_us")?);
    (quota > 0 && period > 0).then(|| quota as f64 / period as f64)
}

fn quota_v2(dir: &Path) -> Option<f64> {
    let s = std::fs::read_to_string(dir.join("cpu.max")).ok()?;
    let mut it = s.split_whitespace();
    let quota = it.next()?.parse::<f64>().ok()?; // "max" fails: no quota
    let period = it.next()?.parse::<f64>().ok()?;
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, s: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    }

    #[test]
    fn idle_time_is_idle_plus_iowait_of_the_cpu_line() {
        let stat = "cpu  100 5 50 9000 40 0 3 0 0 0\ncpu0 50 2 25 4500 20 0 1 0 0 0\n";
        assert_eq!(idle_ticks(stat), Some(9040));
        assert_eq!(idle_ticks("cpu0 1 2 3 4 5\n"), None);
        assert_eq!(idle_ticks(""), None);
        assert!(idle_ns().is_some(), "this machine has /proc/stat");
    }

    #[test]
    fn the_least_quota_over_the_levels_counts_in_v1_and_v2() {
        let t = tempfile::tempdir().unwrap();
        let v2 = t.path().join("v2");
        write(&v2.join("cpu.max"), "max 100000\n");
        write(&v2.join("app/cpu.max"), "150000 100000\n");
        write(&v2.join("app/web/cpu.max"), "max 100000\n");
        let mi = format!("40 1 0:30 / {} rw - cgroup2 cgroup2 rw\n", v2.display());
        assert_eq!(quota_of("0::/app/web\n", &mi), Some(1.5));
        write(&v2.join("app/web/cpu.max"), "50000 100000\n");
        assert_eq!(quota_of("0::/app/web\n", &mi), Some(0.5));

        let v1 = t.path().join("v1");
        write(&v1.join("cpu.cfs_quota_us"), "-1\n");
        write(&v1.join("cpu.cfs_period_us"), "100000\n");
        write(&v1.join("a/cpu.cfs_quota_us"), "-1\n");
        write(&v1.join("a/cpu.cfs_period_us"), "100000\n");
        let mi = format!(
            "30 25 0:26 / {} rw - cgroup cgroup rw,cpu,cpuacct\n",
            v1.display()
        );
        let cg = "5:cpu,cpuacct:/a\n0::/\n";
        assert_eq!(quota_of(cg, &mi), None, "-1 is no quota");
        write(&v1.join("a/cpu.cfs_quota_us"), "250000\n");
        assert_eq!(quota_of(cg, &mi), Some(2.5));
    }

    #[test]
    fn the_machine_has_at_least_a_share_of_a_cpu() {
        let n = machine();
        assert!((0.01..=4096.0).contains(&n), "{n}");
    }
}
