//! Real Lambda functions under spillway, through the Lambda Runtime API host: the Rust
//! reference function (`functions/kinesis-to-dynamodb`, a `lambda_runtime` binary), the
//! reference's Python handler under `python3 -m awslambdaric`, and handlers that time
//! out, crash, fail init, or overlap to test the concurrency limit.

#![allow(clippy::unwrap_used)] // tests fail loudly on any surprise

mod common;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use common::*;
use serde_json::Value;

const FUNCTIONS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/functions");

/// The Rust reference function's `bootstrap`, built beside spillway by
/// `cargo test --workspace` (its package has an integration test, so its binary is built).
fn bootstrap() -> PathBuf {
    let path = std::path::Path::new(BIN).with_file_name("bootstrap");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p kinesis-to-dynamodb` (cargo test --workspace does)",
        path.display()
    );
    path
}

/// The Rust reference function as `reference-rs`, writing to example-table, with extra
/// keys and extra `environment` entries (", NAME = \"value\"").
fn rust_function(extra: &str, more_environment: &str) -> String {
    format!(
        "\n[[functions]]\nname = \"reference-rs\"\nkind = \"runtime\"\ncommand = [\"{}\"]\n{extra}\nenvironment = {{ TABLE_NAME = \"example-table\"{more_environment} }}\n",
        bootstrap().display()
    )
}

/// A `kind = "runtime"` function block running a handler of tests/functions/*.py under
/// awslambdaric, with extra keys.
fn python_function(name: &str, handler: &str, extra: &str) -> String {
    format!(
        "\n[[functions]]\nname = \"{name}\"\nkind = \"runtime\"\ncommand = [\"python3\", \"-m\", \"awslambdaric\", \"{handler}\"]\nworking_dir = \"{FUNCTIONS_DIR}\"\n{extra}\n"
    )
}

/// The inspection API's view of one function.
async fn function_view(c: &reqwest::Client, s: &Server, name: &str) -> Value {
    let (_, v) = get_json(c, &s.url("/_spillway/functions")).await;
    v.as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .cloned()
        .unwrap()
}

async fn wait_for_items(c: &reqwest::Client, s: &Server, n: u64) {
    wait_until(120, &format!("{n} items"), || async {
        item_count(c, s, "example-table").await >= n
    })
    .await;
}

/// Every sent message is in exactly one item, and no item holds anything else.
fn assert_landed_once(items: &[Value], mut sent: Vec<String>) {
    let mut got = messages(items);
    got.sort();
    sent.sort();
    assert_eq!(got, sent, "every acknowledged POST lands exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rust_reference_function_lands_5000_posts_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let function = rust_function("reserved_concurrency = 4", "");
    let config = config_before_mappings(|t| t) + &function + &mapping_block("reference-rs", "");
    let s = Server::start(&dir.path().join("d"), Some(&config));
    let c = client();
    let sent = spike(&s, 5_000, 50).await;
    wait_for_items(&c, &s, 5_000).await;
    let items = scan_table(&c, &s, "example-table").await;
    assert_landed_once(&items, sent);
    // Each record's item has the ID the built-in function would give it: UUID v5 of the
    // record's eventID (shard id and sequence number), so a replay rewrites it.
    let by_id: HashMap<&str, &str> = items
        .iter()
        .map(|i| {
            (
                i["ID"]["S"].as_str().unwrap(),
                i["Message"]["S"].as_str().unwrap(),
            )
        })
        .collect();
    let records = read_shard(&c, &s, "example-stream", "shardId-000000000000").await;
    assert_eq!(records.len(), 5_000);
    for r in &records {
        let id = spillway::function::builtin::item_id(&format!(
            "shardId-000000000000:{}",
            r.sequence_number
        ));
        let body: Value = serde_json::from_slice(&r.data).unwrap();
        assert_eq!(
            by_id.get(id.as_str()).copied(),
            body["message"].as_str(),
            "{id}"
        );
    }
    let f = function_view(&c, &s, "reference-rs").await;
    assert_eq!(f["errors"], 0, "{f}");
    let instances = &f["instances"];
    assert!(instances["peak"].as_u64().unwrap() <= 4, "{f}");
    assert_eq!(instances["lost"], 0, "{f}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reference_python_handler_runs_under_awslambdaric() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_before_mappings(|t| t)
        + &python_function(
            "reference-py",
            "reference_handler.lambda_handler",
            "reserved_concurrency = 2",
        )
        + &mapping_block("reference-py", "")
        + &python_function(
            "proxy",
            "faulty_handler.proxy_handler",
            "reserved_concurrency = 1",
        )
        + "\n[[routes]]\nmethod = \"POST\"\npath = \"/direct\"\nfunction = \"proxy\"\n";
    let s = Server::start(&dir.path().join("d"), Some(&config));
    let c = client();
    let sent = spike(&s, 300, 10).await;
    wait_for_items(&c, &s, 300).await;
    assert_landed_once(&scan_table(&c, &s, "example-table").await, sent);

    // The direct route invokes a Runtime API function synchronously, with the proxy event
    // and a context that knows its deadline.
    let r = c.post(s.url("/direct")).body("hello").send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert!(r.headers().contains_key("x-instance-pid"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["echo"], "hello");
    let remaining = v["remaining_ms"].as_i64().unwrap();
    assert!(remaining > 0 && remaining <= 60_000, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn timeouts_crashes_and_errors_retry_bisect_and_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_before_mappings(|t| t)
        + &python_function(
            "faulty",
            "faulty_handler.handler",
            "reserved_concurrency = 1\ntimeout_seconds = 1",
        )
        + &mapping_block(
            "faulty",
            "BatchSize = 10\nMaximumBatchingWindowInSeconds = 1\nMaximumRetryAttempts = 1\nBisectBatchOnFunctionError = true",
        );
    let s = Server::start(&dir.path().join("d"), Some(&config));
    let c = client();
    // Let the first instance start, so that the batch below arrives in one piece.
    post(&c, &s, "warm-up").await;
    wait_for_items(&c, &s, 1).await;
    let bodies = [
        "a1", "a2", "slow", "a3", "crash", "a4", "raise", "a5", "a6", "a7",
    ];
    let mut seqs = HashMap::new();
    for b in bodies {
        seqs.insert(post(&c, &s, b).await, b);
    }
    // Seven good records land, each exactly once; the three bad ones are isolated by
    // bisection and, after their retry, described by dead letters.
    wait_for_items(&c, &s, 8).await;
    wait_until(120, "three dead letters", || async {
        dead_letters(&c, &s).await.len() >= 3
    })
    .await;
    let letters = dead_letters(&c, &s).await;
    let mut dead: Vec<&str> = letters
        .iter()
        .map(|l| {
            let info = &l["record"]["KinesisBatchInfo"];
            assert_eq!(info["batchSize"], 1, "bisected down to one record: {l}");
            assert_eq!(l["record"]["responseContext"]["functionError"], "Unhandled");
            seqs[info["startSequenceNumber"].as_str().unwrap()]
        })
        .collect();
    dead.sort();
    assert_eq!(dead, ["crash", "raise", "slow"]);
    let mut got = messages(&scan_table(&c, &s, "example-table").await);
    got.sort();
    assert_eq!(
        got,
        ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "warm-up"],
        "good records land once, bad ones never"
    );
    // The timed-out and crashed instances were killed and replaced; the function keeps
    // serving, and never had more than its one instance at a time.
    let f = function_view(&c, &s, "faulty").await;
    let instances = &f["instances"];
    assert_eq!(instances["peak"], 1, "{f}");
    assert!(instances["lost"].as_u64().unwrap() >= 4, "{f}");
    post(&c, &s, "after").await;
    wait_for_items(&c, &s, 9).await;
    // What the function printed is in spillway's log, tagged with function and request.
    let log = s.stderr();
    assert!(
        log.lines()
            .any(|l| l.contains("crashing on purpose") && l.contains("function=faulty")),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn init_errors_are_reported_and_the_instance_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("init-failed-once");
    let config = config_before_mappings(|t| t)
        + &python_function(
            "flaky-init",
            "faulty_handler.handler",
            &format!(
                "reserved_concurrency = 1\nenvironment = {{ INIT_FAIL_MARKER = \"{}\" }}",
                marker.display()
            ),
        )
        + &mapping_block("flaky-init", "MaximumRetryAttempts = 3")
        // A second pipeline whose function can never start: its records are retried,
        // then dead-lettered, and the first pipeline is not held up by it.
        + "\n[[streams]]\nname = \"doomed-stream\"\nshard_count = 1\n"
        + "\n[[routes]]\nmethod = \"POST\"\npath = \"/doomed\"\nstream = \"doomed-stream\"\n"
        + &python_function(
            "never-starts",
            "faulty_handler.handler",
            "reserved_concurrency = 1\nenvironment = { INIT_ALWAYS_FAIL = \"1\" }",
        )
        + "\n[[mappings]]\nEventSourceArn = \"doomed-stream\"\nFunctionName = \"never-starts\"\nMaximumRetryAttempts = 1\n";
    let s = Server::start(&dir.path().join("d"), Some(&config));
    let c = client();
    let r = c.post(s.url("/doomed")).body("d0").send().await.unwrap();
    assert_eq!(r.status(), 200);
    for i in 0..5 {
        post(&c, &s, &format!("m{i}")).await;
    }
    wait_for_items(&c, &s, 5).await;
    assert!(marker.exists(), "the first instance ran its failing init");
    let f = function_view(&c, &s, "flaky-init").await;
    assert_eq!(f["instances"]["init_errors"], 1, "{f}");
    assert_eq!(f["instances"]["started"], 2, "{f}");
    wait_until(60, "the doomed record's dead letter", || async {
        !dead_letters(&c, &s).await.is_empty()
    })
    .await;
    let letters = dead_letters(&c, &s).await;
    assert_eq!(
        letters.len(),
        1,
        "only the doomed stream dead-letters: {letters:?}"
    );
    let record = &letters[0]["record"];
    assert!(
        record["KinesisBatchInfo"]["streamArn"]
            .as_str()
            .unwrap()
            .ends_with("/doomed-stream")
    );
    assert_eq!(
        record["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 2);
    let doomed = function_view(&c, &s, "never-starts").await;
    assert_eq!(doomed["instances"]["init_errors"], 2, "{doomed}");
    let log = s.stderr();
    assert!(
        log.contains("init failed on purpose (first instance)")
            && log.contains("init always fails"),
        "the runtime's init error reaches the log: {log}"
    );
}

/// An instance whose init hangs is given Lambda's 10 s, then killed: the invocation
/// fails as a timeout, is retried on a new instance, and its record lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_init_that_hangs_is_cut_at_ten_seconds_and_the_batch_retried() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("init-hung-once");
    let config = config_before_mappings(|t| t)
        + &python_function(
            "slow-init",
            "faulty_handler.handler",
            &format!(
                "reserved_concurrency = 1\nenvironment = {{ INIT_HANG_MARKER = \"{}\" }}",
                marker.display()
            ),
        )
        + &mapping_block("slow-init", "MaximumRetryAttempts = 3");
    let s = Server::start(&dir.path().join("d"), Some(&config));
    let c = client();
    let started = std::time::Instant::now();
    post(&c, &s, "after a hung init").await;
    wait_for_items(&c, &s, 1).await;
    let took = started.elapsed();
    assert!(marker.exists(), "the first instance hung in its init");
    assert!(
        took >= std::time::Duration::from_secs(10),
        "the record landed in {took:?}: the hung init was not waited for"
    );
    let f = function_view(&c, &s, "slow-init").await;
    assert_eq!(f["instances"]["started"], 2, "{f}");
    let items = scan_table(&c, &s, "example-table").await;
    assert_eq!(messages(&items), vec!["after a hung init".to_owned()]);
    assert_eq!(f["errors"], 1, "one invocation failed (the timeout): {f}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn never_more_instances_than_the_concurrency_limit() {
    let dir = tempfile::tempdir().unwrap();
    // Four shards with two lanes each want up to eight invocations at once; the function
    // allows two.
    let config = config_before_mappings(|t| t.replace("shard_count = 1", "shard_count = 4"))
        + &python_function(
            "slow-pid",
            "faulty_handler.pid_handler",
            "reserved_concurrency = 2\nenvironment = { SLEEP_MS = \"100\" }",
        )
        + &mapping_block("slow-pid", "BatchSize = 5\nParallelizationFactor = 2");
    let s = Server::start(&dir.path().join("d"), Some(&config));
    let c = client();
    spike(&s, 200, 20).await;
    wait_for_items(&c, &s, 200).await;
    let items = scan_table(&c, &s, "example-table").await;
    let pids: HashSet<&str> = items
        .iter()
        .map(|i| i["Pid"]["N"].as_str().unwrap())
        .collect();
    // Measured from inside the handlers, independently of spillway's own counters: the
    // invocations (each item carries its invocation's start and end) never overlapped
    // more than two at a time.
    let mut invocations: Vec<(f64, f64)> = items
        .iter()
        .map(|i| {
            let t = |k: &str| i[k]["N"].as_str().unwrap().parse::<f64>().unwrap();
            (t("Start"), t("End"))
        })
        .collect();
    invocations.sort_by(|a, b| a.partial_cmp(b).unwrap());
    invocations.dedup();
    let most = invocations
        .iter()
        .map(|&(start, _)| {
            invocations
                .iter()
                .filter(|&&(s, e)| s <= start && start < e)
                .count()
        })
        .max()
        .unwrap();
    assert_eq!(
        most, 2,
        "at most two invocations at once, and two did overlap"
    );
    let f = function_view(&c, &s, "slow-pid").await;
    let instances = &f["instances"];
    assert_eq!(
        instances["peak"], 2,
        "the limit was reached, never passed: {f}"
    );
    assert_eq!(instances["started"], 2, "warm instances were reused: {f}");
    assert_eq!(pids.len(), 2, "two processes did all the work: {pids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hand_written_runtime_sees_lambdas_protocol_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let script = format!("{FUNCTIONS_DIR}/raw_runtime.py");
    let config = config_before_mappings(|t| t)
        + &format!(
            "\n[[functions]]\nname = \"raw\"\nkind = \"runtime\"\ncommand = [\"python3\", \"{script}\"]\nhandler = \"raw.handler\"\nmemory_mb = 512\ntimeout_seconds = 30\nenvironment = {{ GREETING = \"hi\", AWS_REGION = \"eu-west-1\" }}\n"
        )
        + "\n[[routes]]\nmethod = \"POST\"\npath = \"/raw\"\nfunction = \"raw\"\n";
    let s = Server::start(&dir.path().join("d"), Some(&config));
    let c = client();
    let r = c.post(s.url("/raw")).body("hello").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let seen: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    // Named as Lambda writes them, for runtimes that match header names exactly.
    assert_eq!(
        seen["header_names"],
        serde_json::json!([
            "Lambda-Runtime-Aws-Request-Id",
            "Lambda-Runtime-Deadline-Ms",
            "Lambda-Runtime-Invoked-Function-Arn",
            "Lambda-Runtime-Trace-Id"
        ])
    );
    let h = &seen["headers"];
    assert_eq!(
        h["lambda-runtime-invoked-function-arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:raw"
    );
    assert_eq!(
        h["lambda-runtime-aws-request-id"].as_str().unwrap().len(),
        36
    );
    assert!(
        h["lambda-runtime-trace-id"]
            .as_str()
            .unwrap()
            .starts_with("Root=1-")
    );
    let deadline: u128 = h["lambda-runtime-deadline-ms"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert!(
        deadline > now && deadline <= now + 30_000,
        "{deadline} vs {now}"
    );
    let env = &seen["env"];
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "raw");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "512");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(env["_HANDLER"], "raw.handler");
    assert_eq!(env["AWS_REGION"], "eu-west-1", "user variables win");
    assert_eq!(env["AWS_DEFAULT_REGION"], "us-east-1");
    assert!(env["AWS_ACCESS_KEY_ID"].is_string());
    assert_eq!(env["AWS_ENDPOINT_URL"], s.base.as_str());
    assert_eq!(env["GREETING"], "hi");
    assert_eq!(seen["bogus"][0], 400);
    assert_eq!(seen["bogus"][1]["errorType"], "InvalidRequestID");

    // A response over 6 MB fails the invocation (502 on a proxy route); the instance
    // stays warm and answers the next request.
    let r = c.post(s.url("/raw")).body("big").send().await.unwrap();
    assert_eq!(r.status(), 502);
    let r = c.post(s.url("/raw")).body("again").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let f = function_view(&c, &s, "raw").await;
    assert_eq!(f["instances"]["started"], 1, "{f}");
    assert_eq!(f["errors"], 1, "{f}");
    assert!(
        s.stderr().contains("response answered 413"),
        "{}",
        s.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_drain_with_the_rust_function_keeps_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let function = rust_function("reserved_concurrency = 2", "");
    // Fill the stream with no mapping, so that the drain below starts with a backlog.
    let mut s = Server::start(&data, Some(&(config_without_mapping(|t| t) + &function)));
    let sent = spike(&s, 3_000, 50).await;
    assert_eq!(s.terminate().code(), Some(0));

    // Drain in small batches from TRIM_HORIZON; kill -9 part way through.
    let config = config_before_mappings(|t| t)
        + &function
        + &mapping_block(
            "reference-rs",
            "BatchSize = 5\nStartingPosition = \"TRIM_HORIZON\"",
        );
    let mut s = Server::start(&data, Some(&config));
    let c = client();
    wait_until(120, "the drain to start", || async {
        item_count(&c, &s, "example-table").await >= 200
    })
    .await;
    let (_, m) = get_json(&c, &s.url("/_spillway/mappings")).await;
    assert!(
        m[0]["shards"][0]["behind"].as_u64().unwrap() > 0,
        "the drain was already over: {m}"
    );
    s.kill9();

    // Restart: the mapping resumes from its checkpoint, replays what was in flight, and
    // the function's record-derived IDs make the replay rewrite the same items.
    let s = Server::start(&data, Some(&config));
    wait_until(120, "the drain to finish", || async {
        let (_, m) = get_json(&c, &s.url("/_spillway/mappings")).await;
        m[0]["shards"][0]["behind"] == 0
    })
    .await;
    assert_landed_once(&scan_table(&c, &s, "example-table").await, sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_rust_function_reports_the_records_it_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let function = rust_function("", ", MAX_WRITE_ATTEMPTS = \"2\"");
    let config = config_before_mappings(|t| t)
        + &function
        + &mapping_block(
            "reference-rs",
            "BatchSize = 10\nMaximumBatchingWindowInSeconds = 1\nMaximumRetryAttempts = 1\nFunctionResponseTypes = [\"ReportBatchItemFailures\"]",
        );
    let s = Server::start(&dir.path().join("d"), Some(&config));
    let c = client();
    post(&c, &s, "warm-up").await;
    wait_for_items(&c, &s, 1).await;
    // A message over DynamoDB's 400 KB item limit: its record can never be written, and
    // it makes DynamoDB refuse any BatchWriteItem that carries it.
    let too_big = format!("{{\"message\": \"{}\"}}", "x".repeat(450 * 1024));
    let mut seqs = Vec::new();
    for body in ["m0", "m1", too_big.as_str(), "m2", "m3"] {
        seqs.push(post(&c, &s, body).await);
    }
    wait_for_items(&c, &s, 5).await;
    wait_until(60, "the oversized record's dead letter", || async {
        !dead_letters(&c, &s).await.is_empty()
    })
    .await;
    let letters = dead_letters(&c, &s).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let info = &letters[0]["record"]["KinesisBatchInfo"];
    assert_eq!(
        info["startSequenceNumber"], seqs[2],
        "the batch is retried from the reported record: {info}"
    );
    let mut got = messages(&scan_table(&c, &s, "example-table").await);
    got.sort();
    assert_eq!(got, ["m0", "m1", "m2", "m3", "warm-up"]);
    let f = function_view(&c, &s, "reference-rs").await;
    assert_eq!(
        f["errors"], 0,
        "partial failures are answers, not errors: {f}"
    );
}

/// Instances of the spillway serving `data_dir` (a child of this test process): its child
/// processes that were given a Runtime API, as (pid, `AWS_LAMBDA_RUNTIME_API`).
fn instances(data_dir: &std::path::Path) -> Vec<(u32, String)> {
    let pids = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .collect::<Vec<_>>()
    };
    let parent = |pid: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat[stat.rfind(')')? + 1..]
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let data = data_dir.to_str().unwrap();
    let servers: Vec<u32> = pids()
        .into_iter()
        .filter(|p| parent(*p) == Some(std::process::id()))
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(data))
        })
        .collect();
    pids()
        .into_iter()
        .filter(|p| parent(*p).is_some_and(|pp| servers.contains(&pp)))
        .filter_map(|p| {
            let env = std::fs::read(format!("/proc/{p}/environ")).ok()?;
            let api = env
                .split(|b| *b == 0)
                .find_map(|v| v.strip_prefix(b"AWS_LAMBDA_RUNTIME_API="))?;
            Some((p, String::from_utf8_lossy(api).into_owned()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_the_instance_may_use_its_runtime_api() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let config = config_before_mappings(|t| t)
        + &rust_function("reserved_concurrency = 1", "")
        + &mapping_block("reference-rs", "");
    let s = Server::start(&data, Some(&config));
    let c = client();
    let mut sent = vec!["warm-up".to_owned()];
    post(&c, &s, "warm-up").await;
    wait_for_items(&c, &s, 1).await;
    let found = instances(&data);
    assert_eq!(found.len(), 1, "one warm instance: {found:?}");
    let api = found[0].1.clone();

    // This test process asks for the next event while the instance waits for it too.
    // Were it served, it would take a batch and answer "success" for records that then
    // never reach the table.
    let thief = tokio::spawn({
        let (c, api) = (c.clone(), api.clone());
        async move {
            let r = c
                .get(format!("http://{api}/2018-06-01/runtime/invocation/next"))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            if let Some(id) = r.headers().get("lambda-runtime-aws-request-id") {
                let url = format!(
                    "http://{api}/2018-06-01/runtime/invocation/{}/response",
                    id.to_str().unwrap()
                );
                c.post(url).body("{}").send().await.unwrap();
            }
            (status, r.text().await.unwrap())
        }
    });
    for i in 0..20 {
        let body = format!("record {i}");
        post(&c, &s, &body).await;
        sent.push(body);
    }
    let (status, body) = tokio::time::timeout(std::time::Duration::from_secs(30), thief)
        .await
        .expect("a foreign caller is answered at once")
        .unwrap();
    assert_eq!(status, 403, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["errorType"], "AccessDeniedException", "{body}");

    // Another process (python) is refused the same way.
    let out = std::process::Command::new("timeout")
        .args(["20", "python3", "-c"])
        .arg(format!(
            "import urllib.request, urllib.error\ntry:\n    urllib.request.urlopen('http://{api}/2018-06-01/runtime/invocation/next')\n    print(200)\nexcept urllib.error.HTTPError as e:\n    print(e.code, e.read().decode())"
        ))
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(answer.starts_with("403 "), "{answer}");
    assert!(answer.contains("AccessDeniedException"), "{answer}");

    wait_for_items(&c, &s, sent.len() as u64).await;
    assert_landed_once(&scan_table(&c, &s, "example-table").await, sent);
    let f = function_view(&c, &s, "reference-rs").await;
    assert_eq!(f["errors"], 0, "{f}");
    assert_eq!(
        f["instances"]["started"], 1,
        "the instance itself is served: {f}"
    );
    let log = s.stderr();
    assert!(
        log.contains("refused a Runtime API connection") && log.contains("peer=127.0.0.1:"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn function_processes_die_with_spillway() {
    let dir = tempfile::tempdir().unwrap();
    // A runtime that takes its event, says who it is, then works for a long time.
    let pid_file = dir.path().join("pid");
    let script = dir.path().join("sleeper.py");
    std::fs::write(
        &script,
        format!(
            "import os, time, urllib.request\napi = 'http://' + os.environ['AWS_LAMBDA_RUNTIME_API'] + '/2018-06-01/runtime'\nurllib.request.urlopen(api + '/invocation/next').read()\nopen('{}', 'w').write(str(os.getpid()))\ntime.sleep(600)\n",
            pid_file.display()
        ),
    )
    .unwrap();
    let config = config_before_mappings(|t| t)
        + &format!(
            "\n[[functions]]\nname = \"sleeper\"\nkind = \"runtime\"\ncommand = [\"python3\", \"{}\"]\ntimeout_seconds = 600\n",
            script.display()
        )
        + "\n[[routes]]\nmethod = \"POST\"\npath = \"/sleep\"\nfunction = \"sleeper\"\n";
    let mut s = Server::start(&dir.path().join("d"), Some(&config));
    let c = client();
    let url = s.url("/sleep");
    let call = tokio::spawn(async move { c.post(url).body("zzz").send().await });
    wait_until(30, "the instance to take its event", || async {
        std::fs::read_to_string(&pid_file).is_ok_and(|p| !p.is_empty())
    })
    .await;
    let pid: u32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    // Running (not a zombie) while its process exists.
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| {
            st.rsplit(')')
                .next()
                .is_some_and(|r| !r.trim_start().starts_with('Z'))
        })
    };
    assert!(alive());
    s.kill9();
    let _ = call.await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while alive() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let survived = alive();
    if survived {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
    assert!(
        !survived,
        "the function process outlived a kill -9 of spillway"
    );
}
