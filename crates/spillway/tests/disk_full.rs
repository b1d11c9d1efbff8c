//! A full disk is survived, not fatal: spillway on a small tmpfs, the disk filled under
//! it. Writes answer 503 with Retry-After (reads keep working, health says degraded),
//! writes resume by themselves once space returns, and every acknowledged record
//! reaches the table, also across a kill -9 afterwards.
//!
//! Mounting needs root (CI runs as root); elsewhere the test shows as ignored, saying so.

#![allow(clippy::unwrap_used)]
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .ok()?;
        assert!(
            out.status.success(),
            "cannot mount a tmpfs: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Some(Tmpfs { _dir: dir, path })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Writes `path` until the file system refuses more.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5a_u8; 256 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

async fn health(c: &reqwest::Client, s: &Server) -> (u16, Value) {
    get_json(c, &s.url("/_spillway/health")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(spillway_is_root),
    ignore = "needs root to mount a tmpfs (run as root, as CI does)"
)]
async fn disk_full_answers_503_recovers_by_itself_and_loses_nothing_acknowledged() {
    let fs = Tmpfs::mount("48m").expect("the mount command runs");
    let data = fs.path.join("data");
    let mut s = Server::start(&data, None);
    let c = client();
    let mut acked: Vec<String> = Vec::new();
    for i in 0..20 {
        post(&c, &s, &reference_body(i)).await;
        acked.push(format!("Test message {i}"));
    }
    assert_eq!(health(&c, &s).await.0, 200);

    // Fill the disk, then keep posting 20 KB records until storage refuses them.
    let filler = fs.path.join("filler");
    fill(&filler);
    let padding = "p".repeat(20_000);
    let mut refused = None;
    for i in 20..2_000 {
        let body = format!(
            "{{\"index\": {i}, \"message\": \"Test message {i}\", \"pad\": \"{padding}\"}}"
        );
        let r = c.post(s.url("/dev")).body(body).send().await.unwrap();
        match r.status().as_u16() {
            200 => acked.push(format!("Test message {i}")),
            503 => {
                let retry = r.headers().get("retry-after").cloned();
                let v: Value = r.json().await.unwrap();
                refused = Some((retry, v));
                break;
            }
            other => panic!("unexpected {other}: {}", r.text().await.unwrap()),
        }
    }
    let (retry, v) = refused.expect("a full disk refuses writes");
    assert!(retry.is_some(), "503 without Retry-After");
    assert_eq!(v["__type"], "ServiceUnavailableException", "{v}");

    // While writes fail: health says degraded, reads work, the APIs answer 503 too.
    let (status, h) = health(&c, &s).await;
    assert_eq!(status, 503, "{h}");
    assert_eq!(h["status"], "degraded");
    assert_eq!(h["storage"]["writable"], false);
    let (status, _) = get_json(&c, &s.url("/_spillway/streams/example-stream?last=5")).await;
    assert_eq!(status, 200, "reads must keep working");
    let r = c
        .post(s.url("/"))
        .header("x-amz-target", "DynamoDB_20120810.PutItem")
        .header("content-type", "application/x-amz-json-1.0")
        .header("authorization", "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00")
        .body(r#"{"TableName":"example-table","Item":{"ID":{"S":"x"},"Message":{"S":"y"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["__type"]
            .as_str()
            .unwrap()
            .ends_with("ServiceUnavailable"),
        "{v}"
    );

    // Space returns: writes resume with no restart.
    std::fs::remove_file(&filler).unwrap();
    wait_until(20, "health to recover", || async {
        health(&c, &s).await.0 == 200
    })
    .await;
    for i in 5_000..5_020 {
        post(&c, &s, &reference_body(i)).await;
        acked.push(format!("Test message {i}"));
    }
    let (_, h) = health(&c, &s).await;
    assert!(h["storage"]["reopens"].as_u64().unwrap() >= 1, "{h}");

    // Every acknowledged record reaches the table, exactly once.
    let all_landed = |items: &[Value]| {
        let got: std::collections::HashSet<String> = messages(items).into_iter().collect();
        acked.iter().all(|m| got.contains(m))
    };
    wait_until(60, "every acknowledged record in the table", || async {
        all_landed(&scan_table(&c, &s, "example-table").await)
    })
    .await;

    // And across a crash right after.
    s.kill9();
    let s = Server::start(&data, None);
    let items = scan_table(&c, &s, "example-table").await;
    assert!(
        all_landed(&items),
        "acknowledged records lost after restart"
    );
    let msgs = messages(&items);
    let unique: std::collections::HashSet<&String> = msgs.iter().collect();
    assert_eq!(unique.len(), msgs.len(), "duplicates in the table");
}
