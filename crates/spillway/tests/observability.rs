//! What a user watches to know whether the pipeline keeps up: Prometheus metrics named
//! after CloudWatch's, an iterator age that grows while a shard is stuck, and a warning
//! in the log when a function fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;

/// The value of the first sample of `name` whose labels contain every `labels` pair.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            let Some(rest) = l.strip_prefix(name) else {
                return false;
            };
            (rest.starts_with('{') || rest.starts_with(' '))
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn scrape(c: &reqwest::Client, s: &Server) -> String {
    let resp = c.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    resp.text().await.unwrap()
}

#[tokio::test]
async fn metrics_named_after_cloudwatch_count_a_short_load() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), None);
    let c = client();
    for i in 0..20 {
        post(&c, &s, &reference_body(i)).await;
    }
    wait_until(20, "20 items in the table", || async {
        item_count(&c, &s, "example-table").await == 20
    })
    .await;
    // The item count is a full pass, recounted at most every second.
    wait_until(5, "spillway_table_items at 20", || async {
        sample(&scrape(&c, &s).await, "spillway_table_items", &[]) == Some(20.0)
    })
    .await;
    let text = scrape(&c, &s).await;
    let shard = [
        ("stream", "example-stream"),
        ("shard", "shardId-000000000000"),
    ];
    assert_eq!(
        sample(&text, "spillway_stream_incoming_records_total", &shard),
        Some(20.0)
    );
    assert!(sample(&text, "spillway_stream_incoming_bytes_total", &shard).unwrap() > 20.0 * 10.0);
    assert_eq!(
        sample(&text, "spillway_stream_write_throttled_total", &shard),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "spillway_stream_read_throttled_total", &shard),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "spillway_mapping_iterator_age_milliseconds", &shard),
        Some(0.0),
        "caught up: age 0"
    );
    let f = [("function", "kinesis-to-dynamo")];
    assert!(sample(&text, "spillway_mapping_invocations_total", &f).unwrap() >= 1.0);
    assert_eq!(
        sample(&text, "spillway_mapping_errors_total", &f),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "spillway_mapping_dead_letters_total", &[]),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "spillway_function_concurrent_executions", &f),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "spillway_function_throttles_total", &f),
        Some(0.0)
    );
    assert!(sample(&text, "spillway_function_duration_seconds_count", &f).unwrap() >= 1.0);
    let t = [("table", "example-table")];
    assert_eq!(sample(&text, "spillway_table_items", &t), Some(20.0));
    assert_eq!(sample(&text, "spillway_table_writes_total", &t), Some(20.0));
    assert_eq!(
        sample(
            &text,
            "spillway_http_requests_total",
            &[("api", "ingest"), ("action", "/dev"), ("status", "200")]
        ),
        Some(20.0)
    );
    assert!(
        sample(
            &text,
            "spillway_http_request_duration_seconds_count",
            &[("api", "ingest")]
        )
        .unwrap()
            >= 20.0
    );
    assert!(sample(&text, "spillway_commit_fsync_seconds_count", &[]).unwrap() >= 1.0);
    assert_eq!(
        sample(&text, "spillway_commit_records_sum", &[]),
        Some(20.0)
    );
    // Every response carries a request id, the metrics' own included.
    let resp = c.get(s.url("/_spillway/health")).send().await.unwrap();
    assert!(resp.headers().contains_key("x-amzn-requestid"));
}

#[tokio::test]
async fn a_stuck_shard_shows_a_growing_iterator_age_and_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(|t| {
        t.replace(
            "fail_records_containing = \"\"",
            "fail_records_containing = \"poison\"",
        )
    });
    let s = Server::start(&dir.path().join("data"), Some(&config));
    let c = client();
    post(&c, &s, r#"{"message": "poison"}"#).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let shard = [
        ("stream", "example-stream"),
        ("shard", "shardId-000000000000"),
    ];
    let first = sample(
        &scrape(&c, &s).await,
        "spillway_mapping_iterator_age_milliseconds",
        &shard,
    )
    .unwrap();
    assert!(first >= 2500.0, "iterator age after 3 s: {first} ms");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let text = scrape(&c, &s).await;
    let second = sample(&text, "spillway_mapping_iterator_age_milliseconds", &shard).unwrap();
    assert!(
        second >= first + 800.0,
        "age grows with the clock: {first} then {second}"
    );
    assert!(sample(&text, "spillway_mapping_errors_total", &[]).unwrap() >= 1.0);
    // The inspection API agrees.
    let (_, mappings) = get_json(&c, &s.url("/_spillway/mappings")).await;
    assert!(mappings[0]["iterator_age_ms"].as_u64().unwrap() >= 3000);
    // And the log says so at the default level, without flooding it.
    let log = s.stderr();
    let warnings = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("function invocation failed"))
        .count();
    assert!(warnings >= 1, "no warning in the log:\n{log}");
    assert!(
        warnings <= 6,
        "{warnings} warnings in 4 s: not rate-limited"
    );
}

#[tokio::test]
async fn a_function_whose_command_does_not_exist_is_an_error_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(|t| {
        t.replace("kind = \"builtin:kinesis-to-dynamo\"", "kind = \"process\"")
            .replace(
                "command = []",
                "command = [\"/nonexistent/spillway-handler\"]",
            )
    });
    let s = Server::start(&dir.path().join("data"), Some(&config));
    let log = s.stderr();
    assert!(
        log.contains("ERROR") && log.contains("/nonexistent/spillway-handler"),
        "{log}"
    );
}
