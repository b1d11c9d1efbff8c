//! DynamoDB bulk benchmark against a running spillway: BatchWriteItem of 25 items until N
//! items are in a fresh table, then a full Scan (1 MB pages), reporting items/s.
//!
//! `cargo run --release --example dynamodb_bench -- http://127.0.0.1:4566 [items]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde_json::{Value, json};

async fn call(
    c: &reqwest::Client,
    base: &str,
    action: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let r = c
        .post(format!("{base}/"))
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", format!("DynamoDB_20120810.{action}"))
        .header("authorization", "AWS4-HMAC-SHA256 Credential=bench/20261125/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0")
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
    let c = reqwest::Client::new();
    let table = format!("bench-{}", spillway::stream::now_ms());
    call(
        &c,
        &base,
        "CreateTable",
        &json!({
            "TableName": table,
            "KeySchema": [{"AttributeName": "ID", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "ID", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        }),
    )
    .await?;
    let batches = total.div_ceil(25);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (c, base, table, next) = (c.clone(), base.clone(), table.clone(), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    return anyhow::Ok(());
                }
                let puts: Vec<Value> = (0..25)
                    .map(|i| json!({"PutRequest": {"Item": {
                        "ID": {"S": format!("item-{b}-{i}")},
                        "Message": {"S": format!("Test message {b}-{i} xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")},
                    }}}))
                    .collect();
                call(&c, &base, "BatchWriteItem", &json!({"RequestItems": {table.clone(): puts}})).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let write_s = started.elapsed().as_secs_f64();
    let written = batches * 25;
    println!(
        "BatchWriteItem (25 per call, 16 concurrent): {written} items in {write_s:.2} s: {:.0} items/s",
        written as f64 / write_s
    );
    // PAUSE_SECS: idle between the phases, to tell their memory apart.
    if let Some(secs) = std::env::var("PAUSE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
    }
    let started = Instant::now();
    let mut scanned = 0u64;
    let mut start: Option<Value> = None;
    loop {
        let mut req = json!({"TableName": table});
        if let Some(k) = &start {
            req["ExclusiveStartKey"] = k.clone();
        }
        let page = call(&c, &base, "Scan", &req).await?;
        scanned += page["Count"].as_u64().unwrap_or(0);
        match page.get("LastEvaluatedKey") {
            Some(k) => start = Some(k.clone()),
            None => break,
        }
    }
    let scan_s = started.elapsed().as_secs_f64();
    println!(
        "Scan (1 MB pages): {scanned} items in {scan_s:.2} s: {:.0} items/s",
        scanned as f64 / scan_s
    );
    anyhow::ensure!(scanned == written, "scanned {scanned} of {written}");
    call(&c, &base, "DeleteTable", &json!({"TableName": table})).await?;
    Ok(())
}
