//! Kinesis API bulk benchmark against a running spillway: PutRecords in batches of 500
//! until N records are in a fresh 1-shard stream, then a GetRecords drain of all of them
//! (Limit 10,000), reporting records/s and MB/s for each.
//!
//! `cargo run --release --example kinesis_bench -- http://127.0.0.1:4566 [records] [record bytes]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use base64::Engine;
use serde_json::{Value, json};

async fn call(
    c: &reqwest::Client,
    base: &str,
    action: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let r = c
        .post(format!("{base}/"))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("Kinesis_20131202.{action}"))
        .header("authorization", "AWS4-HMAC-SHA256 Credential=bench/20261125/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=0")
        .header("x-amz-date", "20261125T120000Z")
        .body(body.to_string())
        .send()
        .await?;
    let status = r.status();
    let v: Value = r.json().await?;
    anyhow::ensure!(status.is_success(), "{action}: {status} {v}");
    Ok(v)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let base = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "http://127.0.0.1:4566".into());
    let total: u64 = args.get(2).map_or(Ok(1_000_000), |a| a.parse())?;
    let size: usize = args.get(3).map_or(Ok(100), |a| a.parse())?;
    let c = reqwest::Client::new();
    let stream = format!("bench-{}", spillway::stream::now_ms());
    call(
        &c,
        &base,
        "CreateStream",
        &json!({"StreamName": stream, "ShardCount": 1}),
    )
    .await?;

    let data = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; size]);
    let batches = total.div_ceil(500);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (c, base, stream, data, next) = (
            c.clone(),
            base.clone(),
            stream.clone(),
            data.clone(),
            Arc::clone(&next),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    return anyhow::Ok(());
                }
                let records: Vec<Value> = (0..500)
                    .map(|i| json!({"Data": data, "PartitionKey": format!("{b}-{i}")}))
                    .collect();
                let r = call(
                    &c,
                    &base,
                    "PutRecords",
                    &json!({"StreamName": stream, "Records": records}),
                )
                .await?;
                anyhow::ensure!(
                    r["FailedRecordCount"] == 0,
                    "failures: {}",
                    r["FailedRecordCount"]
                );
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let put_s = started.elapsed().as_secs_f64();
    let put_records = batches * 500;
    println!(
        "PutRecords (500 per call, 8 concurrent): {put_records} records of {size} B in {put_s:.2} s: {:.0} records/s, {:.1} MB/s",
        put_records as f64 / put_s,
        (put_records as usize * size) as f64 / put_s / 1e6
    );

    let it = call(&c, &base, "GetShardIterator", &json!({
        "StreamName": stream, "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"
    }))
    .await?;
    let mut iterator = it["ShardIterator"].as_str().unwrap_or_default().to_owned();
    let started = Instant::now();
    let (mut read, mut bytes) = (0u64, 0usize);
    while read < put_records {
        let r = call(
            &c,
            &base,
            "GetRecords",
            &json!({"ShardIterator": iterator, "Limit": 10_000}),
        )
        .await?;
        let records = r["Records"].as_array().cloned().unwrap_or_default();
        anyhow::ensure!(!records.is_empty(), "drain stalled at {read}");
        read += records.len() as u64;
        bytes += records.len() * size;
        iterator = r["NextShardIterator"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
    }
    let get_s = started.elapsed().as_secs_f64();
    println!(
        "GetRecords drain (Limit 10000): {read} records in {get_s:.2} s: {:.0} records/s, {:.1} MB/s",
        read as f64 / get_s,
        bytes as f64 / get_s / 1e6
    );
    call(&c, &base, "DeleteStream", &json!({"StreamName": stream})).await?;
    Ok(())
}
