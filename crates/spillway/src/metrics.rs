//! The process's Prometheus instruments that only the hot path can feed: histograms
//! (commit fsync time and size, function duration, HTTP request duration) and the HTTP
//! request counter.
//!
//! Why a separate, global registry: these are observed deep in the committer thread, the
//! function handle and the request guard, which know nothing of each other. Counters
//! that the domain already keeps as atomics (records per shard, invocations, errors, dead
//! letters, throttles) are not duplicated here: `api::prometheus` reads them at scrape
//! time, so counting costs the hot path nothing more than it did.
//!
//! Cost: a histogram observation is a few atomic adds (the `prometheus` crate's
//! lock-free hot/cold shards); a labelled instrument is looked up once per call site
//! and kept (`with_label_values` hashes the labels).

use std::collections::HashSet;
use std::sync::{LazyLock, RwLock};

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Every instrument of the process, registered once.
#[derive(Debug)]
pub struct Instruments {
    pub registry: Registry,
    /// `spillway_commit_fsync_seconds`: time of one stream commit's durability point
    /// (the batch write plus its fdatasync, or the write alone with `durability = os`).
    pub commit_fsync_seconds: Histogram,
    /// `spillway_commit_records`: records made durable by one commit (group commit size).
    pub commit_records: Histogram,
    /// `spillway_function_duration_seconds{function}`: one invocation, queueing for a
    /// concurrency slot excluded.
    pub function_duration_seconds: HistogramVec,
    /// `spillway_http_requests_total{api,action,status}`.
    pub http_requests_total: IntCounterVec,
    /// `spillway_http_request_duration_seconds{api}`.
    pub http_request_duration_seconds: HistogramVec,
}

fn build() -> Result<Instruments, prometheus::Error> {
    let registry = Registry::new();
    let commit_fsync_seconds = Histogram::with_opts(
        HistogramOpts::new(
            "spillway_commit_fsync_seconds",
            "Time of one stream commit: the batch write and its fdatasync.",
        )
        .buckets(prometheus::exponential_buckets(0.000_05, 2.0, 16)?),
    )?;
    let commit_records = Histogram::with_opts(
        HistogramOpts::new(
            "spillway_commit_records",
            "Records made durable by one stream commit (group commit size).",
        )
        .buckets(prometheus::exponential_buckets(1.0, 2.0, 14)?),
    )?;
    let function_duration_seconds = HistogramVec::new(
        HistogramOpts::new(
            "spillway_function_duration_seconds",
            "Duration of one function invocation (Lambda's Duration).",
        )
        .buckets(prometheus::exponential_buckets(0.000_5, 2.0, 18)?),
        &["function"],
    )?;
    let http_requests_total = IntCounterVec::new(
        Opts::new(
            "spillway_http_requests_total",
            "HTTP requests answered, by API, action and status code.",
        ),
        &["api", "action", "status"],
    )?;
    let http_request_duration_seconds = HistogramVec::new(
        HistogramOpts::new(
            "spillway_http_request_duration_seconds",
            "Time from a request's headers to its response's headers.",
        )
        .buckets(prometheus::exponential_buckets(0.000_1, 2.0, 18)?),
        &["api"],
    )?;
    registry.register(Box::new(commit_fsync_seconds.clone()))?;
    registry.register(Box::new(commit_records.clone()))?;
    registry.register(Box::new(function_duration_seconds.clone()))?;
    registry.register(Box::new(http_requests_total.clone()))?;
    registry.register(Box::new(http_request_duration_seconds.clone()))?;
    Ok(Instruments {
        registry,
        commit_fsync_seconds,
        commit_records,
        function_duration_seconds,
        http_requests_total,
        http_request_duration_seconds,
    })
}

static INSTRUMENTS: LazyLock<Instruments> =
    LazyLock::new(|| build().expect("metric definitions are valid"));

/// The process's instruments.
pub fn instruments() -> &'static Instruments {
    &INSTRUMENTS
}

/// Distinct action label values kept before the rest are counted as `other`.
const MAX_ACTIONS: usize = 256;

/// Action names seen, interned: at most [`MAX_ACTIONS`] small strings live for the
/// process, so labels are `&'static str` and the common path takes a read lock only.
static ACTIONS: LazyLock<RwLock<HashSet<&'static str>>> = LazyLock::new(RwLock::default);

/// The `action` label for a name a client chose (an `X-Amz-Target` operation): kept as
/// is while fewer than [`MAX_ACTIONS`] distinct names were seen and it looks like an
/// operation name, else `other`. A client sending random targets cannot grow the
/// metrics without bound.
pub fn action_label(name: &str) -> &'static str {
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return "other";
    }
    if let Some(known) = ACTIONS.read().unwrap_or_else(|p| p.into_inner()).get(name) {
        return known;
    }
    let mut seen = ACTIONS.write().unwrap_or_else(|p| p.into_inner());
    if let Some(known) = seen.get(name) {
        return known;
    }
    if seen.len() < MAX_ACTIONS {
        let interned: &'static str = Box::leak(name.to_owned().into_boxed_str());
        seen.insert(interned);
        return interned;
    }
    "other"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_labels_are_bounded() {
        assert_eq!(action_label("PutRecord"), "PutRecord");
        assert_eq!(action_label("Put Record"), "other");
        assert_eq!(action_label(""), "other");
        for i in 0..MAX_ACTIONS + 10 {
            let _ = action_label(&format!("Op{i}"));
        }
        assert!(ACTIONS.read().unwrap().len() <= MAX_ACTIONS);
        assert_eq!(action_label("NeverSeenBeforeOperation"), "other");
        // Names seen before stay themselves.
        assert_eq!(action_label("PutRecord"), "PutRecord");
    }
}
