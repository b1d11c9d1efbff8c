//! Function benchmark: how fast a mapping drains one shard's backlog through a given
//! function, over the real server (HTTP listener, DynamoDB API, Runtime API host).
//!
//! Phase 1 starts spillway without a mapping and fills example-stream with N reference
//! records through the Kinesis API (PutRecords). Phase 2 restarts it with a mapping from
//! TRIM_HORIZON into the function under test and times the drain until every record is
//! processed. Per invocation time is wall time / invocations: one shard with
//! ParallelizationFactor 1 invokes one batch at a time, so at batch size 1 it is the
//! whole cost of one record's trip (read, invoke, answer, checkpoint).
//!
//! ```text
//! cargo run --release --example function_bench -- RECORDS BATCH builtin
//! cargo run --release --example function_bench -- RECORDS BATCH runtime COMMAND [ARGS...]
//! ```
//! e.g. `... 20000 100 runtime target/release/bootstrap` (the Rust reference function),
//! `... 5000 1 runtime target/release/examples/empty` (an empty function). `WORKDIR`
//! sets a runtime function's working directory.

use std::time::{Duration, Instant};

use base64::Engine;
use spillway::config::Config;
use spillway::server::{ServeOverrides, start};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The default config without its mapping (the phase-1 server).
fn without_mapping() -> String {
    let text = spillway::config::DEFAULT_TOML;
    let cut = text
        .find("# Event source mappings")
        .expect("the default config has a mapping");
    text[..cut].to_owned()
}

/// Phase 2: the function under test and a TRIM_HORIZON mapping with `batch`.
fn with_function(batch: u32, function: &[String]) -> anyhow::Result<String> {
    let mut text = spillway::config::DEFAULT_TOML
        .replace(
            "StartingPosition = \"LATEST\"",
            "StartingPosition = \"TRIM_HORIZON\"",
        )
        .replace("BatchSize = 100", &format!("BatchSize = {batch}"));
    match function {
        [kind] if kind == "builtin" => {}
        [kind, command @ ..] if kind == "runtime" && !command.is_empty() => {
            let words: Vec<String> = command.iter().map(|w| format!("{w:?}")).collect();
            let mut block = format!("kind = \"runtime\"\ncommand = [{}]", words.join(", "));
            if let Ok(dir) = std::env::var("WORKDIR") {
                block.push_str(&format!("\nworking_dir = {dir:?}"));
            }
            text = text
                .replace("kind = \"builtin:kinesis-to-dynamo\"", "")
                .replace("command = []", &block)
                .replace(
                    "environment = {}",
                    "environment = { TABLE_NAME = \"example-table\" }",
                );
        }
        _ => anyhow::bail!("function: `builtin` or `runtime COMMAND [ARGS...]`"),
    }
    Ok(text)
}

async fn serve(text: &str, dir: &std::path::Path) -> anyhow::Result<spillway::server::Running> {
    let config = Config::parse(text, std::path::Path::new("bench.toml"))?;
    start(
        config,
        ServeOverrides {
            data_dir: Some(dir.to_owned()),
            listen: Some("127.0.0.1:0".parse()?),
        },
    )
    .await
}

/// PutRecords of reference bodies, 500 a call, four calls in flight.
async fn fill(base: &str, n: usize) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let mut calls = tokio::task::JoinSet::new();
    for chunk_start in (0..n).step_by(500) {
        let records: Vec<serde_json::Value> = (chunk_start..(chunk_start + 500).min(n))
            .map(|i| {
                let body = format!("{{\"index\": {i}, \"message\": \"Test message {i}\"}}");
                serde_json::json!({
                    "Data": base64::engine::general_purpose::STANDARD.encode(body),
                    "PartitionKey": format!("pk-{i}"),
                })
            })
            .collect();
        let request = client
            .post(base)
            .header("x-amz-target", "Kinesis_20131202.PutRecords")
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-date", "20261125T120000Z")
            .header("authorization", "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=0")
            .body(serde_json::json!({"StreamName": "example-stream", "Records": records}).to_string());
        calls.spawn(async move {
            let r = request.send().await?;
            let v: serde_json::Value = r.json().await?;
            anyhow::ensure!(v["FailedRecordCount"] == 0, "PutRecords failed: {v}");
            Ok(())
        });
        while calls.len() >= 4 {
            calls.join_next().await.expect("a call is running")??;
        }
    }
    while let Some(done) = calls.join_next().await {
        done??;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [records, batch, function @ ..] = args.as_slice() else {
        anyhow::bail!("usage: function_bench RECORDS BATCH (builtin | runtime COMMAND [ARGS...])");
    };
    let n: usize = records.parse()?;
    let batch: u32 = batch.parse()?;
    let phase2 = with_function(batch, function)?;
    let dir = tempfile::tempdir()?;

    let server = serve(&without_mapping(), dir.path()).await?;
    let started = Instant::now();
    fill(&format!("http://{}/", server.addr), n).await?;
    println!(
        "filled {n} records in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    server.stop().await?;

    let server = serve(&phase2, dir.path()).await?;
    let started = Instant::now();
    let client = reqwest::Client::new();
    let mappings = format!("http://{}/_spillway/mappings", server.addr);
    let progress = indicatif::ProgressBar::new(n as u64);
    let (invocations, errors) = loop {
        let v: serde_json::Value = client.get(&mappings).send().await?.json().await?;
        let m = &v[0];
        let processed = m["records_processed"].as_u64().unwrap_or(0);
        progress.set_position(processed);
        if processed >= n as u64 {
            break (
                m["invocations"].as_u64().unwrap_or(0),
                m["function_errors"].as_u64().unwrap_or(0),
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let secs = started.elapsed().as_secs_f64();
    progress.finish_and_clear();
    let tables = format!(
        "http://{}/_spillway/tables/example-table?limit=1",
        server.addr
    );
    let t: serde_json::Value = client.get(&tables).send().await?.json().await?;
    println!(
        "function {}: drained {n} records in {secs:.2} s: {:.0} records/s, {invocations} invocations ({errors} errors), {:.3} ms per invocation; table holds {} items",
        function.join(" "),
        n as f64 / secs,
        secs * 1000.0 / invocations.max(1) as f64,
        t["item_count"]
    );
    server.stop().await?;
    Ok(())
}
