//! Where a pod came from, as its record will say: built in the supervisor (cold) or sent by a
//! warm test in its first frame (`I`).

use super::Origin;
use crate::config::Isolation;
use crate::kind::PodKind;
use crate::runtime::Runtime;
use crate::site::Site;
use invite_vocab::phase;

/// What the record of a pod will say about where it came from.
pub struct PodInfo {
    /// An explicit `ckpt()` or a branch: it ends when its code exits (no verdict expected).
    pub manual: bool,
    pub path: String,
    pub function: String,
    pub test: String,
    pub site: String,
    pub phase: &'static str,
    pub timeout_ms: u64,
    pub isolation: Isolation,
    pub host_pid: i32,
    /// The host thread that made the pod (see `deadlock::Origin`).
    pub caller_tid: i32,
    /// When `ckpt()` began, before the fork (monotonic ns).
    pub started_ns: u64,
}

impl PodInfo {
    pub fn new(
        rt: &Runtime,
        kind: PodKind,
        path: String,
        origin: Origin,
        started_ns: u64,
    ) -> PodInfo {
        let cfg = rt.config.as_ref();
        let default_timeout = cfg.map_or(crate::config::DEFAULT_TIMEOUT_MS, |c| c.timeout_ms);
        let (function, test, site, phase, timeout_ms) = match kind {
            PodKind::Site { site, owner } => (
                function_name(site, owner),
                site.test().to_string(),
                format!("{}:{}", site.file(), site.line),
                site.phase().as_str(),
                if site.timeout_ms > 0 {
                    site.timeout_ms as u64
                } else {
                    default_timeout
                },
            ),
            PodKind::Manual {
                file,
                line,
                function,
            } => (
                function.to_string(),
                "ckpt".to_string(),
                format!("{file}:{line}"),
                phase::MANUAL,
                default_timeout,
            ),
            PodKind::Branch {
                file,
                line,
                function,
            } => (
                function.to_string(),
                "branch".to_string(),
                format!("{file}:{line}"),
                phase::MANUAL,
                default_timeout,
            ),
        };
        PodInfo {
            manual: !matches!(kind, PodKind::Site { .. }),
            path,
            function,
            test,
            site,
            phase,
            timeout_ms,
            isolation: rt.isolation(),
            host_pid: origin.host_pid,
            caller_tid: origin.caller_tid,
            started_ns,
        }
    }

    pub fn origin(&self) -> Origin {
        Origin {
            host_pid: self.host_pid,
            caller_tid: self.caller_tid,
        }
    }
}

impl PodInfo {
    /// What a warm pod's watcher cannot know by itself, sent as the pod's first frame (`I`).
    pub fn encode(&self) -> Vec<u8> {
        format!(
            "{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}",
            self.path,
            self.function,
            self.test,
            self.site,
            self.phase,
            self.timeout_ms,
            self.manual as u8,
            self.caller_tid
        )
        .into_bytes()
    }

    pub fn decode(
        b: &[u8],
        isolation: Isolation,
        host_pid: i32,
        started_ns: u64,
    ) -> Option<PodInfo> {
        let s = std::str::from_utf8(b).ok()?;
        let f: Vec<&str> = s.split('\x1f').collect();
        let [path, function, test, site, phase, timeout, manual, caller] = f.as_slice() else {
            return None;
        };
        Some(PodInfo {
            manual: *manual == "1",
            path: path.to_string(),
            function: function.to_string(),
            test: test.to_string(),
            site: site.to_string(),
            phase: match *phase {
                phase::PRE => phase::PRE,
                phase::POST => phase::POST,
                _ => phase::MANUAL,
            },
            timeout_ms: timeout.parse().ok()?,
            isolation,
            host_pid,
            caller_tid: caller.parse().ok()?,
            started_ns,
        })
    }
}

/// `module::Type::method` for methods.
pub(super) fn function_name(site: &Site, owner: Option<&str>) -> String {
    crate::site::qualified(site.function(), owner)
}
