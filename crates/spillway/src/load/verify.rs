//! `spillway load --verify`: after the run, wait until the pipeline has drained, then
//! check that the table holds every acknowledged record exactly once.
//!
//! Records are matched by their `message` (the built-in function's `Message`), counted
//! against a snapshot taken before the run, so earlier runs against the same table do
//! not count as duplicates.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::inspection::{FunctionView, MappingView, TableView};

/// Where and how long to verify.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The spillway server (its inspection API).
    pub endpoint: String,
    pub table: String,
    /// Give up waiting for the drain after this long.
    pub timeout: Duration,
}

/// One sample of the drain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DrainSample {
    /// Seconds since the run started.
    pub t: f64,
    /// Records in the streams not yet processed by their mappings.
    pub behind: u64,
    /// Lambda's IteratorAge: age of the newest record handed to a function, ms.
    pub iterator_age_ms: u64,
    /// Records the mappings have processed so far.
    pub processed: u64,
    /// Function invocations by the mappings so far.
    pub invocations: u64,
    /// Invocations of every function (mappings and direct routes) so far.
    pub function_invocations: u64,
    /// Items in the verified table.
    pub items: u64,
}

/// What verification found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub table: String,
    pub acknowledged: u64,
    /// Acknowledged records found in the table.
    pub landed: u64,
    /// Extra copies of acknowledged records.
    pub duplicates: u64,
    /// Acknowledged records not in the table.
    pub missing: u64,
    /// Acknowledged records whose payload has no `message` to match.
    pub unverifiable: u64,
    /// Seconds from the start until the mappings had nothing left to process.
    pub drained_seconds: f64,
    /// Last acknowledgement to drained, seconds (0 when drained before the last ack).
    pub end_to_end_lag_seconds: f64,
    pub iterator_age_peak_ms: u64,
    pub drain_curve: Vec<DrainSample>,
}

impl VerifyReport {
    pub fn render_text(&self) -> String {
        format!(
            "verify       table {}: {} acknowledged, {} landed, {} duplicates, {} missing{}\n\
             drain        drained {:.2} s after the start, {:.3} s after the last ack; iterator age peak {} ms\n",
            self.table,
            self.acknowledged,
            self.landed,
            self.duplicates,
            self.missing,
            if self.unverifiable > 0 {
                format!(", {} without a message to match", self.unverifiable)
            } else {
                String::new()
            },
            self.drained_seconds,
            self.end_to_end_lag_seconds,
            self.iterator_age_peak_ms
        )
    }
}

async fn get<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
) -> Result<T, String> {
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("{url}: {}", resp.status()));
    }
    resp.json().await.map_err(|e| format!("{url}: {e}"))
}

/// Counts of each `Message` in the table.
pub async fn snapshot(v: &VerifyOptions) -> Result<HashMap<String, u64>, String> {
    let base = v.endpoint.trim_end_matches('/');
    let client = crate::remote::endpoint::client_for_url(base).map_err(|e| e.to_string())?;
    let mut counts = HashMap::new();
    let mut start: Option<String> = None;
    loop {
        let mut url = format!("{base}/_spillway/tables/{}?limit=10000", v.table);
        if let Some(k) = &start {
            url.push_str("&start_after=");
            url.push_str(&percent_encode(k));
        }
        let page: TableView = get(&client, &url).await?;
        for item in page.items.iter().flatten() {
            if let Some(m) = item["Message"]["S"].as_str() {
                *counts.entry(m.to_owned()).or_default() += 1;
            }
        }
        match page.last_evaluated_key {
            Some(k) => start = Some(k.to_string()),
            None => return Ok(counts),
        }
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Samples the mappings every 100 ms until aborted.
#[derive(Debug)]
pub struct DrainSampler {
    samples: Arc<Mutex<Vec<DrainSample>>>,
    task: tokio::task::JoinHandle<()>,
}

impl DrainSampler {
    pub fn start(v: &VerifyOptions, start: Instant) -> Self {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let base = v.endpoint.trim_end_matches('/').to_owned();
        let table = v.table.clone();
        let out = Arc::clone(&samples);
        let task = tokio::spawn(async move {
            // The baseline snapshot built the same client first and stopped the run
            // with its error if it could not.
            let Ok(client) = crate::remote::endpoint::client_for_url(&base) else {
                return;
            };
            loop {
                if let Some(s) = take_sample(&client, &base, &table, start).await {
                    out.lock().unwrap_or_else(|p| p.into_inner()).push(s);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self { samples, task }
    }

    /// Stops sampling and returns the samples.
    pub fn finish(self) -> Vec<DrainSample> {
        self.task.abort();
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.clone()
    }
}

/// One sample: the mappings' counters, every function's invocations, the table's items.
async fn take_sample(
    client: &reqwest::Client,
    base: &str,
    table: &str,
    start: Instant,
) -> Option<DrainSample> {
    let ms: Vec<MappingView> = get(client, &format!("{base}/_spillway/mappings"))
        .await
        .ok()?;
    let fs: Vec<FunctionView> = get(client, &format!("{base}/_spillway/functions"))
        .await
        .ok()?;
    let t: TableView = get(client, &format!("{base}/_spillway/tables/{table}?limit=1"))
        .await
        .ok()?;
    Some(DrainSample {
        t: start.elapsed().as_secs_f64(),
        behind: ms.iter().flat_map(|m| &m.shards).map(|s| s.behind).sum(),
        iterator_age_ms: ms.iter().map(|m| m.iterator_age_ms).max().unwrap_or(0),
        processed: ms.iter().map(|m| m.records_processed).sum(),
        invocations: ms.iter().map(|m| m.invocations).sum(),
        function_invocations: fs.iter().map(|f| f.invocations).sum(),
        items: t.item_count,
    })
}

/// Waits for the drain, then matches acknowledged records against the table.
pub async fn verify(
    v: &VerifyOptions,
    template: &str,
    acked: &[u64],
    baseline: HashMap<String, u64>,
    start: Instant,
    last_ack: Option<Instant>,
    sampler: DrainSampler,
) -> Result<VerifyReport, String> {
    let client = crate::remote::endpoint::client_for_url(&v.endpoint).map_err(|e| e.to_string())?;
    let url = format!("{}/_spillway/mappings", v.endpoint.trim_end_matches('/'));
    let deadline = Instant::now() + v.timeout;
    let drained_at = loop {
        let ms: Vec<MappingView> = get(&client, &url).await?;
        if ms.iter().flat_map(|m| &m.shards).all(|s| s.behind == 0) {
            break Instant::now();
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the pipeline did not drain within {:.0} s",
                v.timeout.as_secs_f64()
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let mut curve = sampler.finish();
    let base = v.endpoint.trim_end_matches('/');
    if let Some(last) = take_sample(&client, base, &v.table, start).await {
        curve.push(last);
    }
    let after = snapshot(v).await?;
    let mut report = VerifyReport {
        table: v.table.clone(),
        acknowledged: acked.len() as u64,
        drained_seconds: (drained_at - start).as_secs_f64(),
        end_to_end_lag_seconds: last_ack.map_or(0.0, |l| {
            drained_at.saturating_duration_since(l).as_secs_f64()
        }),
        iterator_age_peak_ms: curve.iter().map(|s| s.iterator_age_ms).max().unwrap_or(0),
        drain_curve: curve,
        ..VerifyReport::default()
    };
    let mut wanted: HashMap<String, u64> = HashMap::new();
    for &i in acked {
        match expected_message(&super::render(template, i)) {
            Some(m) => *wanted.entry(m).or_default() += 1,
            None => report.unverifiable += 1,
        }
    }
    for (m, want) in wanted {
        let got = after
            .get(&m)
            .copied()
            .unwrap_or(0)
            .saturating_sub(baseline.get(&m).copied().unwrap_or(0));
        report.landed += got.min(want);
        report.missing += want.saturating_sub(got);
        report.duplicates += got.saturating_sub(want);
    }
    Ok(report)
}

/// The Message the built-in function writes for this payload, if it has one to match.
fn expected_message(payload: &str) -> Option<String> {
    match serde_json::from_str::<serde_json::Value>(payload) {
        Ok(v) => v.get("message").and_then(|m| m.as_str()).map(str::to_owned),
        Err(_) => Some(payload.to_owned()),
    }
}
