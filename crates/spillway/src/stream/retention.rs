//! Retention: a background task that trims records older than their stream's retention.

use std::sync::Arc;
use std::time::Duration;

use super::Streams;

/// Runs trimming every `interval` until the task is dropped or aborted.
pub async fn run(streams: Arc<Streams>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let s = Arc::clone(&streams);
        match tokio::task::spawn_blocking(move || s.trim_expired()).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(records = n, "retention trimmed expired records"),
            Ok(Err(e)) => tracing::warn!(error = %e, "retention trimming failed"),
            Err(e) => tracing::warn!(error = %e, "retention task panicked"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::clock::{ManualClock, SharedClock};
    use crate::config::Config;
    use crate::storage::memory_engine::MemoryStore;

    /// The background task trims what the 24 h retention expires, once the clock has
    /// passed it; a record appended afterwards gets the next sequence number.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_retention_task_trims_expired_records() {
        let config = Config::default();
        let clock = ManualClock::starting_now();
        let streams = Arc::new(
            Streams::open_with_clock(
                Arc::new(MemoryStore::new()),
                &config.streams_settings(),
                Arc::clone(&clock) as SharedClock,
            )
            .unwrap(),
        );
        let mut last = String::new();
        for i in 0..5 {
            let a = streams
                .append(
                    "example-stream",
                    format!("pk{i}"),
                    None,
                    format!("old {i}").into(),
                )
                .await
                .unwrap();
            last = a.sequence_number;
        }
        let task = tokio::spawn(run(Arc::clone(&streams), Duration::from_millis(10)));
        let records = |s: &Streams| s.summary("example-stream").unwrap().shards[0].records;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(records(&streams), 5, "nothing expires before 24 h");
        clock.advance(Duration::from_secs(24 * 3600 + 1));
        for _ in 0..500 {
            if records(&streams) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(records(&streams), 0, "the task trimmed the expired records");
        task.abort();
        let next = streams
            .append("example-stream", "pk".into(), None, "new".into())
            .await
            .unwrap();
        assert!(next.sequence_number > last);
        let read = streams
            .read("example-stream", "shardId-000000000000", 0, 100)
            .unwrap();
        assert_eq!(read.records.len(), 1);
        assert_eq!(read.records[0].data.as_ref(), b"new");
        tokio::task::block_in_place(|| streams.shutdown());
    }
}
