//! Stateless workers over shared engines. Three spillway workers share a stream of four
//! shards through leases; requests are spread over the workers, one worker is killed
//! with kill -9 while the shards drain, and the table must end up holding exactly one
//! item per record in the stream: every acknowledged record, nothing twice, nothing
//! else. The engines are reached only through their Kinesis and DynamoDB APIs, so the
//! same scenario runs over a spillway that only stores, and over other projects'
//! engines (kinesalite and dynalite).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Server, client, get_json, wait_until};
use serde_json::Value;
use spillway::remote::dynamodb::DynamoDbClient;
use spillway::remote::kinesis::{IteratorStart, KinesisClient};
use spillway::remote::postgres::PostgresTables;
use spillway::remote::{Endpoint, TableEngine};
use spillway::worker::lease::{Lease, LeaseError, LeaseTable};

/// A client of the Kinesis-API engine at `host` (`HOST:PORT`, plain HTTP).
fn kinesis_at(host: &str) -> KinesisClient {
    KinesisClient::new(&Endpoint::http(host), "us-east-1").unwrap()
}

/// A client of the DynamoDB-API engine at `host` (`HOST:PORT`, plain HTTP).
fn dynamodb_at(host: &str) -> DynamoDbClient {
    DynamoDbClient::new(&Endpoint::http(host), "us-east-1").unwrap()
}

/// The engine: a spillway with no pipeline of its own.
const ENGINE: &str = "streams = []\nroutes = []\ntables = []\nfunctions = []\nmappings = []\n";

/// A spillway that only stores, started in `dir`; it and its `HOST:PORT`.
fn start_engine(dir: &std::path::Path) -> (Server, String) {
    let engine = Server::start(&dir.join("engine"), Some(ENGINE));
    let host = engine.base.trim_start_matches("http://").to_owned();
    (engine, host)
}

/// A worker's config: the reference pipeline over the engines, four shards, small
/// batches and a slow function so that draining takes seconds, short leases.
fn worker_config(streams: &str, tables: &str, id: &str) -> String {
    let tables = if tables.contains("://") {
        tables.to_owned()
    } else {
        format!("dynamodb+http://{tables}")
    };
    common::config_with(|t| {
        t.replace(
            "stream_engine = \"fjall://\"",
            &format!("stream_engine = \"kinesis+http://{streams}\""),
        )
        .replace(
            "table_engine = \"fjall://\"",
            &format!("table_engine = \"{tables}\""),
        )
        .replace("worker_id = \"\"", &format!("worker_id = \"{id}\""))
        .replace("lease_duration_ms = 10000", "lease_duration_ms = 3000")
        .replace("renew_interval_ms = 2000", "renew_interval_ms = 500")
        .replace("shard_count = 1", "shard_count = 4")
        .replace("BatchSize = 100", "BatchSize = 10")
        .replace("\ndelay_ms = 0", "\ndelay_ms = 40")
    })
}

/// A worker `id` over the spillway engine at `host`, with no mapping yet (the test adds
/// its own), `edit` applied to the config's text.
fn worker_without_mappings(host: &str, id: &str, edit: impl FnOnce(String) -> String) -> String {
    common::config_before_mappings(|t| {
        edit(
            t.replace(
                "stream_engine = \"fjall://\"",
                &format!("stream_engine = \"kinesis+http://{host}\""),
            )
            .replace(
                "table_engine = \"fjall://\"",
                &format!("table_engine = \"dynamodb+http://{host}\""),
            )
            .replace("worker_id = \"\"", &format!("worker_id = \"{id}\"")),
        )
    })
}

async fn worker_status(c: &reqwest::Client, w: &Server) -> Value {
    let (status, v) = get_json(c, &w.url("/_spillway/worker")).await;
    assert_eq!(status, 200, "{v}");
    v
}

/// Waits until each worker holds at least one lease (the shares have spread).
async fn every_worker_holds_a_lease(c: &reqwest::Client, workers: &[Server]) {
    wait_until(30, "every worker to hold a lease", || async {
        let mut all = true;
        for w in workers {
            all &= !held(&worker_status(c, w).await).is_empty();
        }
        all
    })
    .await;
}

fn held(v: &Value) -> Vec<String> {
    v["held"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect()
}

/// The item id of every record in the stream, read through the Kinesis API.
async fn stream_item_ids(kinesis: &KinesisClient, stream: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for shard in kinesis.list_shards(stream).await.unwrap() {
        let mut it = kinesis
            .shard_iterator(stream, &shard.shard_id, &IteratorStart::TrimHorizon)
            .await
            .unwrap();
        loop {
            let read = kinesis.get_records(&it, 10_000).await.unwrap();
            if read.records.is_empty() {
                break;
            }
            for r in &read.records {
                ids.insert(spillway::function::builtin::item_id(&format!(
                    "{}:{}",
                    shard.shard_id, r.sequence_number
                )));
            }
            match read.next_iterator {
                Some(next) => it = next,
                None => break,
            }
        }
    }
    ids
}

/// Every item's ID, read from the table engine.
async fn table_ids(tables: &TableEngine, table: &str) -> Vec<String> {
    tables
        .scan(table)
        .await
        .unwrap()
        .iter()
        .map(|i| i["ID"]["S"].as_str().unwrap().to_owned())
        .collect()
}

/// POSTs `n` bodies spread over `workers` from 6 concurrent clients; the item id of
/// each acknowledged record.
async fn post_spread(c: &reqwest::Client, workers: &[Server], n: usize) -> Vec<String> {
    let urls: Vec<String> = workers.iter().map(|w| w.url("/dev")).collect();
    let mut tasks = Vec::new();
    for k in 0..6 {
        let (c, urls) = (c.clone(), urls.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in (k..n).step_by(6) {
                let r = c
                    .post(&urls[i % urls.len()])
                    .body(format!("{{\"message\": \"record {i}\"}}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let v: Value = r.json().await.unwrap();
                acked.push(spillway::function::builtin::item_id(&format!(
                    "{}:{}",
                    v["ShardId"].as_str().unwrap(),
                    v["SequenceNumber"].as_str().unwrap()
                )));
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    acked
}

/// The scenario, over the engines at `streams` (`HOST:PORT`) and `tables` (`HOST:PORT`
/// of a DynamoDB API, or a `postgres://` URL).
async fn share_and_survive_a_kill(dir: &std::path::Path, streams: &str, tables: &str) {
    let kinesis = kinesis_at(streams);
    let dynamodb = if tables.starts_with("postgres://") {
        TableEngine::Postgres(PostgresTables::new(tables))
    } else {
        TableEngine::DynamoDb(dynamodb_at(tables))
    };
    if let TableEngine::Postgres(pg) = &dynamodb {
        pg.ensure_table(&spillway::config::Config::default().tables[0])
            .await
            .unwrap();
    }
    let mut workers: Vec<Server> = ["w1", "w2", "w3"]
        .iter()
        .map(|id| Server::start(&dir.join(id), Some(&worker_config(streams, tables, id))))
        .collect();
    let c = client();

    // The leases spread: each worker holds at least one of the four shards.
    every_worker_holds_a_lease(&c, &workers).await;

    // Requests spread over the three workers, concurrently.
    let n = 600;
    let acked = post_spread(&c, &workers, n).await;
    assert_eq!(acked.len(), n);

    // kill -9 the busiest worker while the shards are still draining.
    let mut busiest = (0, Vec::new());
    for (i, w) in workers.iter().enumerate() {
        let h = held(&worker_status(&c, w).await);
        if h.len() > busiest.1.len() {
            busiest = (i, h);
        }
    }
    let (victim, orphaned) = busiest;
    let items_at_kill = table_ids(&dynamodb, "example-table").await.len();
    assert!(
        items_at_kill < n,
        "the table was full ({items_at_kill} items) before the kill: the test did not kill mid-drain"
    );
    let killed = format!("w{}", victim + 1);
    workers[victim].kill9();

    // Every record of the stream reaches the table once.
    let records = stream_item_ids(&kinesis, "example-stream").await;
    assert_eq!(records.len(), n, "the stream holds what was acknowledged");
    wait_until(90, "the table to hold every record", || async {
        table_ids(&dynamodb, "example-table").await.len() >= n
    })
    .await;
    let items = table_ids(&dynamodb, "example-table").await;
    let ids: BTreeSet<String> = items.iter().cloned().collect();
    assert_eq!(items.len(), n, "one item per record, none twice");
    assert_eq!(ids, records, "the items are the stream's records");
    for id in &acked {
        assert!(ids.contains(id), "an acknowledged record has no item");
    }

    // The killed worker's leases were taken over by the living.
    let survivor = workers
        .iter()
        .find(|w| w.base != workers[victim].base)
        .unwrap();
    let owners = || async {
        worker_status(&c, survivor).await["leases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["leaseKey"].as_str().unwrap().to_owned(),
                    l["leaseOwner"].as_str().unwrap().to_owned(),
                )
            })
            .collect::<BTreeMap<String, String>>()
    };
    wait_until(20, "the leases to settle on the living workers", || async {
        let o = owners().await;
        o.len() == 4 && o.values().all(|w| w != &killed)
    })
    .await;
    // What a worker does shows in its metrics.
    let metrics = common::metrics_text(&c, survivor).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("spillway_worker_leases_held ")),
        "{metrics}"
    );
    assert!(
        metrics.contains("spillway_mapping_invocations_total{function=\"kinesis-to-dynamo\",mapping=\"kinesis-to-dynamo@example-stream\"}"),
        "{metrics}"
    );
    let o = owners().await;
    assert!(!orphaned.is_empty());
    for key in &orphaned {
        assert!(
            o[key] != killed && !o[key].is_empty(),
            "{key} is held by {:?}",
            o[key]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_workers_over_a_spillway_engine_lose_and_double_nothing_through_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, host) = start_engine(dir.path());
    share_and_survive_a_kill(dir.path(), &host, &host).await;
    // The engine, with no mapping of its own, still answers its metrics.
    let text = common::metrics_text(&client(), &engine).await;
    assert!(
        text.contains("spillway_stream_incoming_records_total{shard=\"shardId-000000000003\",stream=\"example-stream\"}"),
        "{text}"
    );
}

/// The engine itself dies (kill -9) while workers drain it, and comes back on the same
/// port from its data dir: ingest answers 503 meanwhile, lease cycles fail and say so,
/// and once it is back the workers finish with one item per acknowledged record.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_ride_out_an_engine_killed_and_restarted_mid_drain() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("engine");
    let mut engine = Server::start(&data, Some(ENGINE));
    let host = engine.base.trim_start_matches("http://").to_owned();
    let workers: Vec<Server> = ["w1", "w2"]
        .iter()
        .map(|id| Server::start(&dir.path().join(id), Some(&worker_config(&host, &host, id))))
        .collect();
    let c = client();
    every_worker_holds_a_lease(&c, &workers).await;
    let acked: BTreeSet<String> = post_spread(&c, &workers, 600).await.into_iter().collect();
    let dynamodb = TableEngine::DynamoDb(dynamodb_at(&host));
    let items_at_kill = table_ids(&dynamodb, "example-table").await.len();
    assert!(
        items_at_kill < acked.len(),
        "the table was full ({items_at_kill} items) before the kill: the test did not kill mid-drain"
    );
    engine.kill9();
    // While it is down: the ingest route refuses with 503 and Retry-After.
    let r = c
        .post(workers[0].url("/dev"))
        .body("while the engine is down")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let failures = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("spillway_worker_lease_cycle_failures_total "))
            .map_or(0, |v| v.trim().parse::<u64>().unwrap())
    };
    // A lease cycle tries its calls a few times over seconds before it counts as failed.
    wait_until(20, "a failed lease cycle in the metrics", || async {
        let metrics = common::metrics_text(&c, &workers[0]).await;
        failures(&metrics) > 0
    })
    .await;
    assert!(
        workers[0].stderr().contains("lease cycle failed"),
        "{}",
        workers[0].stderr()
    );

    let _engine = Server::start_at(&data, Some(ENGINE), &host);
    wait_until(90, "every acknowledged record in the table", || async {
        table_ids(&dynamodb, "example-table").await.len() >= acked.len()
    })
    .await;
    let items = table_ids(&dynamodb, "example-table").await;
    assert_eq!(items.len(), acked.len(), "one item per record, none twice");
    assert_eq!(items.into_iter().collect::<BTreeSet<_>>(), acked);
}

/// A worker stopped cleanly (SIGTERM) gives its leases up: the other takes them at its
/// next cycle, well before the lease duration (10 s here) would have let it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_stopped_cleanly_hands_its_shards_over_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_engine, host) = start_engine(dir.path());
    let config = |id: &str| {
        worker_config(&host, &host, id)
            .replace("lease_duration_ms = 3000", "lease_duration_ms = 10000")
    };
    let mut workers: Vec<Server> = ["w1", "w2"]
        .iter()
        .map(|id| Server::start(&dir.path().join(id), Some(&config(id))))
        .collect();
    let c = client();
    every_worker_holds_a_lease(&c, &workers).await;
    let mut acked = post_spread(&c, &workers, 200).await;
    let stopping = std::time::Instant::now();
    assert_eq!(workers[0].terminate().code(), Some(0));
    wait_until(30, "w2 to hold all four leases", || async {
        held(&worker_status(&c, &workers[1]).await).len() == 4
    })
    .await;
    let took = stopping.elapsed();
    assert!(
        took < std::time::Duration::from_secs(8),
        "the leases moved after {took:?}: they expired instead of being given up"
    );
    acked.extend(post_spread(&c, &workers[1..], 100).await);
    let dynamodb = TableEngine::DynamoDb(dynamodb_at(&host));
    wait_until(60, "every record in the table", || async {
        table_ids(&dynamodb, "example-table").await.len() >= acked.len()
    })
    .await;
    let items = table_ids(&dynamodb, "example-table").await;
    assert_eq!(items.len(), acked.len());
    assert_eq!(
        items.into_iter().collect::<BTreeSet<_>>(),
        acked.into_iter().collect::<BTreeSet<_>>()
    );
}

/// A worker keeps Lambda's batching window: records arriving within
/// MaximumBatchingWindowInSeconds of the first go to the function together. The
/// function is a process (any program), as under an embedded mapping.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_waits_out_the_batching_window_and_runs_a_process_function() {
    let dir = tempfile::tempdir().unwrap();
    let (_engine, host) = start_engine(dir.path());
    let log = dir.path().join("calls.log");
    let config = worker_without_mappings(&host, "w1", |t| t)
        + &common::recorder_function("recorder", "ok", &log)
        + &common::mapping_block(
            "recorder",
            "StartingPosition = \"TRIM_HORIZON\"\nMaximumBatchingWindowInSeconds = 2",
        );
    let worker = Server::start(&dir.path().join("w1"), Some(&config));
    let c = client();
    wait_until(30, "the worker to hold the lease", || async {
        held(&worker_status(&c, &worker).await).len() == 1
    })
    .await;
    for i in 0..5 {
        common::post(&c, &worker, &format!("windowed {i}")).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_until(20, "the invocation", || async {
        !common::recorded_invocations(&log).is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls = common::recorded_invocations(&log);
    assert_eq!(calls.len(), 1, "one invocation for the window: {calls:?}");
    assert_eq!(
        calls[0]["records"].as_array().unwrap().len(),
        5,
        "{calls:?}"
    );
}

/// A worker sends the on-failure record of a batch that exhausted its retries to the
/// SQS queue the mapping names, in its queue engine (`queue_engine`), as Lambda does;
/// the AWS CLI reads it there. The record is kept in the lease table too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_sends_on_failure_records_to_its_queue_engine() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, host) = start_engine(dir.path());
    let cli = |args: &[&str]| {
        let endpoint = ["--endpoint-url", engine.base.as_str(), "--output", "json"];
        let (ok, stdout, stderr) = common::aws_cli(&[args, &endpoint[..]].concat());
        assert!(ok, "aws {args:?}: {stderr}");
        serde_json::from_str::<Value>(&stdout).unwrap_or(Value::Null)
    };
    let url = cli(&["sqs", "create-queue", "--queue-name", "failures"])["QueueUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let config = worker_without_mappings(&host, "w1", |t| {
        t.replace(
            "queue_engine = \"\"",
            &format!("queue_engine = \"sqs+http://{host}\""),
        )
    }) + "\n[[functions]]\nname = \"always-fails\"\nkind = \"process\"\ncommand = [\"sh\", \"-c\", \"exit 3\"]\n"
        + &common::mapping_block(
            "always-fails",
            "StartingPosition = \"TRIM_HORIZON\"\nMaximumRetryAttempts = 0\n\
             DestinationConfig = { OnFailure = { Destination = \"arn:aws:sqs:us-east-1:000000000000:failures\" } }",
        );
    let worker = Server::start(&dir.path().join("w1"), Some(&config));
    let c = client();
    let sequence = common::post(&c, &worker, "it will fail").await;

    let mut received = Value::Null;
    wait_until(30, "the on-failure record in the queue", || {
        received = cli(&[
            "sqs",
            "receive-message",
            "--queue-url",
            &url,
            "--wait-time-seconds",
            "1",
        ]);
        let found = received["Messages"]
            .as_array()
            .is_some_and(|m| !m.is_empty());
        async move { found }
    })
    .await;
    let body: Value =
        serde_json::from_str(received["Messages"][0]["Body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body["requestContext"]["condition"], "RetryAttemptsExhausted",
        "{body}"
    );
    assert_eq!(body["KinesisBatchInfo"]["batchSize"], 1, "{body}");
    assert_eq!(
        body["KinesisBatchInfo"]["startSequenceNumber"].as_str(),
        Some(sequence.as_str()),
        "{body}"
    );
}

/// The Rust SDK's SubscribeToShard through a worker: the worker relays the engine's
/// event stream as it arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_relays_subscribe_to_shard_from_its_engine() {
    let dir = tempfile::tempdir().unwrap();
    let (_engine, host) = start_engine(dir.path());
    let worker = Server::start(
        &dir.path().join("w1"),
        Some(&worker_config(&host, &host, "w1").replace("shard_count = 4", "shard_count = 1")),
    );
    let k = common::kinesis_sdk(&worker.base);
    let consumer = common::active_consumer(&k, "example-stream", "through-a-worker").await;
    let c = client();
    for i in 0..3 {
        common::post(&c, &worker, &format!("relayed {i}")).await;
    }
    let mut sub = common::subscribe_from_start(&k, &consumer).await;
    let got = common::subscribed_records(&mut sub, 3).await;
    assert_eq!(got, ["relayed 0", "relayed 1", "relayed 2"]);
    // With the subscription still open, a SIGTERM stops the worker at once: the relay
    // ends with it rather than holding the shutdown for five minutes.
    let stopping = std::time::Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        let mut worker = worker;
        worker.terminate()
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "the worker took {:?} to stop",
        stopping.elapsed()
    );
    drop(sub);
}

/// A node program of the conformance cache (`tests/conformance/prepare.sh` installs
/// kinesalite's and dynalite's dependencies there), on a free port.
struct Peer {
    child: Child,
    host: String,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn conformance_cache() -> PathBuf {
    std::env::var_os("SPILLWAY_CONFORMANCE_CACHE").map_or_else(
        || std::env::temp_dir().join("spillway-conformance"),
        PathBuf::from,
    )
}

fn start_peer(suite: &str, args: &[&str]) -> Option<Peer> {
    let cli = conformance_cache().join(suite).join("cli.js");
    if !cli.exists() {
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("node")
        .arg(&cli)
        .arg("--port")
        .arg(port.to_string())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let host = format!("127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(&host).is_ok() {
            return Some(Peer { child, host });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{suite} did not listen on {host}");
}

/// A peer engine, or None (skipping, or failing when CI said they are there).
fn peer_or_skip(suite: &str, args: &[&str]) -> Option<Peer> {
    let peer = start_peer(suite, args);
    if peer.is_none() {
        assert!(
            std::env::var_os("SPILLWAY_PEER_ENGINES").is_none(),
            "{suite} is not installed in {}",
            conformance_cache().display()
        );
        eprintln!(
            "skipped: {suite} is not installed in {} (tests/conformance/prepare.sh)",
            conformance_cache().display()
        );
    }
    peer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_workers_over_kinesalite_and_dynalite_lose_and_double_nothing_through_a_kill() {
    let (Some(kinesalite), Some(dynalite)) = (
        peer_or_skip("kinesalite", &["--createStreamMs", "50"]),
        peer_or_skip("dynalite", &["--createTableMs", "50"]),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    share_and_survive_a_kill(dir.path(), &kinesalite.host, &dynalite.host).await;
}

/// The table-engine seam (items and leases) on a spillway engine.
#[tokio::test]
async fn the_table_engine_seam_holds_on_a_spillway_engine() {
    let dir = tempfile::tempdir().unwrap();
    let (_engine, host) = start_engine(dir.path());
    table_engine_suite(TableEngine::DynamoDb(dynamodb_at(&host))).await;
}

/// The table-engine seam on dynalite (another project's DynamoDB).
#[tokio::test]
async fn the_table_engine_seam_holds_on_dynalite() {
    let Some(dynalite) = peer_or_skip("dynalite", &["--createTableMs", "50"]) else {
        return;
    };
    table_engine_suite(TableEngine::DynamoDb(dynamodb_at(&dynalite.host))).await;
}

/// A worker reaches its engines over TLS (`kinesis+https://`, `dynamodb+https://`),
/// trusting a private certificate through `AWS_CA_BUNDLE`, as AWS's SDKs do; without
/// it, the worker refuses the engine and says why instead of starting.
#[tokio::test]
async fn a_worker_reaches_its_engines_over_https_trusting_aws_ca_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::self_signed(dir.path());
    let engine_config = format!(
        "{ENGINE}[server]\ntls_listen = \"127.0.0.1:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let engine = Server::start(&dir.path().join("engine"), Some(&engine_config));
    let port = engine.https.as_deref().unwrap().rsplit(':').next().unwrap();
    let tls_host = format!("localhost:{port}");
    let config = worker_config(&tls_host, &format!("dynamodb+https://{tls_host}"), "w-tls")
        .replace("kinesis+http://", "kinesis+https://");

    let config_path = dir.path().join("untrusting.toml");
    std::fs::write(&config_path, &config).unwrap();
    let refused = std::process::Command::new(common::BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("untrusting"))
        .arg("--config")
        .arg(&config_path)
        .env_remove("AWS_CA_BUNDLE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "started trusting an unknown certificate"
    );
    assert!(stderr.contains("certificate"), "{stderr}");

    let bundle = cert.to_str().unwrap();
    let worker = Server::start_with(
        &dir.path().join("w-tls"),
        Some(&config),
        "127.0.0.1:0",
        &[("AWS_CA_BUNDLE", bundle)],
    );
    let c = client();
    let acked = post_spread(&c, std::slice::from_ref(&worker), 40).await;
    let host = engine.base.trim_start_matches("http://").to_owned();
    let tables = TableEngine::DynamoDb(dynamodb_at(&host));
    wait_until(
        60,
        "every record posted through the worker in the engine's table",
        || async { table_ids(&tables, "example-table").await.len() >= acked.len() },
    )
    .await;
    let mut ids = table_ids(&tables, "example-table").await;
    ids.sort();
    let mut expected = acked.clone();
    expected.sort();
    assert_eq!(ids, expected);
}

/// The stream-engine seam on a spillway engine.
#[tokio::test]
async fn the_stream_engine_seam_holds_on_a_spillway_engine() {
    let dir = tempfile::tempdir().unwrap();
    let (_engine, host) = start_engine(dir.path());
    stream_engine_suite(kinesis_at(&host)).await;
}

/// The stream-engine seam on kinesalite (another project's Kinesis).
#[tokio::test]
async fn the_stream_engine_seam_holds_on_kinesalite() {
    let Some(kinesalite) = peer_or_skip(
        "kinesalite",
        &["--createStreamMs", "50", "--updateStreamMs", "50"],
    ) else {
        return;
    };
    stream_engine_suite(kinesis_at(&kinesalite.host)).await;
}

/// What a worker needs of a stream engine, the same for every engine: the engine
/// assigns positions, reads come back in order from any position, and a split closes
/// its parent with an end a reader reaches.
async fn stream_engine_suite(k: KinesisClient) {
    let arn = k.ensure_stream("seam", 2).await.unwrap();
    assert!(arn.ends_with(":stream/seam"), "{arn}");
    assert_eq!(
        k.ensure_stream("seam", 2).await.unwrap(),
        arn,
        "creating again is a no-op"
    );
    let shards = k.list_shards("seam").await.unwrap();
    assert_eq!(shards.len(), 2);
    assert!(
        shards
            .iter()
            .all(|s| s.parents.is_empty() && s.ending_sequence_number.is_none())
    );
    // Positions from the engine, increasing within a shard.
    let mut by_shard: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for i in 0..20 {
        let data = format!("record {i}");
        let (shard, seq) = k
            .put_record("seam", &format!("key{}", i % 7), data.as_bytes())
            .await
            .unwrap();
        by_shard.entry(shard).or_default().push((seq, data));
    }
    // Several at once (a worker's ingest batches into PutRecords): one answer each.
    let batch: Vec<(String, bytes::Bytes)> = (20..23)
        .map(|i| {
            (
                format!("key{}", i % 7),
                bytes::Bytes::from(format!("record {i}")),
            )
        })
        .collect();
    for ((_, data), answer) in batch
        .iter()
        .zip(k.put_records("seam", &batch).await.unwrap())
    {
        let (shard, seq) = answer.unwrap();
        by_shard
            .entry(shard)
            .or_default()
            .push((seq, String::from_utf8(data.to_vec()).unwrap()));
    }
    let bigger = |a: &str, b: &str| (a.len(), a) > (b.len(), b);
    for (shard, puts) in &by_shard {
        assert!(
            puts.windows(2).all(|w| bigger(&w[1].0, &w[0].0)),
            "{shard}: {puts:?}"
        );
        // From the start: every record, in order.
        let it = k
            .shard_iterator("seam", shard, &IteratorStart::TrimHorizon)
            .await
            .unwrap();
        let read = k.get_records(&it, 100).await.unwrap();
        let got: Vec<(String, String)> = read
            .records
            .iter()
            .map(|r| {
                (
                    r.sequence_number.clone(),
                    String::from_utf8(r.data.to_vec()).unwrap(),
                )
            })
            .collect();
        assert_eq!(&got, puts);
        assert!(read.next_iterator.is_some(), "an open shard goes on");
        // After a position: the rest.
        let after = IteratorStart::AfterSequenceNumber(puts[0].0.clone());
        let it = k.shard_iterator("seam", shard, &after).await.unwrap();
        let rest = k.get_records(&it, 100).await.unwrap();
        assert_eq!(rest.records.len(), puts.len() - 1);
        // At a record's arrival time: that record (or one of its millisecond) on, to
        // the last. (A lease pins LATEST this way.)
        let at = read.records[read.records.len() / 2].arrival_ms;
        let it = k
            .shard_iterator("seam", shard, &IteratorStart::AtTimestamp(at))
            .await
            .unwrap();
        let from: Vec<String> = k
            .get_records(&it, 100)
            .await
            .unwrap()
            .records
            .iter()
            .map(|r| r.sequence_number.clone())
            .collect();
        let all: Vec<String> = puts.iter().map(|(seq, _)| seq.clone()).collect();
        assert!(
            !from.is_empty() && all.ends_with(&from),
            "{from:?} of {all:?}"
        );
        assert!(from.len() <= all.len() - read.records.len() / 2);
    }
    // A split closes the parent: reading it reaches its end, and its children name it.
    let parent = &shards[0];
    let api = k.api();
    let mid: u128 = u128::MAX / 4;
    api.call(
        "SplitShard",
        &serde_json::json!({"StreamName": "seam", "ShardToSplit": parent.shard_id, "NewStartingHashKey": mid.to_string()}),
    )
    .await
    .unwrap();
    // The stream is UPDATING while the split applies.
    let mut after_split = k.list_shards("seam").await.unwrap();
    for _ in 0..100 {
        if after_split.len() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after_split = k.list_shards("seam").await.unwrap();
    }
    assert_eq!(after_split.len(), 4, "{after_split:?}");
    let closed = after_split
        .iter()
        .find(|s| s.shard_id == parent.shard_id)
        .unwrap();
    assert!(closed.ending_sequence_number.is_some());
    assert_eq!(
        after_split
            .iter()
            .filter(|s| s.parents.contains(&parent.shard_id))
            .count(),
        2
    );
    let mut it = k
        .shard_iterator("seam", &parent.shard_id, &IteratorStart::TrimHorizon)
        .await
        .unwrap();
    let mut reads = 0;
    loop {
        let read = k.get_records(&it, 100).await.unwrap();
        match read.next_iterator {
            Some(next) => it = next,
            None => break,
        }
        reads += 1;
        assert!(reads < 20, "the closed parent never ended");
    }
}

/// What a worker needs of a table engine, the same for every engine: puts replace by
/// key, and leases are created once, taken by one of two racers, renewed and
/// checkpointed only by their holder.
async fn table_engine_suite(engine: TableEngine) {
    let table = spillway::config::TableConfig {
        name: "seam-items".into(),
        hash_key: spillway::config::KeyAttributeConfig {
            name: "ID".into(),
            kind: "S".into(),
        },
        range_key: None,
    };
    engine.ensure_table(&table).await.unwrap();
    let item = |id: &str, v: &str| serde_json::json!({"ID": {"S": id}, "v": {"S": v}});
    engine
        .put_items("seam-items", vec![item("a", "1"), item("b", "1")])
        .await
        .unwrap();
    engine
        .put_items("seam-items", vec![item("a", "2"), item("a", "3")])
        .await
        .unwrap();
    let mut items = engine.scan("seam-items").await.unwrap();
    items.sort_by_key(|i| i["ID"]["S"].as_str().unwrap().to_owned());
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[0]["v"]["S"], "3", "the last put of a key wins");
    race_for_a_lease(engine).await;
}

/// Two lease tables of one engine race for one lease.
async fn race_for_a_lease(engine: TableEngine) {
    engine.ensure_lease_table("leases").await.unwrap();
    let table = |id: &str| LeaseTable {
        engine: engine.clone(),
        table: "leases".into(),
        worker_id: id.into(),
    };
    let (a, b) = (table("a"), table("b"));
    assert!(a.create("m/shard-0", "TRIM_HORIZON", &[]).await.unwrap());
    assert!(
        !b.create("m/shard-0", "LATEST", &[]).await.unwrap(),
        "created twice"
    );
    let seen: Lease = a.all().await.unwrap().pop().unwrap();
    assert_eq!(seen.checkpoint, "TRIM_HORIZON");
    // Both saw the same counter; both try to take it.
    let (ra, rb) = tokio::join!(a.take(&seen), b.take(&seen));
    let winners = [ra.is_ok(), rb.is_ok()];
    assert_eq!(winners.iter().filter(|w| **w).count(), 1, "{winners:?}");
    let (winner, loser) = if ra.is_ok() { (&a, &b) } else { (&b, &a) };
    assert!(matches!(
        if ra.is_ok() { rb } else { ra },
        Err(LeaseError::Lost(_))
    ));
    let now = a.all().await.unwrap().pop().unwrap();
    assert_eq!(now.owner, winner.worker_id);
    assert_eq!(now.counter, seen.counter + 1);
    // The loser, holding what it saw, cannot move the checkpoint.
    let stale = spillway::worker::lease::HeldLease::new(
        &seen,
        "shard-0",
        seen.counter,
        std::time::Instant::now(),
        Duration::from_secs(10),
    );
    assert!(matches!(
        stale.set_checkpoint(loser, "4900").await,
        Err(LeaseError::Lost(_))
    ));
    assert!(stale.lost());
    let held = spillway::worker::lease::HeldLease::new(
        &now,
        "shard-0",
        now.counter,
        std::time::Instant::now(),
        Duration::from_secs(10),
    );
    held.set_checkpoint(winner, "4900").await.unwrap();
    held.renew(winner).await.unwrap();
    let after = a.all().await.unwrap().pop().unwrap();
    assert_eq!(
        (after.checkpoint.as_str(), after.counter),
        ("4900", now.counter + 2)
    );
    // Dead letters kept beside the leases are not leases; parents round-trip.
    winner
        .put_dead_letter("m/shard-0", "4901", "{}")
        .await
        .unwrap();
    assert!(
        a.create("m/shard-1", "TRIM_HORIZON", &["shard-0".into()])
            .await
            .unwrap()
    );
    let all = a.all().await.unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(
        all.iter().find(|l| l.key == "m/shard-1").unwrap().parents,
        vec!["shard-0".to_owned()]
    );
}

/// The PostgreSQL of the tests: `SPILLWAY_TEST_POSTGRES` (a URL; `.ci/run` starts a
/// server and sets it), each test in a database of its own.
async fn postgres_database(name: &str) -> Option<String> {
    let Some(url) = std::env::var("SPILLWAY_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!(
            "skipped: SPILLWAY_TEST_POSTGRES is not set (.ci/run starts PostgreSQL and sets it)"
        );
        return None;
    };
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("SPILLWAY_TEST_POSTGRES={url}: {e}"));
    tokio::spawn(connection);
    for statement in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        client.batch_execute(&statement).await.unwrap();
    }
    let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
    Some(format!("{base}/{name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_workers_with_postgres_tables_and_leases_lose_and_double_nothing_through_a_kill() {
    let Some(pg) = postgres_database("spillway_workers").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_engine, host) = start_engine(dir.path());
    share_and_survive_a_kill(dir.path(), &host, &pg).await;
}

/// The table-engine seam on PostgreSQL.
#[tokio::test]
async fn the_table_engine_seam_holds_on_postgres() {
    let Some(url) = postgres_database("spillway_seam").await else {
        return;
    };
    table_engine_suite(TableEngine::Postgres(PostgresTables::new(&url))).await;
}
