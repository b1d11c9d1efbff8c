//! The ingest route and the stream behind it, driven through a real `spillway serve`.

#![allow(clippy::unwrap_used)] // tests fail loudly on any surprise

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use common::*;
use md5::{Digest, Md5};

fn four_shards_by_header() -> String {
    config_with(|t| {
        t.replace("shard_count = 1", "shard_count = 4").replace(
            "partition_key = { from = \"request_id\" }",
            "partition_key = { from = \"header\", name = \"x-key\" }",
        )
    })
}

/// Acked (shard, sequence number) -> body, from `n` concurrent POSTs of distinct bodies.
async fn post_concurrently(
    s: &Server,
    n: usize,
    concurrency: usize,
    body: impl Fn(usize) -> Vec<u8> + Send + Sync + 'static,
) -> HashMap<(String, String), Vec<u8>> {
    let c = client();
    let url = Arc::new(s.url("/dev"));
    let body = Arc::new(body);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (c, url, body, next) = (c.clone(), url.clone(), body.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return acked;
                }
                let b = body(i);
                let r = c
                    .post(url.as_str())
                    .header("x-key", format!("key-{i}"))
                    .body(b.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let v: serde_json::Value = r.json().await.unwrap();
                acked.push((
                    (
                        v["ShardId"].as_str().unwrap().to_owned(),
                        v["SequenceNumber"].as_str().unwrap().to_owned(),
                    ),
                    b,
                ));
            }
        }));
    }
    let mut all = HashMap::new();
    for t in tasks {
        for (k, b) in t.await.unwrap() {
            assert!(
                all.insert(k, b).is_none(),
                "a sequence number was handed out twice"
            );
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_posts_are_readable_in_order_with_exact_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), Some(&four_shards_by_header()));
    // Arbitrary bytes, not only text: the body is the record, byte for byte.
    let acked = post_concurrently(&s, 2000, 64, |i| {
        let mut b = format!("{{\"index\": {i}, \"message\": \"Test message {i}\"}}").into_bytes();
        b.extend((0..(i % 50) as u8).map(|x| x.wrapping_mul(37)));
        b
    })
    .await;
    assert_eq!(acked.len(), 2000);
    let c = client();
    let mut seen = 0;
    for shard in shard_ids(&c, &s, "example-stream").await {
        let records = read_shard(&c, &s, "example-stream", &shard).await;
        for w in records.windows(2) {
            assert!(
                w[0].sequence_number < w[1].sequence_number,
                "per-shard order"
            );
            assert!(w[0].arrival_ms <= w[1].arrival_ms);
        }
        for r in &records {
            let sent = &acked[&(shard.clone(), r.sequence_number.clone())];
            assert_eq!(&r.data, sent);
        }
        seen += records.len();
    }
    assert_eq!(seen, 2000);
}

/// Kinesis' documented split of the hash-key space for 4 shards.
const FOUR_SHARD_STARTS: [u128; 4] = [
    0,
    85070591730234615865843651857942052864,
    170141183460469231731687303715884105728,
    255211775190703847597530955573826158592,
];

#[tokio::test]
async fn partition_keys_route_by_md5_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), Some(&four_shards_by_header()));
    let c = client();
    let (_, v) = get_json(&c, &s.url("/_spillway/streams/example-stream")).await;
    let starts: Vec<u128> = v["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["starting_hash_key"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(starts, FOUR_SHARD_STARTS);
    let mut used = std::collections::HashSet::new();
    for i in 0..64 {
        let key = format!("user-{i}");
        let r = c
            .post(s.url("/dev"))
            .header("x-key", &key)
            .body("x")
            .send()
            .await
            .unwrap();
        let v: serde_json::Value = r.json().await.unwrap();
        let hash = u128::from_be_bytes(Md5::digest(key.as_bytes()).into());
        let expected = FOUR_SHARD_STARTS.iter().rposition(|s| *s <= hash).unwrap();
        assert_eq!(v["ShardId"], format!("shardId-{expected:012}"), "key {key}");
        used.insert(expected);
    }
    assert_eq!(used.len(), 4, "64 keys spread over all four shards");
}

#[tokio::test]
async fn partition_key_from_json_field_and_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let text = config_with(|t| {
        t.replace(
            "partition_key = { from = \"request_id\" }",
            "partition_key = { from = \"json_field\", field = \"user\" }",
        ) + "\n[[routes]]\nmethod = \"PUT\"\npath = \"/raw\"\nstream = \"example-stream\"\n"
    });
    let s = Server::start(&dir.path().join("d"), Some(&text));
    let c = client();
    for body in [r#"{"user": "alice", "n": 1}"#, r#"{"user": 42}"#] {
        let r = c.post(s.url("/dev")).body(body).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = c
        .put(s.url("/raw"))
        .body("plain text")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let records = read_shard(&c, &s, "example-stream", "shardId-000000000000").await;
    assert_eq!(records[0].partition_key, "alice");
    assert_eq!(records[1].partition_key, "42");
    // The default partition key is a fresh request id (a UUID), as $context.requestId.
    assert!(uuid::Uuid::parse_str(&records[2].partition_key).is_ok());
    assert_eq!(records[2].data, b"plain text");

    // No such field, and a body that is not JSON: 400, nothing appended.
    for body in [r#"{"other": 1}"#, "not json"] {
        let r = c.post(s.url("/dev")).body(body).send().await.unwrap();
        assert_eq!(r.status(), 400);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["__type"], "BadRequestException");
        assert!(v["message"].as_str().unwrap().contains("user"), "{v}");
    }
    assert_eq!(
        read_shard(&c, &s, "example-stream", "shardId-000000000000")
            .await
            .len(),
        3
    );
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), Some(&four_shards_by_header()));
    let c = client();
    let err = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let v: serde_json::Value = r.json().await.unwrap();
        (
            status,
            v["__type"].as_str().unwrap().to_owned(),
            v["message"].as_str().unwrap().to_owned(),
        )
    };

    // Over the record limit: data alone, and data plus partition key.
    let big = vec![b'a'; 1024 * 1024 + 1];
    let r = c
        .post(s.url("/dev"))
        .header("x-key", "k")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(err(r).await.0, 413);
    let exactly = vec![b'a'; 1024 * 1024];
    let r = c
        .post(s.url("/dev"))
        .header("x-key", "k")
        .body(exactly)
        .send()
        .await
        .unwrap();
    let (status, kind, _) = err(r).await;
    assert_eq!(
        (status, kind.as_str()),
        (413, "RequestEntityTooLargeException")
    );
    // At the limit with the key counted, it fits.
    let fits = vec![b'a'; 1024 * 1024 - 1];
    let r = c
        .post(s.url("/dev"))
        .header("x-key", "k")
        .body(fits)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let r = c
        .post(s.url("/dev"))
        .header("x-key", "k")
        .send()
        .await
        .unwrap();
    assert_eq!(
        err(r).await,
        (
            400,
            "BadRequestException".into(),
            "Request body is empty; nothing to put on the stream".into()
        )
    );
    let r = c.post(s.url("/dev")).body("x").send().await.unwrap();
    let (status, kind, message) = err(r).await;
    assert_eq!((status, kind.as_str()), (400, "BadRequestException"));
    assert!(message.contains("x-key"), "{message}");
    let long_key = "k".repeat(257);
    let r = c
        .post(s.url("/dev"))
        .header("x-key", long_key)
        .body("x")
        .send()
        .await
        .unwrap();
    let (status, kind, _) = err(r).await;
    assert_eq!((status, kind.as_str()), (400, "InvalidArgumentException"));
    let r = c
        .post(s.url("/dev"))
        .header("x-key", "k".repeat(256))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let r = c.post(s.url("/nope")).body("x").send().await.unwrap();
    assert_eq!(err(r).await.0, 404);
    let r = c.get(s.url("/dev")).send().await.unwrap();
    assert_eq!(r.headers()["allow"], "POST");
    assert_eq!(err(r).await.0, 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_queue_answers_503_and_loses_nothing_acknowledged() {
    // A queue of 4 records, and a slow commit, so that 100 concurrent posts overflow it.
    full_queue_answers_503(
        |t| t.replace("queue_records = 20000", "queue_records = 4"),
        100,
        0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_queue_full_of_bytes_answers_503_and_loses_nothing_acknowledged() {
    // The smallest byte bound (1 MiB, one largest record) and records of 300 KB, the
    // record count unbounded: the byte bound fills.
    full_queue_answers_503(
        |t| t.replace("queue_bytes = 67108864", "queue_bytes = 1048576"),
        30,
        300_000,
    )
    .await;
}

/// `n` concurrent posts (`record {i}` and `pad` bytes more) against a queue that `bound`
/// makes small and a commit that sleeps 200 ms: some are answered 503 with Retry-After,
/// and exactly the acknowledged ones are stored.
async fn full_queue_answers_503(bound: impl FnOnce(String) -> String, n: usize, pad: usize) {
    let dir = tempfile::tempdir().unwrap();
    let text = config_with(|t| bound(t.replace("commit_delay_ms = 0", "commit_delay_ms = 200")));
    let s = Server::start(&dir.path().join("d"), Some(&text));
    let c = client();
    let mut tasks = Vec::new();
    let body = move |i: usize| format!("record {i}{}", "x".repeat(pad));
    for i in 0..n {
        let (c, url) = (c.clone(), s.url("/dev"));
        tasks.push(tokio::spawn(async move {
            let r = c.post(url).body(body(i)).send().await.unwrap();
            let status = r.status().as_u16();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let v: serde_json::Value = r.json().await.unwrap();
            (i, status, retry, v)
        }));
    }
    let mut acked = HashMap::new();
    let mut rejected = 0;
    for t in tasks {
        let (i, status, retry, v) = t.await.unwrap();
        match status {
            200 => {
                acked.insert(v["SequenceNumber"].as_str().unwrap().to_owned(), body(i));
            }
            503 => {
                rejected += 1;
                assert_eq!(retry.as_deref(), Some("1"));
                assert_eq!(v["__type"], "ServiceUnavailableException");
            }
            other => panic!("unexpected status {other}: {v}"),
        }
    }
    assert!(rejected > 0, "the queue never filled");
    assert!(!acked.is_empty());
    let records = read_shard(&c, &s, "example-stream", "shardId-000000000000").await;
    assert_eq!(
        records.len(),
        acked.len(),
        "exactly the acknowledged records are stored"
    );
    for r in records {
        assert_eq!(acked[&r.sequence_number].as_bytes(), r.data.as_slice());
    }
}

#[tokio::test]
async fn iterator_positions() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), None);
    let c = client();
    let shard = "shardId-000000000000";
    let mut seqs = Vec::new();
    let mut before_third = 0;
    for i in 0..5 {
        if i == 2 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            before_third = spillway::stream::now_ms();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let r = c
            .post(s.url("/dev"))
            .body(format!("r{i}"))
            .send()
            .await
            .unwrap();
        let v: serde_json::Value = r.json().await.unwrap();
        seqs.push(v["SequenceNumber"].as_str().unwrap().to_owned());
    }
    let page = |q: String| {
        let (c, s) = (&c, &s);
        async move { read_page(c, s, "example-stream", shard, &q).await }
    };
    let bodies = |rs: &[ReadRecord]| {
        rs.iter()
            .map(|r| String::from_utf8(r.data.clone()).unwrap())
            .collect::<Vec<_>>()
    };

    let (all, _) = page("position=TRIM_HORIZON".into()).await;
    assert_eq!(bodies(&all), ["r0", "r1", "r2", "r3", "r4"]);
    let (two, cursor) = page("position=TRIM_HORIZON&limit=2".into()).await;
    assert_eq!(bodies(&two), ["r0", "r1"]);
    let (rest, _) = page(format!("position=CURSOR&cursor={cursor}")).await;
    assert_eq!(bodies(&rest), ["r2", "r3", "r4"]);
    let (at, _) = page(format!(
        "position=AT_SEQUENCE_NUMBER&sequence_number={}",
        seqs[3]
    ))
    .await;
    assert_eq!(bodies(&at), ["r3", "r4"]);
    let (after, _) = page(format!(
        "position=AFTER_SEQUENCE_NUMBER&sequence_number={}",
        seqs[3]
    ))
    .await;
    assert_eq!(bodies(&after), ["r4"]);
    let (ts, _) = page(format!("position=AT_TIMESTAMP&timestamp={before_third}")).await;
    assert_eq!(bodies(&ts), ["r2", "r3", "r4"]);
    let (future, _) = page(format!(
        "position=AT_TIMESTAMP&timestamp={}",
        before_third + 3_600_000
    ))
    .await;
    assert!(future.is_empty());

    // LATEST: nothing now, then exactly what arrives afterwards.
    let (latest, cursor) = page("position=LATEST".into()).await;
    assert!(latest.is_empty());
    c.post(s.url("/dev")).body("r5").send().await.unwrap();
    let (new, _) = page(format!("position=CURSOR&cursor={cursor}")).await;
    assert_eq!(bodies(&new), ["r5"]);

    // Millis behind latest: zero once caught up.
    let (_, v) = get_json(
        &c,
        &s.url(&format!(
            "/_spillway/streams/example-stream/shards/{shard}/records?position=TRIM_HORIZON"
        )),
    )
    .await;
    assert_eq!(v["millis_behind_latest"], 0);

    // Bad positions are 400s, never 500s.
    for q in [
        "position=AT_SEQUENCE_NUMBER&sequence_number=12345".to_owned(),
        "position=AT_SEQUENCE_NUMBER&sequence_number=garbage".to_owned(),
        format!(
            "position=AT_SEQUENCE_NUMBER&sequence_number={}",
            seqs[0].replacen("0000000000000000000000", "0000000000000000000001", 1)
        ),
        "position=SOMEWHERE".to_owned(),
    ] {
        let r = c
            .get(s.url(&format!(
                "/_spillway/streams/example-stream/shards/{shard}/records?{q}"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{q}");
    }
    let r = c
        .get(s.url(
            "/_spillway/streams/example-stream/shards/shardId-000000000009/records?position=LATEST",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_answers_the_requests_in_flight_and_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let text = config_with(|t| t.replace("commit_delay_ms = 0", "commit_delay_ms = 1000"));
    let mut s = Server::start(&data, Some(&text));
    let c = client();
    let posts: Vec<_> = (0..20)
        .map(|i| {
            let (c, url) = (c.clone(), s.url("/dev"));
            tokio::spawn(async move {
                let r = c
                    .post(url)
                    .body(format!("in flight {i}"))
                    .send()
                    .await
                    .unwrap();
                let answered = std::time::Instant::now();
                let status = r.status().as_u16();
                let v: serde_json::Value = r.json().await.unwrap();
                (status, v, answered)
            })
        })
        .collect();
    // Every request reaches the server well within this; each then waits a second on
    // the commit.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let signalled = std::time::Instant::now();
    let status = tokio::task::block_in_place(|| s.terminate());
    assert!(status.success(), "exit status {status:?}: {}", s.stderr());
    let mut acked = Vec::new();
    for p in posts {
        let (status, v, answered) = p.await.unwrap();
        assert_eq!(status, 200, "{v}");
        assert!(
            answered > signalled,
            "answered before the signal: not in flight"
        );
        acked.push(v["SequenceNumber"].as_str().unwrap().to_owned());
    }
    let s = Server::start(&data, None);
    let stored: HashSet<String> = read_shard(&c, &s, "example-stream", "shardId-000000000000")
        .await
        .into_iter()
        .map(|r| r.sequence_number)
        .collect();
    assert_eq!(stored.len(), 20);
    assert!(acked.iter().all(|a| stored.contains(a)));
}

#[tokio::test]
async fn graceful_shutdown_exits_zero_and_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let mut s = Server::start(&data, None);
    let c = client();
    let mut last = String::new();
    for i in 0..10 {
        let v: serde_json::Value = c
            .post(s.url("/dev"))
            .body(format!("m{i}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        last = v["SequenceNumber"].as_str().unwrap().to_owned();
    }
    let status = s.terminate();
    assert!(status.success(), "exit status {status:?}: {}", s.stderr());
    let s = Server::start(&data, None);
    let records = read_shard(&c, &s, "example-stream", "shardId-000000000000").await;
    assert_eq!(records.len(), 10);
    let v: serde_json::Value = c
        .post(s.url("/dev"))
        .body("after")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["SequenceNumber"].as_str().unwrap() > last.as_str());
}

#[test]
fn unknown_config_keys_name_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        config_with(|t| t.replace("shard_count = 1", "shard_count = 1\nshard_cuont = 2")),
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.path().join("d"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("shard_cuont") && err.contains("bad.toml"),
        "{err}"
    );
}

#[tokio::test]
async fn printed_default_config_runs_as_a_config_file() {
    let out = std::process::Command::new(BIN)
        .arg("config")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .count()
            > 20
    );
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), Some(&text));
    let r = client()
        .post(s.url("/dev"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn the_stream_command_shows_shards_and_last_records() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), None);
    let c = client();
    for i in 0..3 {
        c.post(s.url("/dev"))
            .body(format!(
                "{{\"index\": {i}, \"message\": \"Test message {i}\"}}"
            ))
            .send()
            .await
            .unwrap();
    }
    let out = std::process::Command::new(BIN)
        .args([
            "stream",
            "example-stream",
            "--last",
            "2",
            "--endpoint",
            &s.base,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("example-stream  (3 records, 1 shards"),
        "{text}"
    );
    assert!(text.contains("shardId-000000000000"), "{text}");
    assert!(
        text.contains("Test message 2") && text.contains("Test message 1"),
        "{text}"
    );
    assert!(
        !text.contains("Test message 0"),
        "only the last two: {text}"
    );
}
