//! The whole pipeline through a real `spillway serve`: POST /dev -> example-stream ->
//! event source mapping -> function -> example-table.

#![allow(clippy::unwrap_used)] // tests fail loudly on any surprise

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_concurrent_posts_land_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), None);
    let c = client();
    let sent = spike(&s, 10_000, 100).await;
    wait_until(120, "10,000 items", || async {
        item_count(&c, &s, "example-table").await >= 10_000
    })
    .await;
    let items = scan_table(&c, &s, "example-table").await;
    assert_eq!(items.len(), 10_000);
    let mut got = messages(&items);
    let mut want = sent;
    got.sort();
    want.sort();
    assert_eq!(got, want);
    // Each item's ID is distinct (one item per record).
    let ids: HashSet<_> = items
        .iter()
        .map(|i| i["ID"]["S"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 10_000);
}

/// Posts continuously until `stop`; returns the acknowledged messages.
async fn post_until_stopped(url: String, stop: Arc<AtomicBool>, workers: usize) -> Vec<String> {
    let c = client();
    let counter = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (c, url, stop, counter) = (c.clone(), url.clone(), stop.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                match c.post(&url).body(reference_body(i)).send().await {
                    Ok(r) if r.status() == 200 => {
                        if r.bytes().await.is_ok() {
                            acked.push(format!("Test message {i}"));
                        }
                    }
                    _ => break,
                }
            }
            acked
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

/// Every acknowledged message is in the table exactly once, and nothing else is.
fn assert_exactly_once(items: &[serde_json::Value], acked: &[String], attempted: usize) {
    let got = messages(items);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for m in &got {
        *counts.entry(m.as_str()).or_default() += 1;
    }
    let dupes: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dupes.is_empty(), "duplicates: {dupes:?}");
    for m in acked {
        assert!(
            counts.contains_key(m.as_str()),
            "acknowledged {m} is missing"
        );
    }
    // Records durable but cut off before their 200 may land too; nothing else may.
    for m in &got {
        let i: usize = m.trim_start_matches("Test message ").parse().unwrap();
        assert!(i < attempted, "{m} was never sent");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_ingest_and_during_drain_keeps_exactly_the_acknowledged_set() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    // A slow function (20 ms per batch of 10) so that a backlog builds up to kill into.
    let config = config_with(|t| {
        t.replace("delay_ms = 0", "delay_ms = 20")
            .replace("BatchSize = 100", "BatchSize = 10")
    });

    // Act 1: kill -9 while 50 clients are posting.
    let mut s = Server::start(&data, Some(&config));
    let stop = Arc::new(AtomicBool::new(false));
    let poster = tokio::spawn(post_until_stopped(s.url("/dev"), stop.clone(), 50));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    s.kill9();
    stop.store(true, Ordering::Relaxed);
    let mut acked = poster.await.unwrap();
    assert!(acked.len() > 50, "the load barely ran");

    // Act 2: restart, post a second wave, and kill -9 while the drain is behind.
    let mut s = Server::start(&data, Some(&config));
    let c = client();
    let first = acked.len();
    let wave: Vec<String> = {
        let mut v = Vec::new();
        for i in 0..600 {
            let n = 1_000_000 + i;
            post(&c, &s, &reference_body(n)).await;
            v.push(format!("Test message {n}"));
        }
        v
    };
    acked.extend(wave);
    let (_, m) = get_json(&c, &s.url("/_spillway/mappings")).await;
    assert!(
        m[0]["shards"][0]["behind"].as_u64().unwrap() > 0,
        "the drain was not behind: {m}"
    );
    s.kill9();

    // Restart and let it drain: exactly the acknowledged set, each once.
    let s = Server::start(&data, Some(&config));
    let attempted = 1_000_600;
    wait_until(120, "the drain to finish", || async {
        let (_, m) = get_json(&c, &s.url("/_spillway/mappings")).await;
        m[0]["shards"][0]["behind"] == 0
    })
    .await;
    let items = scan_table(&c, &s, "example-table").await;
    assert!(
        items.len() >= acked.len(),
        "{} items for {} acks ({first} in act 1)",
        items.len(),
        acked.len()
    );
    assert_exactly_once(&items, &acked, attempted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bisect_isolates_a_poison_record_and_dead_letters_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(|t| {
        t.replace(
            "fail_records_containing = \"\"",
            "fail_records_containing = \"poison\"",
        )
        .replace("BatchSize = 100", "BatchSize = 16")
        .replace(
            "MaximumBatchingWindowInSeconds = 0",
            "MaximumBatchingWindowInSeconds = 1",
        )
        .replace(
            "BisectBatchOnFunctionError = false",
            "BisectBatchOnFunctionError = true",
        )
        .replace("MaximumRetryAttempts = -1", "MaximumRetryAttempts = 2")
    });
    let s = Server::start(&dir.path().join("d"), Some(&config));
    let c = client();
    let mut poison_seq = String::new();
    for i in 0..16 {
        let body = if i == 9 {
            "{\"message\": \"poison pill\"}".to_owned()
        } else {
            reference_body(i)
        };
        let seq = post(&c, &s, &body).await;
        if i == 9 {
            poison_seq = seq;
        }
    }
    wait_until(30, "a dead letter", || async {
        !dead_letters(&c, &s).await.is_empty()
    })
    .await;
    wait_until(30, "15 items", || async {
        item_count(&c, &s, "example-table").await == 15
    })
    .await;
    let letters = dead_letters(&c, &s).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let d = &letters[0]["record"];
    assert_eq!(d["requestContext"]["condition"], "RetryAttemptsExhausted");
    assert!(
        d["requestContext"]["approximateInvokeCount"]
            .as_u64()
            .unwrap()
            >= 3,
        "{d}"
    );
    assert_eq!(
        d["requestContext"]["functionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:kinesis-to-dynamo"
    );
    assert_eq!(d["responseContext"]["functionError"], "Unhandled");
    let info = &d["KinesisBatchInfo"];
    assert_eq!(info["shardId"], "shardId-000000000000");
    assert_eq!(info["batchSize"], 1);
    assert_eq!(info["startSequenceNumber"], poison_seq.as_str());
    assert_eq!(info["endSequenceNumber"], poison_seq.as_str());
    assert_eq!(
        info["streamArn"],
        "arn:aws:kinesis:us-east-1:000000000000:stream/example-stream"
    );
    assert!(
        info["approximateArrivalOfFirstRecord"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let mut got = messages(&scan_table(&c, &s, "example-table").await);
    got.sort();
    let mut want: Vec<String> = (0..16)
        .filter(|i| *i != 9)
        .map(|i| format!("Test message {i}"))
        .collect();
    want.sort();
    assert_eq!(got, want);
    // The shard moved on: new records land.
    post(&c, &s, &reference_body(100)).await;
    wait_until(30, "the record after the poison", || async {
        item_count(&c, &s, "example-table").await == 16
    })
    .await;

    // The dead-letters command shows it.
    let out = std::process::Command::new(BIN)
        .args(["dead-letters", "--endpoint", &s.base])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("RetryAttemptsExhausted") && text.contains(&poison_seq),
        "{text}"
    );

    // The dead letter is kept across a kill -9, and the poison record is not retried
    // after the restart: the checkpoint passed it.
    let mut s = s;
    s.kill9();
    let s = Server::start(&dir.path().join("d"), Some(&config));
    assert_eq!(dead_letters(&c, &s).await, letters);
    post(&c, &s, &reference_body(101)).await;
    wait_until(30, "the record after the restart", || async {
        item_count(&c, &s, "example-table").await == 17
    })
    .await;
    assert_eq!(dead_letters(&c, &s).await.len(), 1);
}

fn process_config(mode: &str, log: &std::path::Path, mapping: &str) -> String {
    config_before_mappings(|t| t)
        + &recorder_function("recorder", mode, log)
        + &mapping_block("recorder", mapping)
}

/// [`process_config`] with the route's partition key taken from the body's `key` field.
fn keyed_process_config(mode: &str, log: &std::path::Path, mapping: &str) -> String {
    process_config(mode, log, mapping).replace(
        "partition_key = { from = \"request_id\" }",
        "partition_key = { from = \"json_field\", field = \"key\" }",
    )
}

/// POSTs `{"key": "kK", "i": I}` for every I in `range` and every K below `keys`, in
/// that order.
async fn post_keyed(c: &reqwest::Client, s: &Server, keys: usize, range: std::ops::Range<usize>) {
    for i in range {
        for k in 0..keys {
            post(c, s, &format!("{{\"key\": \"k{k}\", \"i\": {i}}}")).await;
        }
    }
}

fn invocation_seqs(log: &std::path::Path) -> Vec<Vec<String>> {
    recorded_invocations(log)
        .iter()
        .map(|inv| {
            inv["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["seq"].as_str().unwrap().to_owned())
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_batch_failure_moves_the_checkpoint_to_the_lowest_failed_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.log");
    let config = process_config(
        "report-poison",
        &log,
        "BatchSize = 10\nMaximumBatchingWindowInSeconds = 1\nMaximumRetryAttempts = 1\nFunctionResponseTypes = [\"ReportBatchItemFailures\"]\nStartingPosition = \"TRIM_HORIZON\"",
    );
    let s = Server::start(&dir.path().join("d"), Some(&config));
    let c = client();
    let mut seqs = Vec::new();
    for i in 0..10 {
        let body = if i == 3 || i == 6 {
            format!("poison {i}")
        } else {
            format!("ok {i}")
        };
        seqs.push(post(&c, &s, &body).await);
    }
    wait_until(30, "a dead letter", || async {
        !dead_letters(&c, &s).await.is_empty()
    })
    .await;
    let calls = invocation_seqs(&log);
    // 1st: the whole batch; it reports #3 and #6, so the retry starts at #3 (the lowest).
    assert_eq!(calls[0], seqs);
    assert_eq!(calls[1], seqs[3..].to_vec());
    assert_eq!(
        calls.len(),
        2,
        "MaximumRetryAttempts = 1: one retry, then the dead letter"
    );
    let info = dead_letters(&c, &s).await[0]["record"]["KinesisBatchInfo"].clone();
    assert_eq!(info["startSequenceNumber"], seqs[3].as_str());
    assert_eq!(info["endSequenceNumber"], seqs[9].as_str());
    assert_eq!(info["batchSize"], 7);
    // The checkpoint is past the batch now: the next record is the next invocation.
    let next = post(&c, &s, "ok after").await;
    wait_until(20, "the next invocation", || async {
        invocation_seqs(&log).len() == 3
    })
    .await;
    assert_eq!(invocation_seqs(&log)[2], vec![next]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_batch_response_retries_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.log");
    let config = process_config(
        "malformed-once",
        &log,
        "BatchSize = 10\nMaximumBatchingWindowInSeconds = 1\nFunctionResponseTypes = [\"ReportBatchItemFailures\"]",
    );
    let s = Server::start(&dir.path().join("d"), Some(&config));
    let c = client();
    let mut seqs = Vec::new();
    for i in 0..5 {
        seqs.push(post(&c, &s, &format!("r{i}")).await);
    }
    wait_until(30, "two invocations", || async {
        invocation_seqs(&log).len() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls = invocation_seqs(&log);
    assert_eq!(
        calls.len(),
        2,
        "one malformed answer, one retry, then done: {calls:?}"
    );
    assert_eq!(calls[0], seqs);
    assert_eq!(calls[1], seqs);
    assert!(dead_letters(&c, &s).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_function_sees_lambdas_kinesis_event_in_shard_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.log");
    let config =
        process_config("ok", &log, "BatchSize = 7").replace("shard_count = 1", "shard_count = 3");
    let s = Server::start(&dir.path().join("d"), Some(&config));
    let c = client();
    let mut sent = 0;
    for _ in 0..4 {
        for _ in 0..30 {
            post(&c, &s, &format!("m{sent}")).await;
            sent += 1;
        }
    }
    wait_until(60, "every record", || async {
        recorded_invocations(&log)
            .iter()
            .map(|i| i["records"].as_array().unwrap().len())
            .sum::<usize>()
            == sent
    })
    .await;
    let mut last_by_shard: BTreeMap<String, String> = BTreeMap::new();
    for inv in recorded_invocations(&log) {
        let records = inv["records"].as_array().unwrap();
        assert!(records.len() <= 7);
        let shard = records[0]["shard"].as_str().unwrap().to_owned();
        for r in records {
            assert_eq!(r["shard"].as_str().unwrap(), shard, "one shard per batch");
            let seq = r["seq"].as_str().unwrap().to_owned();
            if let Some(prev) = last_by_shard.get(&shard) {
                assert!(seq > *prev, "out of order in {shard}: {seq} after {prev}");
            }
            last_by_shard.insert(shard.clone(), seq);
        }
        // Lambda's event shape.
        let e = &inv["first"];
        assert_eq!(e["eventSource"], "aws:kinesis");
        assert_eq!(e["eventVersion"], "1.0");
        assert_eq!(e["eventName"], "aws:kinesis:record");
        assert_eq!(e["awsRegion"], "us-east-1");
        assert_eq!(
            e["eventSourceARN"],
            "arn:aws:kinesis:us-east-1:000000000000:stream/example-stream"
        );
        assert!(
            e["invokeIdentityArn"]
                .as_str()
                .unwrap()
                .starts_with("arn:aws:iam::000000000000:role/")
        );
        assert_eq!(e["kinesis"]["kinesisSchemaVersion"], "1.0");
        assert!(e["kinesis"]["approximateArrivalTimestamp"].is_f64());
        assert!(e["kinesis"].get("encryptionType").is_none());
        assert_eq!(
            e["eventID"],
            format!(
                "{shard}:{}",
                e["kinesis"]["sequenceNumber"].as_str().unwrap()
            )
        );
    }
    assert_eq!(last_by_shard.len(), 3, "all three shards were polled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallelization_factor_keeps_each_partition_key_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.log");
    // Each invocation takes 0.3 s, so invocations that run at once overlap in time.
    let config = keyed_process_config(
        "slow",
        &log,
        "BatchSize = 5\nParallelizationFactor = 4\nMaximumBatchingWindowInSeconds = 1",
    );
    let s = Server::start(&dir.path().join("d"), Some(&config));
    let c = client();
    let keys = 8;
    let per_key = 25;
    post_keyed(&c, &s, keys, 0..per_key).await;
    wait_until(60, "every record", || async {
        recorded_invocations(&log)
            .iter()
            .map(|i| i["records"].as_array().unwrap().len())
            .sum::<usize>()
            == keys * per_key
    })
    .await;
    let mut next: HashMap<String, i64> = HashMap::new();
    for inv in recorded_invocations(&log) {
        for r in inv["records"].as_array().unwrap() {
            let body: serde_json::Value =
                serde_json::from_str(r["data"].as_str().unwrap()).unwrap();
            let key = body["key"].as_str().unwrap().to_owned();
            let i = body["i"].as_i64().unwrap();
            let expected = next.entry(key.clone()).or_insert(0);
            assert_eq!(i, *expected, "key {key} out of order");
            *expected += 1;
        }
    }
    assert_eq!(next.len(), keys);
    // And the shard's batches ran side by side: a serial poller would pass the order
    // checks above, but never run two invocations at once.
    let spans: Vec<(f64, f64)> = recorded_invocations(&log)
        .iter()
        .map(|i| (i["started"].as_f64().unwrap(), i["ended"].as_f64().unwrap()))
        .collect();
    let overlapping = spans
        .iter()
        .enumerate()
        .any(|(a, x)| spans.iter().skip(a + 1).any(|y| x.0 < y.1 && y.0 < x.1));
    assert!(overlapping, "no two invocations ran at once: {spans:?}");
}

/// ParallelizationFactor = 4 killed (kill -9) in the middle of a round: the round's
/// checkpoint is written only once every lane is done, so after the restart the round
/// runs again (a replay the test sees), and every key's records still arrive in order
/// with none missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallelization_factor_killed_mid_round_replays_the_round_in_order() {
    let keys = 8;
    let per_key = 10;
    let round = 5 * 4; // BatchSize x ParallelizationFactor
    // The kill must land while some lanes of a round have finished and others not; a
    // kill that lands between rounds is tried again (at most three times).
    for attempt in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("calls.log");
        let data = dir.path().join("d");
        // The window makes every round full (20 records) once the posts are in.
        let config = keyed_process_config(
            "slow",
            &log,
            "BatchSize = 5\nParallelizationFactor = 4\nMaximumBatchingWindowInSeconds = 1",
        );
        let mut s = Server::start(&data, Some(&config));
        let c = client();
        post_keyed(&c, &s, keys, 0..per_key).await;
        let logged = || -> usize {
            recorded_invocations(&log)
                .iter()
                .map(|i| i["records"].as_array().unwrap().len())
                .sum()
        };
        wait_until(60, "a round part done", || async {
            let n = logged();
            n >= round && n % round != 0
        })
        .await;
        s.kill9();
        let at_kill = recorded_invocations(&log).len();
        if logged() % round == 0 {
            continue; // the round completed before the kill landed
        }
        let s = Server::start(&data, Some(&config));
        wait_until(60, "every record after the restart", || async {
            let mut seen = HashSet::new();
            for inv in recorded_invocations(&log) {
                for r in inv["records"].as_array().unwrap() {
                    seen.insert(r["data"].as_str().unwrap().to_owned());
                }
            }
            seen.len() == keys * per_key
        })
        .await;
        drop(s);
        let calls = recorded_invocations(&log);
        let values = |calls: &[serde_json::Value]| {
            let mut by_key: HashMap<String, Vec<i64>> = HashMap::new();
            for inv in calls {
                for r in inv["records"].as_array().unwrap() {
                    let body: serde_json::Value =
                        serde_json::from_str(r["data"].as_str().unwrap()).unwrap();
                    by_key
                        .entry(body["key"].as_str().unwrap().to_owned())
                        .or_default()
                        .push(body["i"].as_i64().unwrap());
                }
            }
            by_key
        };
        let (before, after) = (values(&calls[..at_kill]), values(&calls[at_kill..]));
        let mut replayed = 0;
        for k in 0..keys {
            let key = format!("k{k}");
            let b = before.get(&key).cloned().unwrap_or_default();
            let a = after.get(&key).cloned().unwrap_or_default();
            // Each run, in order and without gaps; the second starts where the
            // checkpoint was, at or before where the first stopped, and reaches the end.
            for run in [&b, &a] {
                assert!(run.windows(2).all(|w| w[1] == w[0] + 1), "{key}: {run:?}");
            }
            assert_eq!(b.first().copied().unwrap_or(0), 0, "{key}: {b:?}");
            let next = b.last().map_or(0, |l| l + 1);
            let resumed = a.first().copied().unwrap_or(next);
            assert!(resumed <= next, "{key} skipped records: {b:?} then {a:?}");
            assert_eq!(
                a.last().copied().unwrap_or(next - 1),
                per_key as i64 - 1,
                "{key}: {a:?}"
            );
            replayed += (next - resumed) as usize;
        }
        if replayed == 0 {
            // The kill landed between two rounds after all: nothing to replay.
            continue;
        }
        eprintln!("attempt {attempt}: {replayed} records of the interrupted round ran again");
        return;
    }
    panic!("three kills in a row landed between rounds: no replay was seen");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_position_applies_on_first_start_only() {
    for (position, expect_first) in [("LATEST", 2), ("TRIM_HORIZON", 5)] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("d");
        let c = client();
        // Three records before any mapping exists.
        let mut s = Server::start(&data, Some(&config_without_mapping(|t| t)));
        for i in 0..3 {
            post(&c, &s, &reference_body(i)).await;
        }
        assert_eq!(s.terminate().code(), Some(0));

        let with_mapping = config_before_mappings(|t| t)
            + &mapping_block(
                "kinesis-to-dynamo",
                &format!("StartingPosition = \"{position}\""),
            );
        let mut s = Server::start(&data, Some(&with_mapping));
        for i in 3..5 {
            post(&c, &s, &reference_body(i)).await;
        }
        wait_until(20, "the first records", || async {
            item_count(&c, &s, "example-table").await == expect_first
        })
        .await;
        assert_eq!(s.terminate().code(), Some(0));

        // After a restart the mapping resumes from its checkpoint: nothing is replayed
        // and nothing posted since is skipped, whatever StartingPosition says.
        let s = Server::start(&data, Some(&with_mapping));
        post(&c, &s, &reference_body(5)).await;
        wait_until(20, "the record after restart", || async {
            item_count(&c, &s, "example-table").await == expect_first + 1
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (_, m) = get_json(&c, &s.url("/_spillway/mappings")).await;
        assert_eq!(
            m[0]["records_processed"], 1,
            "{position}: replayed after restart: {m}"
        );
    }
}

#[tokio::test]
async fn the_table_command_shows_count_and_items() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), None);
    let c = client();
    for i in 0..3 {
        post(&c, &s, &reference_body(i)).await;
    }
    wait_until(20, "three items", || async {
        item_count(&c, &s, "example-table").await == 3
    })
    .await;
    let out = std::process::Command::new(BIN)
        .args(["table", "example-table", "--endpoint", &s.base])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("example-table  (3 items)"), "{text}");
    assert!(text.contains("Message=\"Test message 2\""), "{text}");
}

/// Calls the Kinesis API on the server (signature not checked).
async fn kinesis(
    c: &reqwest::Client,
    s: &Server,
    action: &str,
    body: serde_json::Value,
) -> serde_json::Value {
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
    assert_eq!(r.status(), 200);
    // Operations without output (SplitShard) answer an empty body, as Kinesis does.
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

/// SplitShard of example-stream's first shard at the middle of the hash-key space.
async fn split_first_shard(c: &reqwest::Client, s: &Server) {
    kinesis(
        c,
        s,
        "SplitShard",
        serde_json::json!({
            "StreamName": "example-stream",
            "ShardToSplit": "shardId-000000000000",
            "NewStartingHashKey": "170141183460469231731687303715884105728",
        }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mapping_drains_a_parent_before_its_children_across_a_reshard() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.log");
    // A slow function (0.3 s an invocation), so the parent is behind when it splits.
    let config = keyed_process_config("slow", &log, "BatchSize = 10");
    let s = Server::start(&dir.path().join("d"), Some(&config));
    let c = client();
    let keys = 6;
    post_keyed(&c, &s, keys, 0..10).await;
    // Split while the slow function still has a backlog in the parent.
    split_first_shard(&c, &s).await;
    let processed_at_split: usize = recorded_invocations(&log)
        .iter()
        .map(|i| i["records"].as_array().unwrap().len())
        .sum();
    assert!(
        processed_at_split < keys * 10,
        "the parent was drained before the split ({processed_at_split} records): the test would not show the order"
    );
    post_keyed(&c, &s, keys, 10..20).await;
    wait_until(90, "every record", || async {
        recorded_invocations(&log)
            .iter()
            .map(|i| i["records"].as_array().unwrap().len())
            .sum::<usize>()
            == keys * 20
    })
    .await;
    let mut next: HashMap<String, i64> = HashMap::new();
    let mut shards = HashSet::new();
    for inv in recorded_invocations(&log) {
        for r in inv["records"].as_array().unwrap() {
            shards.insert(r["shard"].as_str().unwrap().to_owned());
            let body: serde_json::Value =
                serde_json::from_str(r["data"].as_str().unwrap()).unwrap();
            let key = body["key"].as_str().unwrap().to_owned();
            let i = body["i"].as_i64().unwrap();
            let expected = next.entry(key.clone()).or_insert(0);
            assert_eq!(i, *expected, "key {key} out of order across the reshard");
            *expected += 1;
        }
    }
    assert!(
        shards.len() >= 2,
        "records came from the parent and a child: {shards:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_latest_mapping_on_a_resharded_stream_skips_what_the_children_hold() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    // No mapping yet: records go to the parent, then (after a split) to the children.
    let mut s = Server::start(&data, Some(&config_without_mapping(|t| t)));
    let c = client();
    for i in 0..10 {
        post(&c, &s, &format!("before-split-{i}")).await;
    }
    split_first_shard(&c, &s).await;
    for i in 0..10 {
        post(&c, &s, &format!("after-split-{i}")).await;
    }
    assert_eq!(s.terminate().code(), Some(0));

    // The reference mapping (LATEST) is created now: only what arrives from now on.
    let s = Server::start(&data, None);
    assert!(
        s.stderr()
            .contains("resharded through the Kinesis API; its open shards"),
        "the config's shard_count = 1 is overridden, and said so: {}",
        s.stderr()
    );
    let mut sent = Vec::new();
    for i in 0..5 {
        let m = format!("after-mapping-{i}");
        post(&c, &s, &m).await;
        sent.push(m);
    }
    wait_until(30, "the new records", || async {
        item_count(&c, &s, "example-table").await >= 5
    })
    .await;
    // Give an (incorrect) replay of the children's old records time to show up.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut got = messages(&scan_table(&c, &s, "example-table").await);
    got.sort();
    assert_eq!(got, sent);
}
