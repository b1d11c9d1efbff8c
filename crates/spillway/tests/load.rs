//! `spillway load` against a real `spillway serve`.

#![allow(clippy::unwrap_used)] // tests fail loudly on any surprise

mod common;

use common::*;

/// Runs `spillway load ... --json`: its report, whether it exited 0, and its stderr.
fn run_load(args: &[&str]) -> (serde_json::Value, bool, String) {
    let out = std::process::Command::new(BIN)
        .arg("load")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).expect("--json prints one JSON document");
    (
        report,
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn load(args: &[&str]) -> serde_json::Value {
    let (report, ok, stderr) = run_load(args);
    assert!(ok, "{stderr}");
    report
}

#[test]
fn load_reports_every_request_and_verify_finds_exactly_what_was_sent() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), None);
    let url = s.url("/dev");
    let r = load(&["--url", &url, "-n", "3000", "-c", "40", "--verify"]);
    let statuses: u64 = r["status"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    let errors: u64 = r["errors"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(statuses + errors, 3000, "{r}");
    assert_eq!(r["status"]["200"], 3000);
    let timeline: u64 = r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["status"].as_object().unwrap().values())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(timeline, 3000);
    let l = &r["latency_ms"];
    assert!(l["p50"].as_f64().unwrap() <= l["p99"].as_f64().unwrap());
    assert!(l["p99"].as_f64().unwrap() <= l["max"].as_f64().unwrap());
    let v = &r["verify"];
    assert_eq!(v["acknowledged"], 3000);
    assert_eq!(v["landed"], 3000);
    assert_eq!(v["missing"], 0);
    assert_eq!(v["duplicates"], 0);

    // A second run against the same table: earlier items are not counted as duplicates.
    let r = load(&[
        "--url",
        &url,
        "-n",
        "500",
        "-c",
        "10",
        "--shape",
        "spike:200:300:0.5",
        "--verify",
    ]);
    assert_eq!(r["verify"]["landed"], 500);
    assert_eq!(r["verify"]["duplicates"], 0);
}

#[test]
fn verify_notices_records_that_never_land() {
    let dir = tempfile::tempdir().unwrap();
    // A route whose stream has no mapping: acknowledged, but nothing drains to the table.
    let config = config_with(|t| {
        t + "\n[[streams]]\nname = \"side\"\nshard_count = 1\n\n[[routes]]\nmethod = \"POST\"\npath = \"/side\"\nstream = \"side\"\n"
    });
    let s = Server::start(&dir.path().join("d"), Some(&config));
    let (r, ok, stderr) = run_load(&[
        "--url",
        &s.url("/side"),
        "-n",
        "200",
        "-c",
        "10",
        "--verify",
        "--verify-timeout",
        "5",
    ]);
    assert_eq!(r["verify"]["acknowledged"], 200);
    assert_eq!(r["verify"]["missing"], 200);
    assert_eq!(r["verify"]["landed"], 0);
    // A loss fails the command, so a script notices.
    assert!(!ok);
    assert!(
        stderr.contains("200 acknowledged records missing"),
        "{stderr}"
    );
}

#[test]
fn a_run_where_no_request_succeeds_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), None);
    let (r, ok, stderr) = run_load(&["--url", &s.url("/nope"), "-n", "3"]);
    assert_eq!(r["status"]["404"], 3);
    assert!(!ok);
    assert!(stderr.contains("no request succeeded"), "{stderr}");
}

#[test]
fn errors_are_counted_by_kind_when_nothing_answers() {
    // Bind a port and close it so nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = std::process::Command::new(BIN)
        .args([
            "load",
            "--url",
            &format!("http://127.0.0.1:{port}/dev"),
            "-n",
            "5",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
