//! Configuration from the environment, read once with `secure_getenv`.
//!
//! A bad value turns in vivo testing off for the whole process and prints one line naming the
//! variable and the accepted form; the host program runs normally.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// How a pod is isolated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// Namespaces, overlays, descriptor and memory hygiene, limits.
    Pod,
    /// The 2008 behaviour: a bare fork, memory-only isolation. Recorded as such.
    Fork,
}

impl Isolation {
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::Pod => "pod",
            Isolation::Fork => "fork",
        }
    }
}

/// Warm pods (`INVITE_WARM`): pods entered through a mount namespace built ahead of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Warm {
    /// Use a warm pod when one is ready, else build the pod cold (the default).
    On,
    /// Always build pods cold.
    Off,
    /// Wait (up to a second) for a warm pod rather than build one cold: for tests and benchmarks.
    Wait,
}

/// Which pods keep their changed files after they end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    None,
    Failed,
    All,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub enabled: bool,
    pub probability: Option<f64>,
    pub rates: Vec<(String, f64)>,
    pub seed: Option<u64>,
    pub max_concurrent: u32,
    /// Percent of the host's elapsed time; `None` is unlimited.
    pub max_overhead: Option<f64>,
    /// Percent of the machine's CPUs over wall-clock time; `None` is unlimited.
    pub max_pod_cpu: Option<f64>,
    /// Sampled calls that may wait for a slot (`queue`).
    pub max_queue: u32,
    /// Pieces an unprivileged pod's tree with a mount below may be cut into (`plan::split`);
    /// past that it is bound whole. `0`: never cut.
    pub max_pieces: usize,
    pub timeout_ms: u64,
    pub drain_ms: u64,
    /// Seconds between summary records while the process runs (`0`: only at exit).
    pub summary_s: u64,
    pub isolation: Isolation,
    pub keep_pods: Keep,
    pub warm: Warm,
    /// Which fork the runtime uses (`INVITE_FORK`): whether the program's atfork handlers run.
    pub fork: crate::sys::ForkVia,
    /// Whether a cold pod's supervisor may hold the host's threads still while it clones the
    /// files the host is writing (`INVITE_HOLD_HOST`): a set of one instant, for a stall.
    pub hold_host: bool,
    pub pod_dir: PathBuf,
    pub shard: Option<(u64, u64)>,
    pub fleet: Option<u64>,
    pub journal: PathBuf,
}

pub const DEFAULT_MAX_CONCURRENT: u32 = 4;
pub const DEFAULT_MAX_OVERHEAD: f64 = 10.0;
pub const DEFAULT_MAX_POD_CPU: f64 = 50.0;
pub const DEFAULT_MAX_QUEUE: u32 = 32;
/// Pieces an unprivileged pod's tree with a mount below may be cut into (`plan::split`): each
/// is a mount per pod, ~50 us.
pub const DEFAULT_MAX_PIECES: usize = 128;
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
pub const DEFAULT_DRAIN_MS: u64 = 2_000;
pub const DEFAULT_SUMMARY_S: u64 = 60;

/// A bad configuration value: the variable, what it held, and the accepted form.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub var: &'static str,
    pub value: String,
    pub expected: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invite: {}={:?} is not valid: expected {}; in vivo testing is off",
            self.var, self.value, self.expected
        )
    }
}

impl Config {
    /// Reads the configuration; `cwd` is the working directory at start-up (default paths).
    /// Paths are kept as the bytes the variable holds; every other value must be UTF-8.
    pub fn from_env(
        get: impl Fn(&str) -> Option<OsString>,
        cwd: &Path,
    ) -> Result<Config, ConfigError> {
        let var = |name: &'static str| -> Option<(&'static str, String)> {
            get(name).map(|v| {
                (
                    name,
                    v.into_string()
                        .unwrap_or_else(|v| v.to_string_lossy().into()),
                )
            })
        };
        let enabled = match var("INVITE") {
            None => true,
            Some((_, v)) if v == "on" || v == "1" => true,
            Some((_, v)) if v == "off" || v == "0" => false,
            Some((n, v)) => return Err(bad(n, v, "on or off")),
        };
        let probability = match var("INVITE_PROBABILITY") {
            None => None,
            Some((n, v)) => Some(parse_probability(&v).ok_or_else(|| bad(n, v, PROB))?),
        };
        let rates = match var("INVITE_RATES") {
            None => Vec::new(),
            Some((n, v)) => parse_rates(&v).ok_or_else(|| bad(n, v, RATES))?,
        };
        let seed = parse_opt(var("INVITE_SEED"), "an unsigned integer", |s| {
            s.parse().ok()
        })?;
        let max_concurrent = parse_opt(
            var("INVITE_MAX_CONCURRENT"),
            "an integer from 1 to 1024",
            |s| s.parse::<u32>().ok().filter(|n| (1..=1024).contains(n)),
        )?
        .unwrap_or(DEFAULT_MAX_CONCURRENT);
        let max_overhead = percent(
            var("INVITE_MAX_OVERHEAD"),
            DEFAULT_MAX_OVERHEAD,
            1000.0,
            OVERHEAD,
        )?;
        let max_pod_cpu = percent(
            var("INVITE_MAX_POD_CPU"),
            DEFAULT_MAX_POD_CPU,
            100.0,
            POD_CPU,
        )?;
        let max_queue = parse_opt(var("INVITE_MAX_QUEUE"), "an integer from 0 to 64", |s| {
            s.parse::<u32>()
                .ok()
                .filter(|n| *n as usize <= crate::queue::SLOTS)
        })?
        .unwrap_or(DEFAULT_MAX_QUEUE);
        let max_pieces = parse_opt(var("INVITE_MAX_PIECES"), "an integer from 0 to 4096", |s| {
            s.parse::<usize>().ok().filter(|n| *n <= 4096)
        })?
        .unwrap_or(DEFAULT_MAX_PIECES);
        let ms = "milliseconds, an integer from 1 to 86400000";
        let ms_range = |s: &str| {
            s.parse::<u64>()
                .ok()
                .filter(|n| (1..=86_400_000).contains(n))
        };
        let timeout_ms =
            parse_opt(var("INVITE_TIMEOUT_MS"), ms, ms_range)?.unwrap_or(DEFAULT_TIMEOUT_MS);
        let drain_ms = parse_opt(
            var("INVITE_DRAIN_MS"),
            "milliseconds, an integer from 0 to 86400000",
            |s| s.parse::<u64>().ok().filter(|n| *n <= 86_400_000),
        )?
        .unwrap_or(DEFAULT_DRAIN_MS);
        let summary_s = parse_opt(
            var("INVITE_SUMMARY_S"),
            "seconds, an integer from 0 (only at exit) to 86400",
            |s| s.parse::<u64>().ok().filter(|n| *n <= 86_400),
        )?
        .unwrap_or(DEFAULT_SUMMARY_S);
        let isolation = match var("INVITE_ISOLATION") {
            None => Isolation::Pod,
            Some((_, v)) if v == "pod" => Isolation::Pod,
            Some((_, v)) if v == "fork" => Isolation::Fork,
            Some((n, v)) => return Err(bad(n, v, "pod or fork")),
        };
        let keep_pods = match var("INVITE_KEEP_PODS") {
            None => Keep::None,
            Some((_, v)) if v == "none" => Keep::None,
            Some((_, v)) if v == "failed" => Keep::Failed,
            Some((_, v)) if v == "all" => Keep::All,
            Some((n, v)) => return Err(bad(n, v, "none, failed or all")),
        };
        let warm = match var("INVITE_WARM") {
            None => Warm::On,
            Some((_, v)) if v == "on" => Warm::On,
            Some((_, v)) if v == "off" => Warm::Off,
            Some((_, v)) if v == "wait" => Warm::Wait,
            Some((n, v)) => return Err(bad(n, v, "on, off or wait")),
        };
        let fork = match var("INVITE_FORK") {
            None => crate::sys::ForkVia::Auto,
            Some((_, v)) if v == "auto" => crate::sys::ForkVia::Auto,
            Some((_, v)) if v == "direct" => crate::sys::ForkVia::Direct,
            Some((_, v)) if v == "libc" => crate::sys::ForkVia::Libc,
            Some((n, v)) => return Err(bad(n, v, "auto, direct or libc")),
        };
        let hold_host = match var("INVITE_HOLD_HOST") {
            None => true,
            Some((_, v)) if v == "on" => true,
            Some((_, v)) if v == "off" => false,
            Some((n, v)) => return Err(bad(n, v, "on or off")),
        };
        let path = |name: &'static str| get(name).map(|v| (name, v));
        let pod_dir = path_var(path("INVITE_POD_DIR"), cwd, "invite-pods")?;
        let journal = path_var(path("INVITE_JOURNAL"), cwd, "invite.jsonl")?;
        let shard = parse_opt(
            var("INVITE_SHARD"),
            "k/N with 1 <= k <= N <= 1000000, such as 2/8",
            parse_shard,
        )?;
        let fleet = parse_opt(
            var("INVITE_FLEET"),
            "a fleet size, an integer from 1 to 1000000",
            |s| {
                s.parse::<u64>()
                    .ok()
                    .filter(|n| (1..=MAX_FLEET).contains(n))
            },
        )?;
        if let (Some(_), Some((n, v))) = (shard, var("INVITE_FLEET")) {
            return Err(bad(
                n,
                v,
                "INVITE_FLEET unset when INVITE_SHARD is set: INVITE_SHARD=k/N already runs \
                 one N-th of the sites, INVITE_FLEET=N would divide their probability by N again",
            ));
        }
        Ok(Config {
            enabled,
            probability,
            rates,
            seed,
            max_concurrent,
            max_overhead,
            max_pod_cpu,
            max_queue,
            max_pieces,
            timeout_ms,
            drain_ms,
            summary_s,
            isolation,
            keep_pods,
            warm,
            fork,
            hold_host,
            pod_dir,
            shard,
            fleet,
            journal,
        })
    }

    /// The probability a site runs with: `INVITE_PROBABILITY` beats `INVITE_RATES`, which beats
    /// the compiled-in value; `INVITE_FLEET` divides it; `INVITE_SHARD` zeroes other shards' sites.
    pub fn probability_for(&self, file: &str, function: &str, test: &str, compiled: f64) -> f64 {
        if !self.enabled {
            return 0.0;
        }
        if let Some((k, n)) = self.shard {
            if shard_of(function, test, n) != k {
                return 0.0;
            }
        }
        let base = self.probability.unwrap_or_else(|| {
            let base_name = Path::new(file)
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or(file);
            let short = function.rsplit("::").next().unwrap_or(function);
            self.rates
                .iter()
                .rev()
                .find(|(name, _)| rate_matches(name, file, base_name, function, short))
                .map(|(_, p)| *p)
                .unwrap_or(compiled)
        });
        let p = base / self.fleet.unwrap_or(1) as f64;
        if p.is_finite() {
            p.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }
}

const PROB: &str = "a probability from 0 to 1, such as 0.01";
const OVERHEAD: &str =
    "a percentage from 0 to 1000 in decimal digits, such as 5, 2.5 or 5%, or off";

/// Largest fleet (and shard count).
pub const MAX_FLEET: u64 = 1_000_000;

/// `5`, `2.5`, `5%`: plain decimal digits (no exponent, sign, `inf` or `nan`), 0 to 1000.
fn parse_percent(s: &str) -> Option<f64> {
    let s = s.trim();
    let digits = s.strip_suffix('%').unwrap_or(s);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let plain = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !plain(int) || !plain(frac) || (digits.contains('.') && frac.is_empty()) {
        return None;
    }
    digits
        .parse::<f64>()
        .ok()
        .filter(|p| (0.0..=1000.0).contains(p))
}
const POD_CPU: &str = "a percentage from 0 to 100 in decimal digits, such as 50 or 12.5%, or off";
const RATES: &str = "NAME=P[,NAME=P...] with NAME a function or file.c:function and P from 0 to 1";

/// A percentage variable: `default` when unset, `None` for `off` (or `unlimited`), else at most
/// `max`.
fn percent(
    v: Option<(&'static str, String)>,
    default: f64,
    max: f64,
    expected: &'static str,
) -> Result<Option<f64>, ConfigError> {
    match v {
        None => Ok(Some(default)),
        Some((_, v)) if v == "off" || v == "unlimited" => Ok(None),
        Some((n, v)) => match parse_percent(&v).filter(|p| *p <= max) {
            Some(p) => Ok(Some(p)),
            None => Err(bad(n, v, expected)),
        },
    }
}

fn bad(var: &'static str, value: String, expected: &'static str) -> ConfigError {
    ConfigError {
        var,
        value,
        expected,
    }
}

fn parse_opt<T>(
    v: Option<(&'static str, String)>,
    expected: &'static str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, ConfigError> {
    match v {
        None => Ok(None),
        Some((n, v)) => parse(v.trim()).map(Some).ok_or_else(|| bad(n, v, expected)),
    }
}

fn path_var(
    v: Option<(&'static str, OsString)>,
    cwd: &Path,
    default: &str,
) -> Result<PathBuf, ConfigError> {
    match v {
        None => Ok(cwd.join(default)),
        Some((n, v)) if v.is_empty() => Err(bad(n, String::new(), "a file path")),
        Some((_, v)) => Ok(cwd.join(v)),
    }
}

/// Whether the process runs under valgrind, seen in its preload list (`vgpreload_*.so`, which
/// every valgrind tool preloads). Valgrind does not emulate what a pod needs (`pidfd_open`,
/// namespaces, mounts), so testing is off there.
pub fn under_valgrind(ld_preload: Option<&std::ffi::OsStr>) -> bool {
    use std::os::unix::ffi::OsStrExt;
    ld_preload.is_some_and(|p| {
        p.as_bytes().split(|b| *b == b':' || *b == b' ').any(|lib| {
            lib.rsplit(|b| *b == b'/')
                .next()
                .unwrap_or(lib)
                .starts_with(b"vgpreload_")
        })
    })
}

pub fn parse_probability(s: &str) -> Option<f64> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|p| (0.0..=1.0).contains(p))
}

/// `NAME` in `INVITE_RATES`: a Rust path (`bank::Account::withdraw`), `file.c:function`, or a
/// bare function name (which also matches the last segment of a Rust path).
fn rate_matches(name: &str, file: &str, base_name: &str, function: &str, short: &str) -> bool {
    if name.contains("::") {
        return name == function;
    }
    match name.split_once(':') {
        Some((f, func)) => (f == file || f == base_name) && func == function,
        None => name == function || name == short,
    }
}

fn parse_rates(s: &str) -> Option<Vec<(String, f64)>> {
    s.split(',')
        .filter(|part| !part.trim().is_empty())
        .map(|part| {
            let (name, p) = part.split_once('=')?;
            let name = name.trim();
            if name.is_empty() {
                return None;
            }
            Some((name.to_string(), parse_probability(p)?))
        })
        .collect()
}

fn parse_shard(s: &str) -> Option<(u64, u64)> {
    let (k, n) = s.split_once('/')?;
    let (k, n) = (k.trim().parse::<u64>().ok()?, n.trim().parse::<u64>().ok()?);
    (k >= 1 && k <= n && n <= MAX_FLEET).then_some((k, n))
}

/// The shard (1..=n) a site belongs to: FNV-1a 64 of `function` + "\0" + `test`, mod n, plus 1.
/// The same function serves C and Rust sites, so a fleet mixing both agrees.
pub fn shard_of(function: &str, test: &str, n: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in function
        .bytes()
        .chain(std::iter::once(0))
        .chain(test.bytes())
    {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h % n + 1
}

#[cfg(test)]
mod tests;
