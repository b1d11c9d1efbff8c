//! `GET /metrics`: Prometheus' text format 0.0.4, named after the CloudWatch metrics a
//! user of this pattern watches on AWS (IncomingRecords, IteratorAge, Throttles, ...).
//!
//! Two sources: the hot-path instruments of [`crate::metrics`] (histograms, HTTP
//! requests), and, read at scrape time, the counters the domain keeps anyway (records
//! per shard, invocations, errors, dead letters, throttles) and the gauges only a scrape
//! can compute (iterator age now, concurrency now, items per table). Nothing here runs on
//! the request path of the pipeline.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus::proto::MetricFamily;
use prometheus::{Encoder, IntCounterVec, IntGaugeVec, Opts, TextEncoder};

use super::Services;
use crate::stream::now_ms;

/// A counter family filled from values read now.
fn counters(
    name: &str,
    help: &str,
    labels: &[&str],
    rows: &[(Vec<&str>, u64)],
) -> Vec<MetricFamily> {
    let Ok(vec) = IntCounterVec::new(Opts::new(name, help), labels) else {
        return Vec::new();
    };
    for (values, v) in rows {
        vec.with_label_values(values).inc_by(*v);
    }
    non_empty(prometheus::core::Collector::collect(&vec))
}

/// Families with at least one sample: the text encoder refuses an empty one, and a
/// spillway without mappings (an engine for workers) has empty mapping families.
fn non_empty(families: Vec<MetricFamily>) -> Vec<MetricFamily> {
    families
        .into_iter()
        .filter(|f| !f.get_metric().is_empty())
        .collect()
}

/// A gauge family filled from values read now.
fn gauges(name: &str, help: &str, labels: &[&str], rows: &[(Vec<&str>, i64)]) -> Vec<MetricFamily> {
    let Ok(vec) = IntGaugeVec::new(Opts::new(name, help), labels) else {
        return Vec::new();
    };
    for (values, v) in rows {
        vec.with_label_values(values).set(*v);
    }
    non_empty(prometheus::core::Collector::collect(&vec))
}

/// Item counts are a full pass over a table: counted again only when the table was
/// written since, and no sooner than a hundred times the last count took (so counting
/// costs at most a hundredth of a core, which a write benchmark would otherwise feel: a
/// small table is current within a scrape or two, one that takes 10 ms to count is
/// recounted every second).
const ITEM_COUNT_COST_FACTOR: u32 = 100;

/// Per table name: (writes when counted, items, when counted, how long counting took).
type ItemCounts = HashMap<String, (u64, u64, Instant, Duration)>;
static ITEM_COUNTS: LazyLock<Mutex<ItemCounts>> = LazyLock::new(Mutex::default);

/// Items per table, from the cache when it is fresh enough (blocking: a table scan).
fn table_items(services: &Services, writes: &HashMap<u32, u64>) -> Vec<(String, u64)> {
    let mut cache = ITEM_COUNTS.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = Vec::new();
    for t in services.tables.all() {
        let w = writes.get(&t.table_id).copied().unwrap_or(0);
        let fresh = cache.get(&t.name).is_some_and(|(cw, _, at, took)| {
            *cw == w || at.elapsed() < *took * ITEM_COUNT_COST_FACTOR
        });
        if !fresh {
            let started = Instant::now();
            if let Ok(n) = services.tables.count(&t.name) {
                cache.insert(t.name.clone(), (w, n, Instant::now(), started.elapsed()));
            }
        }
        if let Some((_, n, _, _)) = cache.get(&t.name) {
            out.push((t.name.clone(), *n));
        }
    }
    out
}

/// Every family of a scrape.
fn gather(services: &Services) -> Vec<MetricFamily> {
    let mut families = crate::metrics::instruments().registry.gather();

    // Streams, per shard.
    let streams = services.streams.all();
    let mut per_shard: [Vec<(Vec<&str>, u64)>; 4] = Default::default();
    for s in &streams {
        for shard in &s.shards {
            let c = &shard.counters;
            let labels = vec![s.name.as_str(), shard.shard_id.as_str()];
            for (rows, v) in per_shard.iter_mut().zip([
                c.incoming_records.load(Relaxed),
                c.incoming_bytes.load(Relaxed),
                c.write_throttled.load(Relaxed),
                c.read_throttled.load(Relaxed),
            ]) {
                rows.push((labels.clone(), v));
            }
        }
    }
    let shard_labels = ["stream", "shard"];
    for ((name, help), rows) in [
        (
            "spillway_stream_incoming_records_total",
            "Records acknowledged by the shard (Kinesis IncomingRecords).",
        ),
        (
            "spillway_stream_incoming_bytes_total",
            "Data and partition key bytes acknowledged by the shard (IncomingBytes).",
        ),
        (
            "spillway_stream_write_throttled_total",
            "Appends refused by the shard's write limits (WriteProvisionedThroughputExceeded).",
        ),
        (
            "spillway_stream_read_throttled_total",
            "GetRecords calls refused by the shard's read limits (ReadProvisionedThroughputExceeded).",
        ),
    ]
    .into_iter()
    .zip(&per_shard)
    {
        families.extend(counters(name, help, &shard_labels, rows));
    }

    // Mappings.
    let now = now_ms();
    let mut ages = Vec::new();
    let (mut invocations, mut errors, mut dead, mut undelivered) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mappings = services.mappings.list();
    let per_mapping: Vec<_> = mappings
        .iter()
        .map(|m| (m, m.stats.iterator_ages_ms(now)))
        .collect();
    for (m, shard_ages) in &per_mapping {
        let (uuid, function, stream) = (
            m.uuid.as_str(),
            m.function.name.as_str(),
            m.stream.name.as_str(),
        );
        for (shard, age) in shard_ages {
            ages.push((
                vec![uuid, stream, shard.as_str()],
                i64::try_from(*age).unwrap_or(i64::MAX),
            ));
        }
        invocations.push((vec![uuid, function], m.stats.invocations.load(Relaxed)));
        errors.push((vec![uuid, function], m.stats.function_errors.load(Relaxed)));
        dead.push((vec![uuid], m.stats.records_dead_lettered.load(Relaxed)));
        undelivered.push((vec![uuid], m.stats.destination_failures.load(Relaxed)));
    }
    // A worker's mappings, by their name (`{function}@{stream}`), in the same families.
    let worker_mappings: Vec<_> = services
        .worker
        .iter()
        .flat_map(|w| w.mappings().iter())
        .map(|m| (m, m.stats.iterator_ages_ms(now)))
        .collect();
    for (m, shard_ages) in &worker_mappings {
        let (name, function, stream) =
            (m.name.as_str(), m.function_name.as_str(), m.stream.as_str());
        for (shard, age) in shard_ages {
            ages.push((
                vec![name, stream, shard.as_str()],
                i64::try_from(*age).unwrap_or(i64::MAX),
            ));
        }
        invocations.push((vec![name, function], m.stats.invocations.load(Relaxed)));
        errors.push((vec![name, function], m.stats.function_errors.load(Relaxed)));
        dead.push((vec![name], m.stats.records_dead_lettered.load(Relaxed)));
        undelivered.push((vec![name], 0));
    }
    if let Some(w) = &services.worker {
        let (held, failures) = w.lease_counts();
        families.extend(gauges(
            "spillway_worker_leases_held",
            "Shard leases this worker holds now (workers over remote engines).",
            &[],
            &[(vec![], i64::try_from(held).unwrap_or(i64::MAX))],
        ));
        families.extend(counters(
            "spillway_worker_lease_cycle_failures_total",
            "Lease cycles (renew, read, take) that failed: the table engine unreachable or refusing; held shards stop being processed when renewals keep failing.",
            &[],
            &[(vec![], failures)],
        ));
    }
    families.extend(gauges(
        "spillway_mapping_iterator_age_milliseconds",
        "Age of the oldest record the mapping has not processed yet, per shard (Lambda IteratorAge); 0 when caught up.",
        &["mapping", "stream", "shard"],
        &ages,
    ));
    families.extend(counters(
        "spillway_mapping_invocations_total",
        "Function invocations made by the mapping.",
        &["mapping", "function"],
        &invocations,
    ));
    families.extend(counters(
        "spillway_mapping_errors_total",
        "Invocations by the mapping that failed (function error, timeout, crash).",
        &["mapping", "function"],
        &errors,
    ));
    families.extend(counters(
        "spillway_mapping_dead_letters_total",
        "Records the mapping gave up on and sent to its on-failure destination.",
        &["mapping"],
        &dead,
    ));
    families.extend(counters(
        "spillway_mapping_destination_failures_total",
        "On-failure records the mapping could not deliver to its destination queue (the dead letter stays stored).",
        &["mapping"],
        &undelivered,
    ));

    // Functions.
    let (mut running, mut throttles, mut f_invocations, mut f_errors) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let functions = services.functions.all();
    for f in &functions {
        let name = vec![f.name.as_str()];
        running.push((name.clone(), i64::from(f.in_flight())));
        throttles.push((name.clone(), f.stats.throttles.load(Relaxed)));
        f_invocations.push((name.clone(), f.stats.invocations.load(Relaxed)));
        f_errors.push((name, f.stats.errors.load(Relaxed)));
    }
    families.extend(gauges(
        "spillway_function_concurrent_executions",
        "Invocations of the function running now (Lambda ConcurrentExecutions).",
        &["function"],
        &running,
    ));
    families.extend(counters(
        "spillway_function_throttles_total",
        "Direct invocations refused because every concurrency slot was busy (Lambda Throttles).",
        &["function"],
        &throttles,
    ));
    families.extend(counters(
        "spillway_function_invocations_total",
        "Invocations of the function, from mappings and direct routes (Lambda Invocations).",
        &["function"],
        &f_invocations,
    ));
    families.extend(counters(
        "spillway_function_errors_total",
        "Invocations of the function that failed (Lambda Errors).",
        &["function"],
        &f_errors,
    ));

    // Tables.
    let writes = services.tables.writes_by_table();
    let names: HashMap<u32, String> = services
        .tables
        .all()
        .iter()
        .map(|t| (t.table_id, t.name.clone()))
        .collect();
    let items = table_items(services, &writes);
    families.extend(gauges(
        "spillway_table_items",
        "Items in the table (recounted when written, less often for large tables: counting takes at most a tenth of a core).",
        &["table"],
        &items
            .iter()
            .map(|(n, c)| (vec![n.as_str()], i64::try_from(*c).unwrap_or(i64::MAX)))
            .collect::<Vec<_>>(),
    ));
    families.extend(counters(
        "spillway_table_writes_total",
        "Item writes (puts and deletes) made durable in the table.",
        &["table"],
        &names
            .iter()
            .map(|(id, n)| (vec![n.as_str()], writes.get(id).copied().unwrap_or(0)))
            .collect::<Vec<_>>(),
    ));

    // Storage and the process.
    let commits = services.streams.commit_stats();
    families.extend(counters(
        "spillway_commits_total",
        "Stream commits (each one durability point, one fsync with durability = fsync).",
        &[],
        &[(vec![], commits.commits.load(Relaxed))],
    ));
    families.extend(counters(
        "spillway_commit_failures_total",
        "Stream commits that storage refused (a full disk, an I/O error); their appends were answered 503.",
        &[],
        &[(vec![], commits.failed_commits.load(Relaxed))],
    ));
    families.extend(gauges(
        "spillway_storage_writable",
        "1 while storage takes writes, 0 while writes fail (see /_spillway/health).",
        &[],
        &[(
            vec![],
            i64::from(services.streams.storage_health().writable),
        )],
    ));
    families.extend(counters(
        "spillway_log_lines_lost_total",
        "Log lines that could not be written (stderr full or closed).",
        &[],
        &[(vec![], crate::cli::LOST_LOG_WRITES.load(Relaxed))],
    ));
    families
}

/// How often the history keeps a sample, and how many it keeps (5 minutes).
const HISTORY_PERIOD: Duration = Duration::from_secs(2);
const HISTORY_SAMPLES: usize = 150;

/// The last minutes of scrapes (without histogram buckets), so that the live page shows
/// what happened before it was opened: (epoch ms, Prometheus text).
#[derive(Debug, Default)]
pub struct History {
    samples: Mutex<std::collections::VecDeque<(u64, String)>>,
}

impl History {
    /// Samples `services` every [`HISTORY_PERIOD`] until the server they belong to is
    /// gone (the task holds them weakly, so a stopped server is dropped as before).
    pub fn start(services: &Services) -> std::sync::Arc<Self> {
        let history = std::sync::Arc::new(Self::default());
        let weak = std::sync::Arc::downgrade(&history);
        let streams = std::sync::Arc::downgrade(&services.streams);
        let tables = std::sync::Arc::downgrade(&services.tables);
        let mappings = std::sync::Arc::downgrade(&services.mappings);
        let functions = std::sync::Arc::downgrade(&services.functions);
        let iterators = services.iterators.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HISTORY_PERIOD);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let (Some(history), Some(streams), Some(tables), Some(mappings), Some(functions)) = (
                    weak.upgrade(),
                    streams.upgrade(),
                    tables.upgrade(),
                    mappings.upgrade(),
                    functions.upgrade(),
                ) else {
                    return;
                };
                let services = Services {
                    streams,
                    tables,
                    mappings,
                    functions,
                    iterators: iterators.clone(),
                    remote: None,
                    worker: None,
                };
                let text = tokio::task::spawn_blocking(move || {
                    let mut out = Vec::new();
                    let _ = TextEncoder::new().encode(&gather(&services), &mut out);
                    String::from_utf8_lossy(&out)
                        .lines()
                        .filter(|l| !l.starts_with('#') && !l.contains("_bucket{"))
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .await
                .unwrap_or_default();
                let mut samples = history.samples.lock().unwrap_or_else(|p| p.into_inner());
                samples.push_back((now_ms(), text));
                while samples.len() > HISTORY_SAMPLES {
                    samples.pop_front();
                }
            }
        });
        history
    }

    /// `GET /_spillway/history`: `[{"t": epoch ms, "metrics": text}, ...]`, oldest first.
    pub fn to_json(&self) -> serde_json::Value {
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        serde_json::Value::Array(
            samples
                .iter()
                .map(|(t, text)| serde_json::json!({"t": t, "metrics": text}))
                .collect(),
        )
    }
}

/// The `GET /metrics` handler.
pub async fn metrics(services: Services) -> Response {
    let gathered = tokio::task::spawn_blocking(move || {
        let families = gather(&services);
        let mut out = Vec::with_capacity(16 * 1024);
        TextEncoder::new().encode(&families, &mut out).map(|()| out)
    })
    .await;
    match gathered {
        Ok(Ok(body)) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
