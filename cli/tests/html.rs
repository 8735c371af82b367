//! `invite report --html`: rendered by headless Chromium, checked in the DOM it builds, and
//! screenshot at desktop and phone width (kept under target/invite-artifacts/).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::fleet::{fleet, HOSTILE};
use common::{invite, lines, tools};

/// Runs Chromium headless with no network, no profile of its own, and `extra` flags.
fn chromium(browser: &Path, work: &Path, extra: &[String], page: &Path) -> std::process::Output {
    let profile = tempfile::tempdir_in(work).unwrap();
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium")
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/invite-artifacts");
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_html_report_renders_in_chromium_with_everything_escaped() {
    let Some(browser) = tools::chromium() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("fleet.jsonl");
    fs::write(&journal, lines(&fleet())).unwrap();
    let page = dir.path().join("report.html");
    let run = invite(
        dir.path(),
        &["report", "--html", "report.html", "fleet.jsonl"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let html = fs::read_to_string(&page).unwrap();
    fs::copy(&page, artifacts().join("report.html")).unwrap();

    // Self-contained: nothing on the page refers to another resource.
    for attr in ["src=\"", "href=\"", "url("] {
        for (i, _) in html.match_indices(attr) {
            let rest = &html[i + attr.len()..];
            assert!(
                rest.starts_with('#') || rest.starts_with("data:"),
                "a reference out of the page at byte {i}: {}",
                &html[i..(i + 80).min(html.len())]
            );
        }
    }

    let out = chromium(&browser, dir.path(), &["--dump-dom".into()], &page);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8(out.stdout).unwrap();
    // The journal's markup stayed text: one script (ours), no image, the title untouched.
    assert_eq!(dom.matches("<script").count(), 1, "{dom}");
    assert!(
        !dom.contains("<img"),
        "an image from the journal became markup"
    );
    assert!(!dom.contains("<title>owned"), "the journal's script ran");
    assert!(
        dom.contains("&lt;script&gt;document.title="),
        "the output is shown as text"
    );
    assert!(
        !dom.contains('\u{1b}') && !dom.contains('\r'),
        "control characters reach the page"
    );
    assert!(dom.contains("\\e]52;c;AAAA\\a\\r&amp; done"));
    let _ = HOSTILE;

    // Totals, one row per test (5 that ran, 2 never), the never-run ones marked with the reason.
    assert!(dom.contains("id=\"totals\""));
    let rows = dom.matches("<tr class=").count();
    assert_eq!(rows, 7, "{dom}");
    assert_eq!(dom.matches("<tr class=\"never\"").count(), 2);
    assert!(
        dom.contains("never ran: budget 12105 (INVITE_MAX_OVERHEAD=10)"),
        "{dom}"
    );
    assert!(dom.contains("never ran: concurrency 21 (INVITE_MAX_CONCURRENT=4)"));
    assert!(dom.contains("records lost"));
    // Every failure link lands on a failure on the page.
    let mut links = 0;
    for (i, _) in dom.match_indices("href=\"#f-") {
        let id: String = dom[i + 7..].chars().take_while(|&c| c != '"').collect();
        assert!(
            dom.contains(&format!("id=\"{id}\"")),
            "link to #{id} has no target"
        );
        links += 1;
    }
    assert!(links >= 3, "{links} failure links");
    // The charts: a duration histogram, and one timeline per host and process.
    assert!(dom.contains("aria-label=\"test durations\""));
    assert_eq!(dom.matches("aria-label=\"outcomes over time\"").count(), 3);
    for host in ["web1 pid 4242", "web1 pid 4243", "web2 pid 977"] {
        assert!(dom.contains(host), "no timeline for {host}");
    }

    for (name, size) in [("desktop", "1280,2400"), ("phone", "390,3400")] {
        let png = artifacts().join(format!("report-{name}.png"));
        let _ = fs::remove_file(&png);
        let out = chromium(
            &browser,
            dir.path(),
            &[
                format!("--screenshot={}", png.display()),
                format!("--window-size={size}"),
            ],
            &page,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bytes = fs::read(&png).expect("a screenshot");
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000,
            "{name}: {} bytes",
            bytes.len()
        );
    }
}
