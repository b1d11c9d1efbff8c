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
