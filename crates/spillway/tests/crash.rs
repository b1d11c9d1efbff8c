//! kill -9 while clients are posting: everything acknowledged survives, intact, and
//! sequence numbers keep rising after the restart.

#![allow(clippy::unwrap_used)] // tests fail loudly on any surprise

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_200_concurrent_clients_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let config = config_with(|t| t.replace("shard_count = 1", "shard_count = 2"));
    let mut s = Server::start(&data, Some(&config));
    let c = client();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..200 {
        let (c, url, stop) = (c.clone(), s.url("/dev"), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let body = format!(
                    "{{\"writer\": {w}, \"i\": {i}, \"pad\": \"{}\"}}",
                    "x".repeat(i % 300)
                );
                i += 1;
                match c.post(&url).body(body.clone()).send().await {
                    Ok(r) if r.status() == 200 => {
                        let v: serde_json::Value = match r.json().await {
                            Ok(v) => v,
                            Err(_) => break, // cut off mid-answer: not acknowledged
                        };
                        acked.push((
                            v["ShardId"].as_str().unwrap().to_owned(),
                            v["SequenceNumber"].as_str().unwrap().to_owned(),
                            body,
                        ));
                    }
                    Ok(r) => assert_eq!(r.status(), 503, "only overload may refuse"),
                    Err(_) => break, // the server died
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.kill9();
    stop.store(true, Ordering::Relaxed);
    let mut acked: HashMap<(String, String), String> = HashMap::new();
    for t in tasks {
        for (shard, seq, body) in t.await.unwrap() {
            acked.insert((shard, seq), body);
        }
    }
    assert!(acked.len() > 100, "the load barely ran: {}", acked.len());

    let s = Server::start(&data, Some(&config));
    let mut highest: HashMap<String, String> = HashMap::new();
    let mut found = 0;
    for shard in shard_ids(&c, &s, "example-stream").await {
        let records = read_shard(&c, &s, "example-stream", &shard).await;
        for r in &records {
            // Every stored record is intact JSON (no torn writes).
            let _: serde_json::Value = serde_json::from_slice(&r.data).expect("intact record");
            if let Some(body) = acked.get(&(shard.clone(), r.sequence_number.clone())) {
                assert_eq!(
                    body.as_bytes(),
                    r.data.as_slice(),
                    "acknowledged bytes differ"
                );
                found += 1;
            }
        }
        if let Some(last) = records.last() {
            highest.insert(shard.clone(), last.sequence_number.clone());
        }
    }
    assert_eq!(found, acked.len(), "acknowledged records lost in the crash");

    // Sequence numbers continue upward on every shard after the restart.
    for i in 0..40 {
        let v: serde_json::Value = c
            .post(s.url("/dev"))
            .body(format!("after {i}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let shard = v["ShardId"].as_str().unwrap();
        let seq = v["SequenceNumber"].as_str().unwrap();
        if let Some(h) = highest.get(shard) {
            assert!(seq > h.as_str(), "{seq} after {h}");
        }
    }
}
