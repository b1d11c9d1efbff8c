//! What the pattern avoids and what the stream itself limits: the direct route's 429s,
//! and Kinesis' per-shard write limits with `enforce_limits`.

#![allow(clippy::unwrap_used)] // tests fail loudly on any surprise

mod common;

use common::*;

async fn burst(url: String, n: usize) -> Vec<(u16, Option<String>, String)> {
    let c = client();
    let mut tasks = Vec::new();
    for i in 0..n {
        let (c, url) = (c.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let r = c
                .post(url)
                .body(format!("{{\"index\": {i}, \"message\": \"burst {i}\"}}"))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let kind = r
                .headers()
                .get("x-amzn-errortype")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, kind, r.text().await.unwrap())
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_direct_route_throttles_where_the_buffered_route_absorbs() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(|t| {
        t.replace("reserved_concurrency = 10", "reserved_concurrency = 2")
            .replace("delay_ms = 0", "delay_ms = 50")
            + "\n[[routes]]\nmethod = \"POST\"\npath = \"/direct\"\nfunction = \"kinesis-to-dynamo\"\n"
    });
    let s = Server::start(&dir.path().join("d"), Some(&config));
    let direct = burst(s.url("/direct"), 200).await;
    let throttled: Vec<_> = direct.iter().filter(|r| r.0 == 429).collect();
    let ok = direct.iter().filter(|r| r.0 == 200).count();
    assert!(!throttled.is_empty(), "no 429 from the direct route");
    assert!(ok >= 2, "at least the first invocations succeed");
    assert_eq!(ok + throttled.len(), 200, "only 200s and 429s");
    for (_, kind, body) in &throttled {
        assert_eq!(kind.as_deref(), Some("TooManyRequestsException"));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
                "Type": "User",
                "message": "Rate Exceeded."
            })
        );
    }

    let buffered = burst(s.url("/dev"), 200).await;
    assert!(
        buffered.iter().all(|r| r.0 == 200),
        "the buffered route refused a request"
    );
    let c = client();
    let want = (ok + 200) as u64;
    wait_until(60, "every item", || async {
        item_count(&c, &s, "example-table").await == want
    })
    .await;
}

/// Bytes of data per paced record: at 2 KB a shard's 1 MiB/s binds before its 1,000
/// records/s (about 500 records/s), so one shard is over its limit even when a debug
/// build on a busy machine serves only about 1,000 requests a second.
const RECORD_BYTES: usize = 2000;

async fn paced(url: String, n: usize, per_second: u64) -> (usize, usize, Vec<String>) {
    let c = client();
    let mut tasks = Vec::new();
    let start = tokio::time::Instant::now();
    // At most 64 requests in flight, so the client reuses its keep-alive connections as
    // a real producer does (a new connection per request measures connection set-up).
    let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    for i in 0..n {
        let (c, url, in_flight) = (c.clone(), url.clone(), in_flight.clone());
        let due = start + std::time::Duration::from_micros(i as u64 * 1_000_000 / per_second);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(due).await;
            let _slot = in_flight.acquire().await.unwrap();
            let r = c
                .post(url)
                .body(format!("{i:0>width$}", width = RECORD_BYTES))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }));
    }
    let (mut ok, mut limited, mut bodies) = (0, 0, Vec::new());
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            200 => ok += 1,
            400 => {
                limited += 1;
                bodies.push(body);
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    (ok, limited, bodies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn enforce_limits_throttles_one_shard_and_more_shards_fix_it() {
    // 5,000 records of 2 KB at 2,500/s: five times the bytes one shard takes.
    for (shards, expect_limited) in [(1, true), (4, false)] {
        let dir = tempfile::tempdir().unwrap();
        let config = config_with(|t| {
            t.replace("enforce_limits = false", "enforce_limits = true")
                .replace("shard_count = 1", &format!("shard_count = {shards}"))
        });
        let s = Server::start(&dir.path().join("d"), Some(&config));
        let started = std::time::Instant::now();
        let (ok, limited, bodies) = paced(s.url("/dev"), 5000, 2500).await;
        let seconds = started.elapsed().as_secs_f64();
        if expect_limited {
            assert!(
                limited > 500,
                "1 shard: only {limited} of 5000 were limited in {seconds:.2} s"
            );
            let v: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
            assert_eq!(v["__type"], "ProvisionedThroughputExceededException");
            assert_eq!(
                v["message"],
                "Rate exceeded for shard shardId-000000000000 in stream example-stream under account 000000000000."
            );
            // One second of burst plus one second's worth per second, of whichever
            // limit binds first (1 MiB/s of data and key, or 1,000 records/s): what one
            // shard accepts over the run, give or take its edges.
            let record = (RECORD_BYTES + 36) as f64;
            let allowed = (1000.0 * (1.0 + seconds)).min(1_048_576.0 * (1.0 + seconds) / record);
            assert!(
                (ok as f64) <= allowed * 1.1 + 100.0 && (ok as f64) >= allowed.min(5000.0) * 0.7,
                "accepted {ok} in {seconds:.2} s, a shard takes about {allowed:.0}"
            );
        } else {
            assert_eq!(limited, 0, "4 shards: {limited} limited");
            assert_eq!(ok, 5000);
        }
    }
}
