//! Group commit: the one writer that turns queued appends into durable records.
//!
//! Every append in the process goes through one bounded queue to one committer thread.
//! The thread takes everything queued (up to `max_commit_records`), assigns each record
//! its shard's next counter and an arrival time, writes records and shard tips in one
//! atomic batch and makes it durable with one fdatasync. Only then does it publish the
//! new tips to readers and answer every waiting append. So N concurrent appends cost one
//! fsync, and a reader never sees a record that is not yet durable.
//!
//! The queue is bounded twice, by records and by bytes; a full queue is answered at once
//! with [`StreamError::Overloaded`], never by waiting or by growing memory.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::{ShardState, StreamError};
use crate::storage::{ShardKey, ShardTip, StoredRecord, StreamStore, SyncMode};

/// What an append learns once its record is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub counter: u64,
    pub arrival_ms: u64,
}

struct AppendJob {
    shard: Arc<ShardState>,
    partition_key: String,
    data: Bytes,
    reply: oneshot::Sender<Result<Committed, StreamError>>,
    _bytes: OwnedSemaphorePermit,
}

/// Tuning of the committer, from `[storage]`.
#[derive(Debug, Clone)]
pub struct CommitterSettings {
    pub sync: SyncMode,
    /// Arrival times come from it.
    pub clock: crate::clock::SharedClock,
    pub queue_records: usize,
    pub queue_bytes: usize,
    pub max_commit_records: usize,
    pub commit_delay: Duration,
}

/// Counters of the committer's work, for benchmarks and inspection.
#[derive(Debug, Default)]
pub struct CommitStats {
    /// Batches written (each one durability point: one fsync with `fsync` durability).
    pub commits: AtomicU64,
    /// Records written.
    pub records: AtomicU64,
    /// Batches that storage refused (each answered every append in it with an error).
    pub failed_commits: AtomicU64,
    /// The last commit failed.
    pub failing: AtomicBool,
}

/// Handle to the committer thread.
pub struct Committer {
    tx: mpsc::Sender<AppendJob>,
    stats: Arc<CommitStats>,
    bytes: Arc<Semaphore>,
    closed: Arc<AtomicBool>,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer").finish_non_exhaustive()
    }
}

impl Committer {
    pub fn start(store: Arc<dyn StreamStore>, settings: CommitterSettings) -> Self {
        let (tx, rx) = mpsc::channel(settings.queue_records);
        let closed = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&closed);
        let stats = Arc::new(CommitStats::default());
        let thread_stats = Arc::clone(&stats);
        let queue_bytes = settings.queue_bytes;
        let thread = std::thread::Builder::new()
            .name("spillway-committer".into())
            .spawn(move || run(store, rx, settings, stop, &thread_stats))
            .expect("spawn committer thread");
        Self {
            tx,
            stats,
            bytes: Arc::new(Semaphore::new(queue_bytes)),
            closed,
            thread: std::sync::Mutex::new(Some(thread)),
        }
    }

    /// Queues one append; the receiver answers once it is durable. Counts the append in
    /// the shard's pending appends until it is answered.
    pub fn enqueue(
        &self,
        shard: Arc<ShardState>,
        partition_key: String,
        data: Bytes,
    ) -> Result<oneshot::Receiver<Result<Committed, StreamError>>, StreamError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StreamError::ShuttingDown);
        }
        let cost = u32::try_from(data.len() + partition_key.len()).unwrap_or(u32::MAX);
        let permit = Arc::clone(&self.bytes)
            .try_acquire_many_owned(cost.max(1))
            .map_err(|_| StreamError::Overloaded)?;
        let (reply, answer) = oneshot::channel();
        let job = AppendJob {
            shard,
            partition_key,
            data,
            reply,
            _bytes: permit,
        };
        let shard = Arc::clone(&job.shard);
        shard.pending.fetch_add(1, Ordering::AcqRel);
        if let Err(e) = self.tx.try_send(job) {
            shard.pending.fetch_sub(1, Ordering::AcqRel);
            return Err(match e {
                mpsc::error::TrySendError::Full(_) => StreamError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => StreamError::ShuttingDown,
            });
        }
        Ok(answer)
    }

    pub fn stats(&self) -> &CommitStats {
        &self.stats
    }

    /// Stops taking appends, commits everything already queued, and joins the thread.
    pub fn stop(&self) {
        // The thread sees the flag within 50 ms, drains what is queued, and ends.
        self.closed.store(true, Ordering::Release);
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(
    store: Arc<dyn StreamStore>,
    mut rx: mpsc::Receiver<AppendJob>,
    s: CommitterSettings,
    stop: Arc<AtomicBool>,
    stats: &CommitStats,
) {
    let mut jobs: Vec<AppendJob> = Vec::with_capacity(s.max_commit_records);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("committer runtime");
    while !stop.load(Ordering::Acquire) {
        // Wait for work, waking every 50 ms to notice a stop request.
        let first =
            rt.block_on(async { tokio::time::timeout(Duration::from_millis(50), rx.recv()).await });
        match first {
            Ok(Some(job)) => jobs.push(job),
            Ok(None) => break,
            Err(_) => continue,
        }
        while jobs.len() < s.max_commit_records {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        if !s.commit_delay.is_zero() {
            std::thread::sleep(s.commit_delay);
        }
        commit(&*store, &mut jobs, &s, stats);
    }
    // Stopping: whatever is still queued was promised an answer; commit it.
    rx.close();
    while let Ok(job) = rx.try_recv() {
        jobs.push(job);
        if jobs.len() == s.max_commit_records {
            commit(&*store, &mut jobs, &s, stats);
        }
    }
    commit(&*store, &mut jobs, &s, stats);
}

/// Writes one group of appends in one batch with one durability point, then answers them.
fn commit(
    store: &dyn StreamStore,
    jobs: &mut Vec<AppendJob>,
    s: &CommitterSettings,
    stats: &CommitStats,
) {
    if jobs.is_empty() {
        return;
    }
    let now = s.clock.now_ms();
    let mut tips: HashMap<ShardKey, (Arc<ShardState>, ShardTip)> = HashMap::new();
    let mut records = Vec::with_capacity(jobs.len());
    let mut committed = Vec::with_capacity(jobs.len());
    for job in jobs.iter() {
        let (_, tip) = tips
            .entry(job.shard.key)
            .or_insert_with(|| (Arc::clone(&job.shard), job.shard.tip()));
        let c = Committed {
            counter: tip.next_counter,
            arrival_ms: now.max(tip.last_arrival_ms),
        };
        tip.next_counter += 1;
        tip.last_arrival_ms = c.arrival_ms;
        records.push((
            job.shard.key,
            StoredRecord {
                counter: c.counter,
                arrival_ms: c.arrival_ms,
                partition_key: job.partition_key.clone(),
                data: job.data.clone(),
            },
        ));
        committed.push(c);
    }
    let tip_list: Vec<(ShardKey, ShardTip)> = tips.iter().map(|(k, (_, t))| (*k, *t)).collect();
    let started = std::time::Instant::now();
    let written = store.append(&records, &tip_list, s.sync);
    let instruments = crate::metrics::instruments();
    instruments
        .commit_fsync_seconds
        .observe(started.elapsed().as_secs_f64());
    match written {
        Ok(()) => {
            instruments.commit_records.observe(records.len() as f64);
            if stats.failing.swap(false, Ordering::AcqRel) {
                tracing::warn!("commits succeed again");
            }
            stats.commits.fetch_add(1, Ordering::Relaxed);
            stats
                .records
                .fetch_add(records.len() as u64, Ordering::Relaxed);
            for (shard, tip) in tips.values() {
                shard.publish(*tip);
            }
            for (job, c) in jobs.drain(..).zip(committed) {
                job.shard.pending.fetch_sub(1, Ordering::AcqRel);
                let _ = job.reply.send(Ok(c));
            }
        }
        Err(e) => {
            stats.failed_commits.fetch_add(1, Ordering::Relaxed);
            // One line per failure spell, not one per batch: while storage refuses
            // writes every commit fails the same way.
            if stats.failing.swap(true, Ordering::AcqRel) {
                tracing::debug!(error = %e, records = jobs.len(), "commit failed");
            } else {
                tracing::error!(
                    error = %e,
                    records = jobs.len(),
                    "commit failed; appends answer 503 until storage takes writes again"
                );
            }
            for job in jobs.drain(..) {
                job.shard.pending.fetch_sub(1, Ordering::AcqRel);
                let _ = job.reply.send(Err(StreamError::Storage(e.clone())));
            }
        }
    }
}
