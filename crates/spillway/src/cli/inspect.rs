//! `spillway stream`: a client of the inspection API that prints a stream for people.

use std::fmt::Write as _;

use anyhow::Context;
use base64::Engine;

use crate::inspection::{DeadLetterView, MappingView, RecordView, StreamView, TableView};

/// GETs a JSON document from the inspection API.
async fn fetch<T: serde::de::DeserializeOwned>(endpoint: &str, path: &str) -> anyhow::Result<T> {
    let base = endpoint.trim_end_matches('/');
    let resp = crate::remote::endpoint::client_for_url(base)?
        .get(format!("{base}{path}"))
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
    Ok(resp.json().await?)
}

/// Prints the tables, or one table's item count and items.
pub async fn table(endpoint: &str, name: Option<&str>, limit: usize) -> anyhow::Result<String> {
    let mut out = String::new();
    match name {
        None => {
            let tables: Vec<TableView> = fetch(endpoint, "/_spillway/tables").await?;
            for t in tables {
                let _ = writeln!(
                    out,
                    "table {}  ({} items)  hash key {}",
                    t.name, t.item_count, t.hash_key
                );
            }
        }
        Some(n) => {
            let t: TableView =
                fetch(endpoint, &format!("/_spillway/tables/{n}?limit={limit}")).await?;
            let _ = writeln!(
                out,
                "table {}  ({} items)  hash key {}",
                t.name, t.item_count, t.hash_key
            );
            let _ = writeln!(out, "  arn {}", t.arn);
            for item in t.items.iter().flatten() {
                let _ = writeln!(out, "  {}", compact_item(item));
            }
            if t.last_evaluated_key.is_some() {
                let _ = writeln!(out, "  ... (more; --limit to see more)");
            }
        }
    }
    Ok(out)
}

/// `{"ID": {"S": "x"}, "n": {"N": "1"}}` as `ID="x" n=1`.
fn compact_item(item: &serde_json::Value) -> String {
    let Some(obj) = item.as_object() else {
        return item.to_string();
    };
    obj.iter()
        .map(|(k, v)| {
            let shown = match v.as_object().and_then(|o| o.iter().next()) {
                Some((t, inner)) if t == "S" => inner.to_string(),
                Some((t, inner)) if t == "N" => inner.as_str().unwrap_or_default().to_owned(),
                Some((t, inner)) if t == "BOOL" => inner.to_string(),
                _ => v.to_string(),
            };
            format!("{k}={shown}")
        })
        .collect::<Vec<_>>()
        .join("  ")
}

/// Prints the mappings with their counters and each shard's checkpoint and lag.
pub async fn mappings(endpoint: &str) -> anyhow::Result<String> {
    let ms: Vec<MappingView> = fetch(endpoint, "/_spillway/mappings").await?;
    let mut out = String::new();
    for m in ms {
        let _ = writeln!(
            out,
            "mapping {}  {} -> {}  {}  batch {}  parallelization {}",
            m.uuid,
            m.stream,
            m.function,
            if m.enabled { "enabled" } else { "disabled" },
            m.batch_size,
            m.parallelization_factor
        );
        let _ = writeln!(
            out,
            "  invocations {}  function errors {}  records processed {}  dead-lettered {}  iterator age {} ms",
            m.invocations,
            m.function_errors,
            m.records_processed,
            m.records_dead_lettered,
            m.iterator_age_ms
        );
        for s in m.shards {
            let _ = writeln!(
                out,
                "  {}  checkpoint #{}  behind {}",
                s.shard_id, s.checkpoint, s.behind
            );
        }
    }
    Ok(out)
}

/// Prints what the control-plane APIs created, one `KIND NAME` line each.
pub async fn resources(endpoint: &str) -> anyhow::Result<String> {
    let list: Vec<crate::inspection::ResourceView> =
        fetch(endpoint, "/_spillway/resources").await?;
    let mut out = String::new();
    for r in list {
        let _ = writeln!(out, "{:<18} {}", r.kind, r.name);
    }
    Ok(out)
}

/// Prints the dead letters.
pub async fn dead_letters(endpoint: &str, json: bool) -> anyhow::Result<String> {
    let letters: Vec<DeadLetterView> = fetch(endpoint, "/_spillway/dead-letters").await?;
    let mut out = String::new();
    if json {
        for l in &letters {
            let _ = writeln!(out, "{}", serde_json::to_string(&l.record)?);
        }
        return Ok(out);
    }
    if letters.is_empty() {
        out.push_str("no dead letters\n");
    }
    for l in letters {
        let b = &l.record.kinesis_batch_info;
        let _ = writeln!(
            out,
            "{}  {}  {}  {} records  {}..{}  invokes {}",
            l.record.timestamp,
            l.record.request_context.condition,
            b.shard_id,
            b.batch_size,
            b.start_sequence_number,
            b.end_sequence_number,
            l.record.request_context.approximate_invoke_count
        );
    }
    Ok(out)
}

/// Fetches and prints one stream (with its last records) or the list of streams.
pub async fn stream(endpoint: &str, name: Option<&str>, last: usize) -> anyhow::Result<String> {
    let base = endpoint.trim_end_matches('/');
    let client = crate::remote::endpoint::client_for_url(base)?;
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
