//! Test harness: runs a real `spillway serve` process on a temp data dir and a free port.
#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
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
    pub data_dir: PathBuf,
    stderr_log: PathBuf,
}

impl Server {
    /// Starts spillway on `data_dir` with the given config text (default when None).
    pub fn start(data_dir: &Path, config: Option<&str>) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0");
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
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn spillway");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
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
