//! A journal such as a small fleet leaves: two hosts, three processes, two hours, every outcome,
//! tests that never ran, skip reasons with the settings, lost records, and a failing test whose
//! output and message are hostile (markup, control characters).

use serde_json::{json, Value};

use super::{record, summary};

/// Markup and escapes a test could print, for every format to carry as text.
pub const HOSTILE: &str =
    "<script>document.title='owned'</script><img src=\"http://example.invalid/x.png\"> \u{1b}]52;c;AAAA\u{7}\r& done";

pub fn fleet() -> Vec<Value> {
    let tests = [
        ("parse_config", "rejects_empty"),
        ("parse_config", "keeps_comments"),
        ("cache_put", "keeps_order"),
        ("cache_put", "evicts_oldest"),
        ("account_withdraw", "check_funds"),
    ];
    let procs = [("web1", 4242u64), ("web1", 4243), ("web2", 977)];
    let mut values = Vec::new();
    for i in 0..600u64 {
        let (function, test) = tests[(i % 5) as usize];
        let (host, pid) = procs[(i % 3) as usize];
        let outcome = match i {
            _ if i % 97 == 3 => "crash",
            _ if i % 61 == 8 => "fail",
            _ if i % 151 == 14 => "timeout",
            _ if i % 199 == 20 => "error",
            _ => "pass",
        };
        let mut r = record(function, test, outcome, 150 + (i * 7919) % 40_000);
        r["host"] = json!(host);
        r["pid"] = json!(pid);
        r["pod"] = json!(format!("{}", i / 3 + 1));
        let minute = i / 5;
        r["time"] = json!(format!(
            "2026-05-01T{:02}:{:02}:{:02}.000000Z",
            10 + minute / 60,
            minute % 60,
            i % 60
        ));
        if outcome != "pass" {
            r["message"] = json!(format!("expected 0 entries, got {}", i % 7));
            r["output"] = json!(format!("loading /etc/app.conf\nentry {i}\n"));
            r["changed"] = json!(["/var/lib/app/state.db", "/tmp/scratch"]);
        }
        if outcome == "crash" {
            r["signal"] = json!("SIGSEGV");
            r["exit_code"] = json!(null);
        }
        values.push(r);
    }
    // The newest failure is the hostile one.
    let mut bad = record("cache_put", "keeps_order", "fail", 1234);
    bad["time"] = json!("2026-05-01T12:00:00.000000Z");
    bad["host"] = json!("web2");
    bad["pid"] = json!(977);
    bad["message"] = json!(format!("bad entry {HOSTILE}"));
    bad["output"] = json!(format!("{HOSTILE}\nline 2\n"));
    bad["changed"] = json!(["/tmp/<b>x</b>"]);
    values.push(bad);
    for (host, pid) in procs {
        let sites = [
            ("parse_config", "rejects_empty", 40, [3, 40, 0]),
            ("cache_put", "keeps_order", 40, [12, 0, 2]),
            ("lua_getn", "length_is_border", 0, [0, 4035, 0]),
            ("bank_transfer", "third_test", 0, [7, 0, 0]),
        ];
        let mut s = summary(
            "2026-05-01T12:01:00Z",
            pid,
            &sites.map(|(f, t, _, _)| (f, t, [0, 0, 0])),
        );
        for (i, (_, _, started, [concurrency, budget, in_pod])) in sites.into_iter().enumerate() {
            let site = &mut s["sites"][i];
            site["calls"] = json!(100_000);
            site["started"] = json!(started);
            site["sampled"] = json!(started + concurrency + budget + in_pod);
            site["skipped"] =
                json!({"concurrency": concurrency, "budget": budget, "in_pod": in_pod});
        }
        s["host"] = json!(host);
        s["settings"] = json!({"INVITE_MAX_OVERHEAD": "10", "INVITE_MAX_CONCURRENT": "4"});
        s["lost"] = json!(1);
        values.push(s);
    }
    values
}
