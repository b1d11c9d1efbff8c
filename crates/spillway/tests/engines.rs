//! Engines chosen by URL: `memory://` runs the whole pipeline and keeps nothing past the
//! process; a URL spillway cannot use stops it at start with the reason.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::*;

#[tokio::test]
async fn the_memory_engine_runs_the_pipeline_and_keeps_nothing_past_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = config_with(|t| {
        t.replace(
            "stream_engine = \"fjall://\"",
            "stream_engine = \"memory://\"",
        )
        .replace(
            "table_engine = \"fjall://\"",
            "table_engine = \"memory://\"",
        )
    });
    assert!(config.contains("table_engine = \"memory://\""));
    let mut s = Server::start(&data, Some(&config));
    let c = client();
    for i in 0..20 {
        post(&c, &s, &reference_body(i)).await;
    }
    wait_until(30, "20 items in the table", || async {
        item_count(&c, &s, "example-table").await == 20
    })
    .await;
    assert!(
        s.stderr().contains("kept in memory"),
        "the memory engine is announced at warn: {}",
        s.stderr()
    );
    s.kill9();

    let s = Server::start(&data, Some(&config));
    assert_eq!(item_count(&c, &s, "example-table").await, 0);
    let shard = shard_ids(&c, &s, "example-stream").await.remove(0);
    let records = read_shard(&c, &s, "example-stream", &shard).await;
    assert!(records.is_empty(), "{} records survived", records.len());
}

/// `spillway serve` with these extra arguments: its exit success and stderr.
fn serve_fails_with(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success(), "started with {args:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_engine_spillway_cannot_use_stops_it_at_start_with_the_reason() {
    let err = serve_fails_with(&["--stream-engine", "cassandra://localhost/spillway"]);
    assert!(
        err.contains("\"cassandra\"") && err.contains("memory://"),
        "{err}"
    );
    // PostgreSQL keeps tables and leases for workers, not streams.
    let err = serve_fails_with(&["--stream-engine", "postgres://localhost/spillway"]);
    assert!(
        err.contains("kinesis+http(s)://HOST:PORT for the streams"),
        "{err}"
    );
    // Streams and tables on different engines: the atomic item-and-checkpoint commit
    // needs one.
    let err = serve_fails_with(&["--stream-engine", "memory://"]);
    assert!(err.contains("same engine"), "{err}");
    // AWS's own endpoints without credentials: refused before any call, naming the
    // variables (AWS's own refusal would not).
    let err = serve_fails_with(&[
        "--stream-engine",
        "kinesis://eu-west-1",
        "--table-engine",
        "dynamodb://eu-west-1",
    ]);
    assert!(
        err.contains("AWS_ACCESS_KEY_ID") && err.contains("kinesis.eu-west-1.amazonaws.com"),
        "{err}"
    );
}
