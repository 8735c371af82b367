//! `--junit`, `export --otlp` and `export --prometheus`, each checked by a real parser of its
//! format: Python's xml.etree, the official OpenTelemetry protobuf definitions
//! (`opentelemetry-proto`), and `prometheus_client`'s text parser.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::fleet::{fleet, HOSTILE};
use common::{invite, lines, record, tools};
use serde_json::{json, Value};

/// Runs a Python script on `file`; its stdout is JSON.
fn python(script: &str, file: &Path) -> Value {
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(file)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

fn fleet_dir(extra: &[Value]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut values = fleet();
    values.extend_from_slice(extra);
    fs::write(dir.path().join("fleet.jsonl"), lines(&values)).unwrap();
    dir
}

#[test]
fn junit_parses_as_xml_with_a_suite_per_function() {
    if !tools::python_with("xml.etree.ElementTree", &[]) {
        return;
    }
    let dir = fleet_dir(&[]);
    let run = invite(
        dir.path(),
        &["report", "--junit", "junit.xml", "fleet.jsonl"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let script = r#"
import json, sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
out = {"root": root.tag, "attrs": root.attrib, "suites": []}
for s in root.findall("testsuite"):
    cases = []
    for c in s.findall("testcase"):
        f = c.find("failure"); e = c.find("error"); k = c.find("skipped")
        cases.append({"name": c.get("name"), "classname": c.get("classname"), "time": float(c.get("time")),
                      "failure": None if f is None else {"message": f.get("message"), "type": f.get("type"), "text": f.text},
                      "error": None if e is None else e.get("message"),
                      "skipped": None if k is None else k.get("message")})
    out["suites"].append({"name": s.get("name"), "attrs": s.attrib, "cases": cases})
print(json.dumps(out))
"#;
    let doc = python(script, &dir.path().join("junit.xml"));
    assert_eq!(doc["root"], "testsuites");
    let suites = doc["suites"].as_array().unwrap();
    let names: Vec<&str> = suites.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "account_withdraw",
            "bank_transfer",
            "cache_put",
            "lua_getn",
            "parse_config"
        ]
    );
    let cases: Vec<&Value> = suites
        .iter()
        .flat_map(|s| s["cases"].as_array().unwrap())
        .collect();
    assert_eq!(cases.len(), 7);
    assert_eq!(doc["attrs"]["tests"], "7");
    let with = |key: &str| cases.iter().filter(|c| !c[key].is_null()).count();
    assert_eq!(doc["attrs"]["failures"], with("failure").to_string());
    assert_eq!(doc["attrs"]["errors"], with("error").to_string());
    assert_eq!(doc["attrs"]["skipped"], with("skipped").to_string());
    assert_eq!(with("skipped"), 2, "the two tests that never ran");
    for suite in suites {
        let n = suite["cases"].as_array().unwrap().len();
        assert_eq!(suite["attrs"]["tests"], n.to_string());
    }
    let lua = cases.iter().find(|c| c["classname"] == "lua_getn").unwrap();
    assert_eq!(
        lua["skipped"],
        "never ran: budget 12105 (INVITE_MAX_OVERHEAD=10)"
    );
    // The hostile failure is the latest of cache_put / keeps_order: its markup is text.
    let keeps = cases.iter().find(|c| c["name"] == "keeps_order").unwrap();
    let failure = &keeps["failure"];
    assert_eq!(failure["type"], "fail");
    let message = failure["message"].as_str().unwrap();
    assert!(
        message.starts_with("5 of 121 runs did not pass: latest fail (exit 1): bad entry <script>"),
        "{message}"
    );
    assert!(failure["text"]
        .as_str()
        .unwrap()
        .contains("<img src=\"http://example.invalid/x.png\">"));
    assert!(
        !message.contains('\u{1b}'),
        "control characters are shown escaped"
    );
    assert!(keeps["time"].as_f64().unwrap() > 0.0);
}

#[test]
fn otlp_lines_parse_with_the_official_protobuf_definitions() {
    if !tools::python_with(
        "opentelemetry.proto.logs.v1.logs_pb2",
        &["opentelemetry-proto", "protobuf"],
    ) {
        return;
    }
    let mut with_service = record("f", "t", "pass", 5);
    with_service["service"] = json!("checkout");
    with_service["new_field"] = json!({"nested": [1, 2.5, true]});
    let dir = fleet_dir(&[with_service]);
    let run = invite(
        dir.path(),
        &["export", "--otlp", "fleet.jsonl", "-o", "logs.jsonl"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let script = r#"
import json, sys
from google.protobuf import json_format
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
out = []
for line in open(sys.argv[1], encoding="utf-8"):
    data = json_format.Parse(line, LogsData())
    for rl in data.resource_logs:
        res = {a.key: json_format.MessageToDict(a.value) for a in rl.resource.attributes}
        for sl in rl.scope_logs:
            for r in sl.log_records:
                attrs = {a.key: json_format.MessageToDict(a.value) for a in r.attributes}
                out.append({"resource": res, "scope": sl.scope.name, "severity": r.severity_number,
                            "severity_text": r.severity_text, "body": r.body.string_value,
                            "time": str(r.time_unix_nano), "attrs": attrs})
print(json.dumps(out))
"#;
    let logs = python(script, &dir.path().join("logs.jsonl"));
    let logs = logs.as_array().unwrap();
    let values = fleet();
    assert_eq!(logs.len(), values.len() + 1, "one LogRecord per record");
    let crash = logs
        .iter()
        .find(|l| l["attrs"]["invite.outcome"]["stringValue"] == "crash")
        .unwrap();
    assert_eq!(crash["severity"], 21);
    assert_eq!(crash["attrs"]["invite.signal"]["stringValue"], "SIGSEGV");
    assert_eq!(
        crash["resource"]["service.name"]["stringValue"],
        "unknown_service"
    );
    assert!(crash["resource"]["host.name"]["stringValue"].is_string());
    assert!(crash["resource"]["process.pid"]["intValue"].is_string());
    assert_eq!(crash["scope"], "invite");
    let hostile = logs
        .iter()
        .find(|l| l["body"].as_str().unwrap_or("").starts_with("bad entry"))
        .unwrap();
    assert_eq!(
        hostile["body"],
        format!("bad entry {HOSTILE}"),
        "the body is the message, exactly"
    );
    assert_eq!(hostile["severity"], 17);
    assert_eq!(hostile["time"], "1777636800000000000");
    assert_eq!(hostile["attrs"]["invite.duration_us"]["intValue"], "1234");
    assert_eq!(
        hostile["attrs"]["invite.changed"]["arrayValue"]["values"][0]["stringValue"],
        "/tmp/<b>x</b>"
    );
    for field in [
        "invite.function",
        "invite.test",
        "invite.phase",
        "invite.site",
        "invite.pod",
        "invite.output",
        "invite.isolation",
    ] {
        assert!(
            hostile["attrs"][field].is_object(),
            "no {field}: {}",
            hostile["attrs"]
        );
    }
    let last = logs.last().unwrap();
    assert_eq!(last["resource"]["service.name"]["stringValue"], "checkout");
    assert_eq!(last["severity"], 9);
    assert_eq!(
        last["attrs"]["invite.new_field"]["kvlistValue"]["values"][0]["key"],
        "nested"
    );
    let summary = logs
        .iter()
        .find(|l| l["attrs"]["invite.kind"]["stringValue"] == "summary")
        .unwrap();
    assert_eq!(summary["attrs"]["invite.lost"]["intValue"], "1");
}

#[test]
fn prometheus_text_parses_and_is_written_by_rename() {
    if !tools::python_with("prometheus_client", &["prometheus_client"]) {
        return;
    }
    let weird = "we\"ird\\name\nx";
    let dir = fleet_dir(&[record(weird, "t", "fail", 2_000_000)]);
    let prom = dir.path().join("invite.prom");
    fs::write(&prom, "old contents\n").unwrap();
    let run = invite(
        dir.path(),
        &["export", "--prometheus", "fleet.jsonl", "-o", "invite.prom"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(open(sys.argv[1], encoding="utf-8").read()):
    out[fam.name] = {"type": fam.type, "samples": [[s.name, s.labels, s.value] for s in fam.samples]}
print(json.dumps(out))
"#;
    let families = python(script, &prom);
    let runs = &families["invite_test_runs"];
    assert_eq!(runs["type"], "counter");
    let value = |fam: &str, labels: Value| -> f64 {
        families[fam]["samples"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| {
                labels
                    .as_object()
                    .unwrap()
                    .iter()
                    .all(|(k, v)| &s[1][k] == v)
            })
            .unwrap_or_else(|| panic!("no {fam} sample with {labels}"))[2]
            .as_f64()
            .unwrap()
    };
    let crash = json!({"function": "parse_config", "test": "rejects_empty", "outcome": "crash"});
    assert!(value("invite_test_runs", crash) >= 1.0);
    assert_eq!(
        value(
            "invite_test_runs",
            json!({"function": weird, "test": "t", "outcome": "fail"})
        ),
        1.0,
        "label values come back exactly"
    );
    assert_eq!(
        value(
            "invite_test_skipped",
            json!({"function": "lua_getn", "reason": "budget"})
        ),
        12105.0
    );
    assert_eq!(families["invite_test_duration_seconds"]["type"], "summary");
    assert_eq!(
        value(
            "invite_test_duration_seconds",
            json!({"function": weird, "quantile": "0.99"})
        ),
        2.0
    );
    assert_eq!(value("invite_records_lost", json!({})), 3.0);
}
