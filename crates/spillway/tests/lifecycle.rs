//! A configured stream's life cycle through the Kinesis API: deleted and created again
//! under the same name, its mapping follows it, while spillway runs and across restarts,
//! so nothing acknowledged is lost; deleted and not created again, its route says so.

#![allow(clippy::unwrap_used)] // tests fail loudly on any surprise

mod common;

use common::*;
use serde_json::{Value, json};

/// Calls the Kinesis API on the server; returns (status, body).
async fn kinesis(c: &reqwest::Client, s: &Server, action: &str, body: Value) -> (u16, Value) {
    let r = c
        .post(s.url("/"))
        .header("x-amz-target", format!("Kinesis_20131202.{action}"))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-date", "20261125T120000Z")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20261125/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Deletes example-stream and waits until it is gone.
async fn delete_stream(c: &reqwest::Client, s: &Server) {
    let (status, v) = kinesis(
        c,
        s,
        "DeleteStream",
        json!({"StreamName": "example-stream"}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    wait_until(30, "the stream to be deleted", || async {
        let (status, _) = kinesis(
            c,
            s,
            "DescribeStreamSummary",
            json!({"StreamName": "example-stream"}),
        )
        .await;
        status == 400
    })
    .await;
}

/// Creates example-stream (one shard) and waits until it is ACTIVE.
async fn create_stream(c: &reqwest::Client, s: &Server) {
    let (status, v) = kinesis(
        c,
        s,
        "CreateStream",
        json!({"StreamName": "example-stream", "ShardCount": 1}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    wait_until(30, "the stream to be active", || async {
        let (_, v) = kinesis(
            c,
            s,
            "DescribeStreamSummary",
            json!({"StreamName": "example-stream"}),
        )
        .await;
        v["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"
    })
    .await;
}

/// Posts `n` bodies `{prefix} {i}` to /dev; returns them.
async fn post_many(c: &reqwest::Client, s: &Server, prefix: &str, n: usize) -> Vec<String> {
    let mut sent = Vec::new();
    for i in 0..n {
        let body = format!("{prefix} {i}");
        post(c, s, &body).await;
        sent.push(body);
    }
    sent
}

/// Waits until the table holds exactly the `sent` messages, once each.
async fn assert_table_holds(c: &reqwest::Client, s: &Server, sent: &[String]) {
    wait_until(60, &format!("{} items", sent.len()), || async {
        item_count(c, s, "example-table").await >= sent.len() as u64
    })
    .await;
    let mut got = messages(&scan_table(c, s, "example-table").await);
    got.sort();
    let mut want = sent.to_vec();
    want.sort();
    assert_eq!(got, want, "every acknowledged POST lands, once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mapping_follows_its_stream_through_delete_and_recreate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let mut s = Server::start(&data, None);
    let c = client();
    let mut sent = post_many(&c, &s, "before", 5).await;
    assert_table_holds(&c, &s, &sent).await;

    delete_stream(&c, &s).await;
    create_stream(&c, &s).await;
    sent.extend(post_many(&c, &s, "recreated", 20).await);
    assert_table_holds(&c, &s, &sent).await;
    let log = s.stderr();
    assert!(
        log.contains("the mapping's stream was created again"),
        "{log}"
    );

    // After a restart the mapping reads the new stream from its checkpoint.
    assert_eq!(s.terminate().code(), Some(0));
    let s = Server::start(&data, None);
    sent.extend(post_many(&c, &s, "restarted", 20).await);
    assert_table_holds(&c, &s, &sent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_acknowledged_on_a_recreated_stream_before_a_restart_land() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let mut s = Server::start(&data, None);
    let c = client();
    let mut sent = post_many(&c, &s, "before", 5).await;
    assert_table_holds(&c, &s, &sent).await;
    assert_eq!(s.terminate().code(), Some(0));

    // The mapping is declared but not polling while the stream is replaced and written.
    let paused = config_with(|t| t.replacen("Enabled = true", "Enabled = false", 1));
    let mut s = Server::start(&data, Some(&paused));
    delete_stream(&c, &s).await;
    create_stream(&c, &s).await;
    sent.extend(post_many(&c, &s, "while paused", 20).await);
    s.kill9();

    // Polling again, the mapping finds its stream re-created: it reads it from the start,
    // not from LATEST, so the records acknowledged meanwhile land.
    let s = Server::start(&data, None);
    sent.extend(post_many(&c, &s, "restarted", 10).await);
    assert_table_holds(&c, &s, &sent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_stream_is_refused_by_its_route_with_a_client_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), None);
    let c = client();
    delete_stream(&c, &s).await;
    let r = c.post(s.url("/dev")).body("hello").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["__type"], "ResourceNotFoundException", "{v}");
    assert_eq!(
        v["message"], "Stream example-stream under account 000000000000 not found.",
        "{v}"
    );
    wait_until(10, "warnings about the deleted stream", || async {
        let log = s.stderr();
        log.contains("the mapping's stream was deleted") && log.contains("ingest refused")
    })
    .await;
}
