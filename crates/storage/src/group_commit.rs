//! The embedded engine's appends: group commit, the engine assigning positions.
//!
//! The stream domain hands the engine a record for a shard; the engine gives it the
//! shard's next counter and an arrival time, and answers once it is durable. A shard's
//! durable tip is the engine's to move: the domain follows it through a watch
//! ([`LogShard::watch`]), so readers, pollers and subscriptions learn of new records
//! from the engine, not from whoever appended them.
//!
//! Every append in the process goes through one bounded queue to one committer thread.
//! The thread takes everything queued (up to `max_commit_records`), assigns counters and
//! arrival times, writes records and shard tips in one atomic batch and makes it durable
//! with one fdatasync. Only then does it move the shards' tips and answer every waiting
//! append. So N concurrent appends cost one fsync.
//!
//! Invariants:
//! - a shard's counters are assigned only here, contiguous from its durable tip, in
//!   commit order; a failed batch moves no tip, so the next batch assigns the same
//!   counters again and no gap or duplicate reaches the disk;
//! - a tip moves only after its batch is durable as `sync` says, so nothing reads a
//!   record that a crash could take back;
//! - arrival times never go backwards within a shard (the later of the clock and the
//!   tip's last arrival);
//! - the queue is bounded by records and by bytes; a full queue is answered at once with
//!   [`AppendError::Overloaded`], never by waiting or by growing memory;
//! - stopping commits whatever was queued before it answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

use super::{ShardKey, ShardTip, StorageError, StoredRecord, StreamStore, SyncMode};

/// The position the engine gave a record, known once it is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub counter: u64,
    pub arrival_ms: u64,
}

/// Why an append was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The queue is full (by records or by bytes): the caller answers "retry later".
    #[error("the append queue is full")]
    Overloaded,
    /// The engine is stopping and takes no more appends.
    #[error("the engine is stopping")]
    Stopped,
}

/// The engine's side of one shard's log: its durable tip, watched, and the appends
/// queued for it and not yet answered.
#[derive(Debug)]
pub struct LogShard {
    key: ShardKey,
    durable: watch::Sender<ShardTip>,
    pending: AtomicU64,
}

impl LogShard {
    pub fn key(&self) -> ShardKey {
        self.key
    }

    /// The durable tip: every record below `next_counter` is on disk and readable.
    pub fn tip(&self) -> ShardTip {
        *self.durable.borrow()
    }

    /// A receiver that changes whenever records become durable in this shard.
    pub fn watch(&self) -> watch::Receiver<ShardTip> {
        self.durable.subscribe()
    }

    /// Appends queued for this shard and not yet answered.
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Acquire)
    }

    /// Wakes the shard's watchers without moving its tip: the domain closed the shard,
    /// and readers waiting for records should learn its end.
    pub fn wake(&self) {
        self.durable.send_modify(|_| {});
    }
}

struct AppendJob {
    shard: Arc<LogShard>,
    partition_key: String,
    data: Bytes,
    reply: oneshot::Sender<Result<Committed, StorageError>>,
    _bytes: OwnedSemaphorePermit,
}

/// Tuning of group commit, from `[storage]`.
#[derive(Debug, Clone)]
pub struct GroupCommitSettings {
    pub sync: SyncMode,
    /// Arrival times come from it.
    pub clock: crate::clock::SharedClock,
    pub queue_records: usize,
    pub queue_bytes: usize,
    pub max_commit_records: usize,
    pub commit_delay: Duration,
    /// Told of every commit: how long its write and durability point took, and how
    /// many records it made durable (None: it failed). The server's metrics hang here.
    pub observe: fn(seconds: f64, records: Option<usize>),
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

/// The embedded engine's shard logs and their committer thread.
pub struct GroupCommit {
    store: Arc<dyn StreamStore>,
    shards: Mutex<HashMap<ShardKey, Arc<LogShard>>>,
    tx: mpsc::Sender<AppendJob>,
    stats: Arc<CommitStats>,
    bytes: Arc<Semaphore>,
    closed: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Starts the committer thread over `store`.
    pub fn start(store: Arc<dyn StreamStore>, settings: GroupCommitSettings) -> Self {
        let (tx, rx) = mpsc::channel(settings.queue_records.max(1));
        let closed = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&closed);
        let stats = Arc::new(CommitStats::default());
        let thread_stats = Arc::clone(&stats);
        let queue_bytes = settings.queue_bytes;
        let writer = Arc::clone(&store);
        let thread = std::thread::Builder::new()
            .name("spillway-committer".into())
            .spawn(move || run(writer, rx, settings, stop, &thread_stats))
            .expect("spawn committer thread");
        Self {
            store,
            shards: Mutex::new(HashMap::new()),
            tx,
            stats,
            bytes: Arc::new(Semaphore::new(queue_bytes)),
            closed,
            thread: Mutex::new(Some(thread)),
        }
    }

    /// The log of `key`, its durable tip read from the store the first time.
    pub fn shard(&self, key: ShardKey) -> Result<Arc<LogShard>, StorageError> {
        let mut shards = self.shards.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = shards.get(&key) {
            return Ok(Arc::clone(s));
        }
        let tip = self.store.load_tip(key)?.unwrap_or_default();
        let shard = Arc::new(LogShard {
            key,
            durable: watch::Sender::new(tip),
            pending: AtomicU64::new(0),
        });
        shards.insert(key, Arc::clone(&shard));
        Ok(shard)
    }

    /// Drops the logs of a deleted stream (stream ids are never reused).
    pub fn forget_stream(&self, stream_id: u32) {
        self.shards
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| k.stream_id != stream_id);
    }

    /// Queues one record for `shard`; the receiver answers with its position once it
    /// is durable.
    pub fn append(
        &self,
        shard: &Arc<LogShard>,
        partition_key: String,
        data: Bytes,
    ) -> Result<oneshot::Receiver<Result<Committed, StorageError>>, AppendError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(AppendError::Stopped);
        }
        let cost = u32::try_from(data.len() + partition_key.len()).unwrap_or(u32::MAX);
        let permit = Arc::clone(&self.bytes)
            .try_acquire_many_owned(cost.max(1))
            .map_err(|_| AppendError::Overloaded)?;
        let (reply, answer) = oneshot::channel();
        shard.pending.fetch_add(1, Ordering::AcqRel);
        let job = AppendJob {
            shard: Arc::clone(shard),
            partition_key,
            data,
            reply,
            _bytes: permit,
        };
        if let Err(e) = self.tx.try_send(job) {
            shard.pending.fetch_sub(1, Ordering::AcqRel);
            return Err(match e {
                mpsc::error::TrySendError::Full(_) => AppendError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => AppendError::Stopped,
            });
        }
        Ok(answer)
    }

    pub fn stats(&self) -> &CommitStats {
        &self.stats
    }

    /// Stops taking appends, commits everything already queued, and joins the thread.
    /// Blocks; call off the async runtime.
    pub fn stop(&self) {
        // The thread sees the flag within 50 ms, drains what is queued, and ends.
        self.closed.store(true, Ordering::Release);
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(
    store: Arc<dyn StreamStore>,
    mut rx: mpsc::Receiver<AppendJob>,
    s: GroupCommitSettings,
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

/// Writes one group of appends in one batch with one durability point, then moves the
/// tips and answers them.
fn commit(
    store: &dyn StreamStore,
    jobs: &mut Vec<AppendJob>,
    s: &GroupCommitSettings,
    stats: &CommitStats,
) {
    if jobs.is_empty() {
        return;
    }
    let now = s.clock.now_ms();
    let mut tips: HashMap<ShardKey, (Arc<LogShard>, ShardTip)> = HashMap::new();
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
    let seconds = started.elapsed().as_secs_f64();
    match written {
        Ok(()) => {
            (s.observe)(seconds, Some(records.len()));
            if stats.failing.swap(false, Ordering::AcqRel) {
                tracing::warn!("commits succeed again");
            }
            stats.commits.fetch_add(1, Ordering::Relaxed);
            stats
                .records
                .fetch_add(records.len() as u64, Ordering::Relaxed);
            for (shard, tip) in tips.values() {
                shard.durable.send_replace(*tip);
            }
            for (job, c) in jobs.drain(..).zip(committed) {
                job.shard.pending.fetch_sub(1, Ordering::AcqRel);
                let _ = job.reply.send(Ok(c));
            }
        }
        Err(e) => {
            (s.observe)(seconds, None);
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
                let _ = job.reply.send(Err(e.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::memory_engine::MemoryStore;

    const SHARD: ShardKey = ShardKey {
        stream_id: 1,
        shard_index: 0,
    };

    fn settings(clock: crate::clock::SharedClock) -> GroupCommitSettings {
        GroupCommitSettings {
            sync: SyncMode::SyncData,
            clock,
            queue_records: 1_000,
            queue_bytes: 1 << 20,
            max_commit_records: 100,
            commit_delay: Duration::ZERO,
            observe: |_, _| {},
        }
    }

    #[tokio::test]
    async fn the_engine_assigns_contiguous_positions_and_moves_the_tip_once_durable() {
        let store = Arc::new(MemoryStore::new());
        let ahead = crate::clock::ManualClock::starting_now();
        ahead.advance(Duration::from_secs(3_600));
        let log = GroupCommit::start(store.clone(), settings(ahead.clone()));
        let shard = log.shard(SHARD).unwrap();
        let mut watch = shard.watch();
        let answers: Vec<_> = (0..50)
            .map(|i| {
                log.append(&shard, format!("pk{i}"), Bytes::from("x"))
                    .unwrap()
            })
            .collect();
        let mut counters = Vec::new();
        for a in answers {
            counters.push(a.await.unwrap().unwrap().counter);
        }
        assert_eq!(counters, (0..50).collect::<Vec<_>>());
        watch.changed().await.unwrap();
        assert_eq!(shard.tip().next_counter, 50);
        assert_eq!(shard.pending(), 0);
        // The tip is the store's too: a reopened engine continues after it.
        assert_eq!(store.load_tip(SHARD).unwrap().unwrap().next_counter, 50);
        log.stop();
        // A clock an hour behind does not move arrival times back.
        let again = GroupCommit::start(store.clone(), settings(crate::clock::system()));
        let shard = again.shard(SHARD).unwrap();
        let c = again
            .append(&shard, "pk".into(), Bytes::from("y"))
            .unwrap()
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.counter, 50);
        assert_eq!(c.arrival_ms, ahead.now_ms());
    }

    #[tokio::test]
    async fn a_failed_batch_assigns_nothing_and_the_next_reuses_its_counters() {
        let store = Arc::new(MemoryStore::new());
        let log = GroupCommit::start(store.clone(), settings(crate::clock::system()));
        let shard = log.shard(SHARD).unwrap();
        store.fail_writes(Some(StorageError::Full("the test's disk".into())));
        let failed = log
            .append(&shard, "pk".into(), Bytes::from("lost"))
            .unwrap()
            .await
            .unwrap();
        assert!(failed.is_err());
        assert_eq!(shard.tip().next_counter, 0);
        assert_eq!(log.stats().failed_commits.load(Ordering::Relaxed), 1);
        store.fail_writes(None);
        let c = log
            .append(&shard, "pk".into(), Bytes::from("kept"))
            .unwrap()
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.counter, 0);
        let read = store.read(SHARD, 0, u64::MAX, 10, 1 << 20).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].data, Bytes::from("kept"));
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_a_stopped_engine_takes_nothing() {
        let store = Arc::new(MemoryStore::new());
        let mut tight = settings(crate::clock::system());
        tight.queue_bytes = 8;
        let log = GroupCommit::start(store, tight);
        let shard = log.shard(SHARD).unwrap();
        assert_eq!(
            log.append(&shard, "pk".into(), Bytes::from(vec![0u8; 64]))
                .unwrap_err(),
            AppendError::Overloaded
        );
        assert_eq!(shard.pending(), 0);
        log.stop();
        assert_eq!(
            log.append(&shard, "pk".into(), Bytes::from("x"))
                .unwrap_err(),
            AppendError::Stopped
        );
    }
}
