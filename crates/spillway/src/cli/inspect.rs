//! `spillway stream`: a client of the inspection API that prints a stream for people.

use std::fmt::Write as _;

use anyhow::Context;
use base64::Engine;

use crate::api::inspect::{RecordView, StreamView};

/// Fetches and prints one stream (with its last records) or the list of streams.
pub async fn stream(endpoint: &str, name: Option<&str>, last: usize) -> anyhow::Result<String> {
    let base = endpoint.trim_end_matches('/');
    let client = reqwest::Client::new();
    let views: Vec<StreamView> = match name {
        Some(n) => {
            let url = format!("{base}/_spillway/streams/{n}?last={last}");
            let resp = client
                .get(&url)
                .send()
                .await
                .with_context(|| format!("is spillway running at {base}?"))?;
            if !resp.status().is_success() {
                anyhow::bail!(
                    "{}: {}",
                    resp.status(),
                    resp.text().await.unwrap_or_default()
                );
            }
            vec![resp.json().await?]
        }
        None => {
            client
                .get(format!("{base}/_spillway/streams"))
                .send()
                .await
                .with_context(|| format!("is spillway running at {base}?"))?
                .error_for_status()?
                .json()
                .await?
        }
    };
    let mut out = String::new();
    for v in &views {
        render(&mut out, v);
    }
    if views.is_empty() {
        out.push_str("no streams\n");
    }
    Ok(out)
}

fn render(out: &mut String, v: &StreamView) {
    let total: u64 = v.shards.iter().map(|s| s.records).sum();
    let _ = writeln!(
        out,
        "stream {}  ({} records, {} shards, retention {}h)",
        v.name,
        total,
        v.shards.len(),
        v.retention_hours
    );
    let _ = writeln!(out, "  arn {}", v.arn);
    for s in &v.shards {
        let _ = writeln!(
            out,
            "  {}  records {:>10}  hash keys {}..{}",
            s.shard_id, s.records, s.starting_hash_key, s.ending_hash_key
        );
        if let Some(last) = &s.last_sequence_number {
            let _ = writeln!(out, "    last sequence number {last}");
        }
        for r in s.last_records.iter().flatten() {
            let _ = writeln!(out, "    {}", describe_record(r));
        }
    }
}

fn describe_record(r: &RecordView) -> String {
    let data = base64::engine::general_purpose::STANDARD
        .decode(&r.data)
        .unwrap_or_default();
    let shown = match std::str::from_utf8(&data) {
        Ok(t) if t.len() <= 200 => t.to_owned(),
        Ok(t) => format!(
            "{}... ({} bytes)",
            &t[..t.floor_char_boundary(200)],
            t.len()
        ),
        Err(_) => format!(
            "<{} bytes, base64 {}>",
            data.len(),
            &r.data[..r.data.len().min(60)]
        ),
    };
    let position = crate::stream::SequenceNumber::parse(&r.sequence_number)
        .map(|s| s.counter.to_string())
        .unwrap_or_else(|_| r.sequence_number.clone());
    format!("#{position}  key={}  {}", r.partition_key, shown)
}
