//! Unit tests of the configuration (see `config.rs`).

use super::*;
use std::collections::HashMap;

fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let m: HashMap<String, OsString> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), OsString::from(v)))
        .collect();
    Config::from_env(|k| m.get(k).cloned(), Path::new("/srv/app"))
}

#[test]
fn defaults_are_documented_values() {
    let c = cfg(&[]).unwrap();
    assert!(c.enabled);
    assert_eq!(c.max_concurrent, DEFAULT_MAX_CONCURRENT);
    assert_eq!(c.max_overhead, Some(DEFAULT_MAX_OVERHEAD));
    assert_eq!(c.max_pod_cpu, Some(DEFAULT_MAX_POD_CPU));
    assert_eq!(c.max_queue, DEFAULT_MAX_QUEUE);
    assert_eq!(c.max_pieces, 128);
    assert_eq!(cfg(&[("INVITE_MAX_PIECES", "0")]).unwrap().max_pieces, 0);
    assert_eq!(
        cfg(&[("INVITE_MAX_PIECES", "4096")]).unwrap().max_pieces,
        4096
    );
    assert_eq!(c.journal, PathBuf::from("/srv/app/invite.jsonl"));
    assert_eq!(c.pod_dir, PathBuf::from("/srv/app/invite-pods"));
    assert_eq!(c.isolation, Isolation::Pod);
    assert_eq!(c.warm, Warm::On);
    assert_eq!(c.fork, crate::sys::ForkVia::Auto);
    let direct = cfg(&[("INVITE_FORK", "direct")]).unwrap();
    assert_eq!(direct.fork, crate::sys::ForkVia::Direct);
    assert_eq!(
        cfg(&[("INVITE_FORK", "libc")]).unwrap().fork,
        crate::sys::ForkVia::Libc
    );
    assert_eq!(c.summary_s, DEFAULT_SUMMARY_S);
    assert_eq!(cfg(&[("INVITE_SUMMARY_S", "0")]).unwrap().summary_s, 0);
}

#[test]
fn bad_values_name_the_variable_and_the_form() {
    for (k, v) in [
        ("INVITE", "maybe"),
        ("INVITE_PROBABILITY", "1.5"),
        ("INVITE_PROBABILITY", "abc"),
        ("INVITE_RATES", "foo"),
        ("INVITE_RATES", "foo=2"),
        ("INVITE_MAX_CONCURRENT", "0"),
        ("INVITE_SUMMARY_S", "-1"),
        ("INVITE_SUMMARY_S", "86401"),
        ("INVITE_MAX_OVERHEAD", "-3"),
        ("INVITE_MAX_OVERHEAD", "1e308"),
        ("INVITE_MAX_OVERHEAD", "5%%"),
        ("INVITE_MAX_OVERHEAD", "nan"),
        ("INVITE_MAX_OVERHEAD", "inf"),
        ("INVITE_MAX_OVERHEAD", "1001"),
        ("INVITE_MAX_OVERHEAD", "5."),
        ("INVITE_MAX_POD_CPU", "101"),
        ("INVITE_MAX_POD_CPU", "half"),
        ("INVITE_MAX_QUEUE", "65"),
        ("INVITE_MAX_PIECES", "4097"),
        ("INVITE_MAX_PIECES", "-1"),
        ("INVITE_FLEET", "2000000"),
        ("INVITE_TIMEOUT_MS", "soon"),
        ("INVITE_ISOLATION", "vm"),
        ("INVITE_KEEP_PODS", "some"),
        ("INVITE_WARM", "hot"),
        ("INVITE_FORK", "vfork"),
        ("INVITE_SHARD", "3/2"),
        ("INVITE_SHARD", "0/2"),
        ("INVITE_FLEET", "0"),
        ("INVITE_SEED", "-1"),
        ("INVITE_JOURNAL", ""),
    ] {
        let e = cfg(&[(k, v)]).unwrap_err();
        assert_eq!(e.var, k);
        let line = e.to_string();
        assert!(
            line.contains(k) && line.contains("expected") && !line.contains('\n'),
            "{line}"
        );
    }
}

#[test]
fn probability_precedence_fleet_and_shard() {
    let c = cfg(&[("INVITE_RATES", "withdraw=0.5,bank.c:deposit=0.25")]).unwrap();
    assert_eq!(c.probability_for("src/bank.c", "withdraw", "t", 0.1), 0.5);
    assert_eq!(c.probability_for("src/bank.c", "deposit", "t", 0.1), 0.25);
    assert_eq!(c.probability_for("other.c", "deposit", "t", 0.1), 0.1);
    let c = cfg(&[
        ("INVITE_RATES", "withdraw=0.5"),
        ("INVITE_PROBABILITY", "1"),
    ])
    .unwrap();
    assert_eq!(c.probability_for("bank.c", "withdraw", "t", 0.1), 1.0);
    let c = cfg(&[("INVITE_PROBABILITY", "1"), ("INVITE_FLEET", "4")]).unwrap();
    assert_eq!(c.probability_for("bank.c", "withdraw", "t", 0.1), 0.25);
    let c = cfg(&[("INVITE_RATES", "bank::Account::withdraw=0.5")]).unwrap();
    assert_eq!(
        c.probability_for("src/lib.rs", "bank::Account::withdraw", "t", 0.1),
        0.5
    );
    // Exactly one shard of N runs each site.
    for (f, t) in [
        ("a", "x"),
        ("withdraw", "check"),
        ("bank::Account::deposit", "inv"),
    ] {
        let hits = (1..=5)
            .filter(|k| {
                let s = format!("{k}/5");
                cfg(&[("INVITE_SHARD", &s), ("INVITE_PROBABILITY", "1")])
                    .unwrap()
                    .probability_for("f.c", f, t, 1.0)
                    > 0.0
            })
            .count();
        assert_eq!(hits, 1);
    }
}

#[test]
fn overhead_forms_and_contradictions() {
    for (v, want) in [
        ("5", 5.0),
        ("5%", 5.0),
        ("2.5", 2.5),
        ("0", 0.0),
        ("1000", 1000.0),
    ] {
        assert_eq!(
            cfg(&[("INVITE_MAX_OVERHEAD", v)]).unwrap().max_overhead,
            Some(want)
        );
    }
    let e = cfg(&[("INVITE_SHARD", "1/4"), ("INVITE_FLEET", "4")]).unwrap_err();
    assert_eq!(e.var, "INVITE_FLEET");
    assert!(e.to_string().contains("INVITE_SHARD"), "{e}");
}

#[test]
fn paths_are_kept_as_bytes() {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let raw = OsString::from_vec(b"j\xff.jsonl".to_vec());
    let c = Config::from_env(
        |k| (k == "INVITE_JOURNAL").then(|| raw.clone()),
        Path::new("/srv"),
    )
    .unwrap();
    assert_eq!(c.journal.as_os_str().as_bytes(), b"/srv/j\xff.jsonl");
}

#[test]
fn off_switch() {
    let c = cfg(&[("INVITE", "off"), ("INVITE_PROBABILITY", "1")]).unwrap();
    assert_eq!(c.probability_for("a.c", "f", "t", 1.0), 0.0);
}

#[test]
fn valgrind_is_seen_in_the_preload_list() {
    use std::ffi::OsStr;
    let vg = "/usr/libexec/valgrind/vgpreload_core-amd64-linux.so:\
              /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so";
    assert!(under_valgrind(Some(OsStr::new(vg))));
    assert!(under_valgrind(Some(OsStr::new(
        "libfoo.so vgpreload_drd-amd64-linux.so"
    ))));
    assert!(!under_valgrind(None));
    assert!(!under_valgrind(Some(OsStr::new(
        "/opt/vgpreload_dir/libjemalloc.so"
    ))));
    assert!(!under_valgrind(Some(OsStr::new("libjemalloc.so"))));
}

#[test]
fn holding_the_host_for_its_clones_can_be_turned_off() {
    assert!(cfg(&[]).unwrap().hold_host);
    assert!(cfg(&[("INVITE_HOLD_HOST", "on")]).unwrap().hold_host);
    assert!(!cfg(&[("INVITE_HOLD_HOST", "off")]).unwrap().hold_host);
    let e = cfg(&[("INVITE_HOLD_HOST", "sometimes")]).unwrap_err();
    assert!(e.to_string().contains("INVITE_HOLD_HOST"), "{e}");
}
