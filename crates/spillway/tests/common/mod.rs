//! Test harness: runs a real `spillway serve` process on a temp data dir and a free port.
#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_spillway");

/// The default config with `edit` applied to its text.
pub fn config_with(edit: impl FnOnce(String) -> String) -> String {
    edit(spillway::config::DEFAULT_TOML.to_owned())
}

/// A running spillway process.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    /// `https://ADDR` of the HTTPS listener, when the config sets `tls_listen`.
    pub https: Option<String>,
    pub data_dir: PathBuf,
    stderr_log: PathBuf,
}

impl Server {
    /// Starts spillway on `data_dir` with the given config text (default when None).
    pub fn start(data_dir: &Path, config: Option<&str>) -> Server {
        Self::start_at(data_dir, config, "127.0.0.1:0")
    }

    /// [`Self::start`] listening on `listen` (to come back on the same port).
    pub fn start_at(data_dir: &Path, config: Option<&str>, listen: &str) -> Server {
        Self::start_with(data_dir, config, listen, &[])
    }

    /// [`Self::start_at`] with more environment variables for the process.
    pub fn start_with(
        data_dir: &Path,
        config: Option<&str>,
        listen: &str,
        env: &[(&str, &str)],
    ) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(listen);
        if let Some(text) = config {
            let path = data_dir.with_extension("toml");
            std::fs::write(&path, text).unwrap();
            cmd.arg("--config").arg(path);
        }
        let stderr_log = data_dir.with_extension("log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_log)
            .unwrap();
        let mut child = cmd
            // Function output is logged at info under spillway::function; tests read it.
            .env("RUST_LOG", "warn,spillway::function=info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn spillway");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        // The HTTPS listener's address is the second line.
        let https = config
            .is_some_and(|c| c.lines().any(|l| l.starts_with("tls_listen")))
            .then(|| {
                let mut second = String::new();
                stdout.read_line(&mut second).unwrap();
                second
                    .trim()
                    .strip_prefix("spillway listening on ")
                    .unwrap_or_else(|| panic!("no HTTPS address: {second:?}"))
                    .to_owned()
            });
        let base = line
            .trim()
            .strip_prefix("spillway listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "spillway did not start: {line:?}\n{}",
                    std::fs::read_to_string(&stderr_log).unwrap_or_default()
                )
            })
            .to_owned();
        Server {
            child: Some(child),
            base,
            https,
            data_dir: data_dir.to_owned(),
            stderr_log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM, then wait for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
        c.wait().unwrap()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A record read back through the inspection API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRecord {
    pub sequence_number: String,
    pub partition_key: String,
    pub data: Vec<u8>,
    pub arrival_ms: u64,
}

pub fn decode_records(v: &Value) -> Vec<ReadRecord> {
    v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| ReadRecord {
            sequence_number: r["sequence_number"].as_str().unwrap().to_owned(),
            partition_key: r["partition_key"].as_str().unwrap().to_owned(),
            data: base64::engine::general_purpose::STANDARD
                .decode(r["data"].as_str().unwrap())
                .unwrap(),
            arrival_ms: r["arrival_ms"].as_u64().unwrap(),
        })
        .collect()
}

/// GET on the inspection API, returning (status, json).
/// The Prometheus text of `s`'s `/metrics` (answered 200).
pub async fn metrics_text(c: &reqwest::Client, s: &Server) -> String {
    let r = c.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

pub async fn get_json(c: &reqwest::Client, url: &str) -> (u16, Value) {
    let r = c.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// Reads a shard from `query` (e.g. `position=TRIM_HORIZON`), one page.
pub async fn read_page(
    c: &reqwest::Client,
    s: &Server,
    stream: &str,
    shard: &str,
    query: &str,
) -> (Vec<ReadRecord>, String) {
    let (status, v) = get_json(
        c,
        &s.url(&format!(
            "/_spillway/streams/{stream}/shards/{shard}/records?{query}"
        )),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    (
        decode_records(&v),
        v["next_cursor"].as_str().unwrap().to_owned(),
    )
}

/// Every record of a shard, oldest first.
pub async fn read_shard(
    c: &reqwest::Client,
    s: &Server,
    stream: &str,
    shard: &str,
) -> Vec<ReadRecord> {
    let mut out = Vec::new();
    let (mut page, mut cursor) =
        read_page(c, s, stream, shard, "position=TRIM_HORIZON&limit=1000").await;
    while !page.is_empty() {
        out.append(&mut page);
        (page, cursor) = read_page(
            c,
            s,
            stream,
            shard,
            &format!("position=CURSOR&cursor={cursor}&limit=1000"),
        )
        .await;
    }
    out
}

/// Shard ids of a stream.
pub async fn shard_ids(c: &reqwest::Client, s: &Server, stream: &str) -> Vec<String> {
    let (_, v) = get_json(c, &s.url(&format!("/_spillway/streams/{stream}"))).await;
    v["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["shard_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Counter part (last 20 digits) of a sequence number.
pub fn counter(seq: &str) -> u64 {
    assert_eq!(seq.len(), 56, "{seq}");
    seq[36..].parse().unwrap()
}

/// The default config up to (not including) its mapping, so tests can add their own.
pub fn config_without_mapping(edit: impl FnOnce(String) -> String) -> String {
    // A config file is laid over the default, whose mapping would come back unless
    // the list is given, empty.
    format!("mappings = []\n{}", config_before_mappings(edit))
}

/// The default config up to its mappings, to append `[[mappings]]` blocks to (they
/// replace the default's list).
pub fn config_before_mappings(edit: impl FnOnce(String) -> String) -> String {
    let text = spillway::config::DEFAULT_TOML;
    let cut = text
        .find("# Event source mappings")
        .expect("default config has a mapping");
    edit(text[..cut].to_owned())
}

/// A `[[mappings]]` block from example-stream to `function`, with extra keys.
pub fn mapping_block(function: &str, extra: &str) -> String {
    format!(
        "\n[[mappings]]\nEventSourceArn = \"example-stream\"\nFunctionName = \"{function}\"\n{extra}\n"
    )
}

/// A `kind = "process"` function running tests/functions/recorder.py.
pub fn recorder_function(name: &str, mode: &str, log: &Path) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/functions/recorder.py");
    format!(
        "\n[[functions]]\nname = \"{name}\"\nkind = \"process\"\nreserved_concurrency = 10\ncommand = [\"python3\", \"{script}\", \"{mode}\", \"{}\"]\n",
        log.display()
    )
}

/// Invocations logged by recorder.py: per invocation, the records' (seq, key, data, shard).
pub fn recorded_invocations(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every item of a table (wire form), via the inspection API.
pub async fn scan_table(c: &reqwest::Client, s: &Server, table: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let mut url = s.url(&format!("/_spillway/tables/{table}?limit=1000"));
        if let Some(k) = &start {
            url.push_str("&start_after=");
            url.push_str(&urlencode(k));
        }
        let (status, v) = get_json(c, &url).await;
        assert_eq!(status, 200, "{v}");
        items.extend(v["items"].as_array().unwrap().iter().cloned());
        match v.get("last_evaluated_key") {
            Some(k) if !k.is_null() => start = Some(k.to_string()),
            _ => return items,
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Item count of a table.
pub async fn item_count(c: &reqwest::Client, s: &Server, table: &str) -> u64 {
    let (_, v) = get_json(c, &s.url(&format!("/_spillway/tables/{table}?limit=1"))).await;
    v["item_count"].as_u64().unwrap()
}

/// Waits until `cond` holds, polling every 100 ms, or panics after `secs`.
pub async fn wait_until<F, Fut>(secs: u64, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !cond().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `Message` attribute of each item.
pub fn messages(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["Message"]["S"].as_str().unwrap().to_owned())
        .collect()
}

/// Dead letters via the inspection API.
pub async fn dead_letters(c: &reqwest::Client, s: &Server) -> Vec<Value> {
    let (_, v) = get_json(c, &s.url("/_spillway/dead-letters")).await;
    v.as_array().unwrap().clone()
}

/// POSTs one body to /dev and returns the acknowledged sequence number.
pub async fn post(c: &reqwest::Client, s: &Server, body: &str) -> String {
    let r = c
        .post(s.url("/dev"))
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["SequenceNumber"].as_str().unwrap().to_owned()
}

/// Runs one of tests/interop/*.py (unittest) against `s` with dummy AWS credentials, and
/// fails with its report if any of its tests fail.
pub fn run_interop_script(s: &Server, script: &str) {
    run_python_test(script, Some(s));
}

/// Runs one of tests/interop/*.py with dummy AWS credentials (and `SPILLWAY_ENDPOINT`
/// when a server is given); fails with its report if it fails.
pub fn run_python_test(script: &str, server: Option<&Server>) {
    run_python_test_with(script, server, &[]);
}

/// [`run_python_test`] with more environment variables for the script.
pub fn run_python_test_with(script: &str, server: Option<&Server>, env: &[(&str, &str)]) {
    let path = format!("{}/tests/interop/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut command = Command::new("python3");
    command
        .arg(path)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .envs(env.iter().copied());
    if let Some(s) = server {
        command.env("SPILLWAY_ENDPOINT", &s.base);
    }
    let out = command
        .output()
        .expect("python3 runs (the interop tests need Python 3: apt-get install python3)");
    let report = String::from_utf8_lossy(&out.stderr);
    println!("{report}");
    if let Some(module) = report
        .lines()
        .find_map(|l| l.strip_prefix("ModuleNotFoundError: No module named "))
    {
        panic!(
            "{script} needs the Python module {module}: `pip install -r tests/requirements.txt` \
             (the README's test command, .ci/run, installs it)"
        );
    }
    assert!(
        out.status.success(),
        "{script} failed:\n{report}\n{}",
        server.map(Server::stderr).unwrap_or_default()
    );
}

/// A body like the reference load script's.
pub fn reference_body(i: usize) -> String {
    format!("{{\"index\": {i}, \"message\": \"Test message {i}\"}}")
}

/// Posts `n` reference bodies with `concurrency` clients; returns the acked messages.
pub async fn spike(s: &Server, n: usize, concurrency: usize) -> Vec<String> {
    let c = client();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (c, url, next) = (c.clone(), s.url("/dev"), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return acked;
                }
                let r = c.post(&url).body(reference_body(i)).send().await.unwrap();
                assert_eq!(r.status(), 200);
                acked.push(format!("Test message {i}"));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

/// aws-sdk-kinesis (the Rust SDK) pointed at `endpoint`, with test credentials.
pub fn kinesis_sdk(endpoint: &str) -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::from_conf(
        aws_sdk_kinesis::Config::builder()
            .endpoint_url(endpoint)
            .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
                "test",
                "test",
                None,
                None,
                "spillway-tests",
            ))
            .build(),
    )
}

/// Registers an enhanced fan-out consumer of `stream` through the Rust SDK and waits
/// until it is ACTIVE; its ARN.
pub async fn active_consumer(k: &aws_sdk_kinesis::Client, stream: &str, name: &str) -> String {
    use aws_sdk_kinesis::types::ConsumerStatus;
    let arn = k
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
        .unwrap()
        .stream_description_summary()
        .unwrap()
        .stream_arn()
        .to_owned();
    let consumer = k
        .register_stream_consumer()
        .stream_arn(&arn)
        .consumer_name(name)
        .send()
        .await
        .unwrap()
        .consumer()
        .unwrap()
        .consumer_arn()
        .to_owned();
    wait_until(10, "the consumer to be ACTIVE", || async {
        let d = k
            .describe_stream_consumer()
            .consumer_arn(&consumer)
            .send()
            .await
            .unwrap();
        d.consumer_description().unwrap().consumer_status() == &ConsumerStatus::Active
    })
    .await;
    consumer
}

/// The data of the first `n` records a SubscribeToShard delivers, as text.
/// The Rust SDK's SubscribeToShard on `consumer`, the stream's first shard, from
/// TRIM_HORIZON.
pub async fn subscribe_from_start(
    k: &aws_sdk_kinesis::Client,
    consumer: &str,
) -> aws_sdk_kinesis::operation::subscribe_to_shard::SubscribeToShardOutput {
    use aws_sdk_kinesis::types::{ShardIteratorType, StartingPosition};
    k.subscribe_to_shard()
        .consumer_arn(consumer)
        .shard_id("shardId-000000000000")
        .starting_position(
            StartingPosition::builder()
                .r#type(ShardIteratorType::TrimHorizon)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
}

pub async fn subscribed_records(
    sub: &mut aws_sdk_kinesis::operation::subscribe_to_shard::SubscribeToShardOutput,
    n: usize,
) -> Vec<String> {
    use aws_sdk_kinesis::types::SubscribeToShardEventStream;
    let mut got = Vec::new();
    while got.len() < n {
        match sub.event_stream.recv().await.unwrap() {
            Some(SubscribeToShardEventStream::SubscribeToShardEvent(e)) => got.extend(
                e.records()
                    .iter()
                    .map(|r| String::from_utf8(r.data().as_ref().to_vec()).unwrap()),
            ),
            Some(other) => panic!("unexpected event {other:?}"),
            None => break,
        }
    }
    got
}

/// A self-signed certificate for `localhost` and 127.0.0.1, as PEM files in `dir`:
/// (certificate, key).
pub fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, signing_key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

/// `aws` (the AWS CLI) with dummy credentials; its exit status, stdout and stderr.
pub fn aws_cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("aws")
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("the AWS CLI runs (pip install -r tests/requirements.txt)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
