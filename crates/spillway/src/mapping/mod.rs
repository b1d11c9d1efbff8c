//! Event source mappings: Lambda's Kinesis poller on one machine.
//!
//! One poller per shard reads records in sequence order and invokes the function with
//! batches of Lambda's Kinesis event. A shard's checkpoint (the next record to process)
//! advances only after the function succeeds, in the same atomic batch as the items the
//! function wrote, so a restart resumes where it stopped and replays write the same items.
//!
//! Failure handling follows Lambda: retry with backoff up to `MaximumRetryAttempts`,
//! records older than `MaximumRecordAgeInSeconds` are not retried, `BisectBatchOnFunctionError`
//! splits a failing batch in two (without counting a retry), `ReportBatchItemFailures`
//! moves the checkpoint to the lowest failed record and retries from there (a malformed
//! response fails the whole batch). A batch that exhausts all of that is bypassed and
//! described by a durable dead letter.
//!
//! `ParallelizationFactor` N runs up to N batches of one shard at once: records are
//! spread over N lanes by a hash of their partition key, each lane runs its batches in
//! order (so one key's records stay in order), and the checkpoint advances when every
//! lane has finished the records read in one round.
//!
//! A mapping follows its stream by name. When the stream is deleted (Kinesis
//! DeleteStream) the mapping warns and waits; when a stream of the same name is created
//! again, the mapping reads the new stream from TRIM_HORIZON, so every record
//! acknowledged on it reaches the function. The catalog entry records the stream it
//! reads, so this holds across restarts.

pub mod dead_letter;
#[cfg(test)]
mod rules_model;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use tokio::task::JoinHandle;

use self::dead_letter::DeadLetter;
use crate::config::{Config, MappingConfig, StartingPosition};
use crate::function::event::{BatchResponse, KinesisEvent, KinesisEventRecord, KinesisRecordData};
use crate::function::{FunctionError, FunctionHandle, Functions, TableWrites};
use crate::storage::{MappingCatalogEntry, StorageError, Store, SyncMode, WriteOp};
use crate::stream::{
    Record, ShardState, StartPosition, StreamError, StreamState, StreamStatus, Streams, now_ms,
};
use crate::table::{TableError, Tables};

/// Errors starting or running mappings.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A remote engine failed (workers: `crate::worker`).
    #[error(transparent)]
    Remote(#[from] crate::remote::RemoteError),
    /// Another worker holds the shard's lease now.
    #[error("lease {0} is held by another worker now")]
    LeaseLost(String),
}

/// Counters of one mapping, for inspection and the demo.
#[derive(Debug, Default)]
pub struct MappingStats {
    pub invocations: AtomicU64,
    pub function_errors: AtomicU64,
    pub records_processed: AtomicU64,
    pub records_dead_lettered: AtomicU64,
    /// On-failure records the destination did not take (the dead letter stays).
    pub destination_failures: AtomicU64,
    /// Per shard id: the arrival time (ms) of the oldest record not yet processed, 0
    /// when the shard is caught up. Lambda's IteratorAge is now minus it, so the age
    /// grows with the clock while a batch is retried, and is 0 once caught up.
    oldest_pending: std::sync::Mutex<std::collections::BTreeMap<String, Arc<AtomicU64>>>,
    /// When the last function failure was logged (ms), to log at most one a second.
    last_failure_log_ms: AtomicU64,
    /// Failures not logged since then.
    unlogged_failures: AtomicU64,
}

impl MappingStats {
    /// The slot of one shard's oldest pending arrival (created at 0, caught up).
    pub(crate) fn oldest_pending(&self, shard_id: &str) -> Arc<AtomicU64> {
        let mut m = self
            .oldest_pending
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        Arc::clone(m.entry(shard_id.to_owned()).or_default())
    }

    /// A shard done for good (closed and processed to its end) leaves the metrics.
    pub(crate) fn forget_shard(&self, shard_id: &str) {
        self.oldest_pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(shard_id);
    }

    /// IteratorAge per shard id at `now_ms`: how old the oldest record not yet
    /// processed is (0 when caught up).
    pub fn iterator_ages_ms(&self, now_ms: u64) -> Vec<(String, u64)> {
        self.oldest_pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(shard, oldest)| {
                let oldest = oldest.load(Ordering::Relaxed);
                let age = if oldest == 0 {
                    0
                } else {
                    now_ms.saturating_sub(oldest)
                };
                (shard.clone(), age)
            })
            .collect()
    }

    /// The mapping's IteratorAge: the largest over its shards.
    pub fn iterator_age_ms(&self) -> u64 {
        self.iterator_ages_ms(now_ms())
            .into_iter()
            .map(|(_, age)| age)
            .max()
            .unwrap_or(0)
    }
}

/// One mapping at run time.
pub struct Mapping {
    pub mapping_id: u32,
    pub uuid: String,
    pub config: MappingConfig,
    /// The stream as it was when the mapping started (its name and ARN stay; a stream
    /// created again under the name replaces the rest: see [`Self::current_stream`]).
    pub stream: Arc<StreamState>,
    /// The catalog entry; its `stream_id` is the stream the mapping reads now.
    entry: std::sync::Mutex<MappingCatalogEntry>,
    /// The function as it was when the mapping opened (its name and ARN); invocations
    /// go to the function of that name now (see [`Self::invoke`]).
    pub function: Arc<FunctionHandle>,
    functions: Arc<Functions>,
    pub stats: MappingStats,
    /// When the mapping was created (Lambda's `LastModified` until it changes).
    pub created_ms: u64,
    /// The supervisor and pollers of this mapping, to stop them.
    tasks: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
    streams: Arc<Streams>,
    tables: Arc<Tables>,
    store: Arc<dyn Store>,
    region: String,
    last_dead_letter_id: AtomicU64,
    on_failure: Arc<dyn dead_letter::FailureDestination>,
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping")
            .field("uuid", &self.uuid)
            .field("function", &self.function.name)
            .finish_non_exhaustive()
    }
}

/// What became of one invocation.
pub(crate) enum Outcome {
    Success,
    /// Index (in the batch) of the lowest failed record.
    Partial(usize),
    Failure(FunctionError),
}

/// All mappings of this process: the configured ones and those the Lambda control plane
/// creates, updates and deletes while spillway runs.
pub struct Mappings {
    list: std::sync::RwLock<Vec<Arc<Mapping>>>,
    store: Arc<dyn Store>,
    streams: Arc<Streams>,
    tables: Arc<Tables>,
    functions: Arc<Functions>,
    region: String,
    on_failure: Arc<dyn dead_letter::FailureDestination>,
}

impl std::fmt::Debug for Mappings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mappings")
            .field("mappings", &self.list())
            .finish_non_exhaustive()
    }
}

impl Mappings {
    /// Loads or creates the configured mappings, sets first-start checkpoints, and starts
    /// one poller per shard of every enabled mapping.
    pub fn start(
        config: &Config,
        store: Arc<dyn Store>,
        streams: Arc<Streams>,
        tables: Arc<Tables>,
        functions: Arc<Functions>,
    ) -> Result<Self, MappingError> {
        let on_failure = crate::queue::Queues::shared(
            Arc::clone(&store) as Arc<dyn crate::storage::ResourceStore>,
            &config.region,
            &config.account_id,
        );
        let out = Self {
            list: Default::default(),
            on_failure,
            store,
            streams,
            tables,
            functions,
            region: config.region.clone(),
        };
        for mc in &config.mappings {
            out.open(mc.clone(), None)?;
        }
        Ok(out)
    }

    /// Every mapping, in the order they were opened.
    pub fn list(&self) -> Vec<Arc<Mapping>> {
        self.list
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The mapping of a UUID.
    pub fn get(&self, uuid: &str) -> Option<Arc<Mapping>> {
        self.list().into_iter().find(|m| m.uuid == uuid)
    }

    /// Opens one mapping: its catalog entry (the one of `uuid` when given, else the one
    /// of its function and stream; a new one if there is none), first-start checkpoints,
    /// and its pollers when it is enabled.
    pub fn open(
        &self,
        mc: MappingConfig,
        uuid: Option<&str>,
    ) -> Result<Arc<Mapping>, MappingError> {
        let (store, streams) = (&self.store, &self.streams);
        let catalog = store.load_mappings()?;
        let stream = streams.get(mc.stream_name())?;
        let function = self.functions.get(&mc.function_name).ok_or_else(|| {
            MappingError::Config(format!("function `{}` is not declared", mc.function_name))
        })?;
        // The entry of this function and stream: by the stream's id, or by its name
        // when the stream was deleted and created again (the id changed).
        let same_function = |e: &&MappingCatalogEntry| e.function == mc.function_name;
        let found = match uuid {
            Some(uuid) => catalog.iter().find(|e| e.uuid == uuid),
            None => catalog
                .iter()
                .filter(same_function)
                .find(|e| e.stream_id == stream.stream_id)
                .or_else(|| {
                    catalog
                        .iter()
                        .filter(same_function)
                        .find(|e| e.stream_name.as_deref() == Some(stream.name.as_str()))
                }),
        };
        let (entry, created) = match found {
            Some(e) => {
                let mut e = e.clone();
                if e.stream_name.is_none() || e.function != mc.function_name {
                    // An entry written before mappings followed their streams, or a
                    // mapping given another function.
                    e.stream_name = Some(stream.name.clone());
                    e.function = mc.function_name.clone();
                    store.put_mapping(&e)?;
                }
                (e, false)
            }
            None => {
                let e = MappingCatalogEntry {
                    mapping_id: store.allocate_mapping_id()?,
                    uuid: uuid.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned),
                    function: mc.function_name.clone(),
                    stream_id: stream.stream_id,
                    created_ms: now_ms(),
                    stream_name: Some(stream.name.clone()),
                };
                store.put_mapping(&e)?;
                tracing::info!(uuid = %e.uuid, stream = %stream.name, function = %e.function, "created event source mapping");
                (e, true)
            }
        };
        let follows = entry.stream_id != stream.stream_id;
        let mapping = Arc::new(Mapping {
            mapping_id: entry.mapping_id,
            uuid: entry.uuid.clone(),
            created_ms: entry.created_ms,
            config: mc.clone(),
            stream: Arc::clone(&stream),
            entry: std::sync::Mutex::new(entry),
            function,
            functions: Arc::clone(&self.functions),
            stats: MappingStats::default(),
            streams: Arc::clone(streams),
            tables: Arc::clone(&self.tables),
            store: Arc::clone(store),
            region: self.region.clone(),
            last_dead_letter_id: AtomicU64::new(0),
            on_failure: Arc::clone(&self.on_failure),
            tasks: Arc::default(),
        });
        // First start of a shard: place its checkpoint by StartingPosition, durably,
        // so that LATEST means "latest when the mapping was created", not "on restart".
        // A new mapping places every shard there is, children of earlier reshards
        // included (LATEST on a resharded stream skips the closed parents and starts
        // each open child at its tip). For an existing mapping, shards born of a
        // reshard start at their beginning, after their parents.
        // A mapping whose stream was deleted and created again while spillway was
        // down reads the new stream from its beginning instead.
        if follows {
            mapping.attach(&stream)?;
        }
        let mut initial = Vec::new();
        for shard in stream
            .shards
            .iter()
            .filter(|s| !follows && (created || s.parents.is_empty()))
        {
            if store
                .load_checkpoint(mapping.mapping_id, shard.key)?
                .is_none()
            {
                let position = match mc.starting_position {
                    StartingPosition::Latest => StartPosition::Latest,
                    StartingPosition::TrimHorizon => StartPosition::TrimHorizon,
                    StartingPosition::AtTimestamp => StartPosition::AtTimestamp(
                        (mc.starting_position_timestamp.unwrap_or(0.0) * 1000.0) as u64,
                    ),
                };
                initial.push(WriteOp::Checkpoint {
                    mapping_id: mapping.mapping_id,
                    shard: shard.key,
                    next_counter: streams.resolve_in_shard(shard, &position)?,
                });
            }
        }
        if !initial.is_empty() {
            store.apply(&initial, SyncMode::SyncData)?;
        }
        if mc.enabled {
            let (m, tasks) = (Arc::clone(&mapping), Arc::clone(&mapping.tasks));
            let supervisor = tokio::spawn(async move { m.supervise(tasks).await });
            lock_tasks(&mapping.tasks).push(supervisor);
        } else {
            tracing::warn!(
                uuid = %mapping.uuid,
                stream = %stream.name,
                function = %mapping.function.name,
                "event source mapping is disabled (Enabled = false): its records are not processed"
            );
        }
        self.list
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Arc::clone(&mapping));
        Ok(mapping)
    }

    /// Stops the mapping of `uuid` and takes it out of the list; with `forget`, also
    /// deletes its catalog entry and checkpoints (Lambda's DeleteEventSourceMapping),
    /// else they stay for the mapping to be opened again with new settings.
    pub fn close(&self, uuid: &str, forget: bool) -> Result<Option<Arc<Mapping>>, MappingError> {
        let mapping = {
            let mut list = self
                .list
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let Some(at) = list.iter().position(|m| m.uuid == uuid) else {
                return Ok(None);
            };
            list.remove(at)
        };
        mapping.stop();
        if forget {
            self.store.delete_mapping(mapping.mapping_id)?;
        }
        Ok(Some(mapping))
    }

    /// Stops every poller. Work in flight is dropped uncommitted and replays on restart.
    pub fn stop(&self) {
        for m in self.list() {
            m.stop();
        }
    }
}

fn lock_tasks(
    tasks: &std::sync::Mutex<Vec<JoinHandle<()>>>,
) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
    tasks
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Backoff before retry `attempt` (1-based): 100 ms doubling, at most 1 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((100u64 << attempt.saturating_sub(1).min(4)).min(1000))
}

impl Mapping {
    /// Stops the supervisor and every poller of this mapping.
    fn stop(&self) {
        for t in lock_tasks(&self.tasks).iter() {
            t.abort();
        }
    }

    /// This mapping's checkpoint in `shard`.
    pub fn checkpoint(&self, shard: &ShardState) -> Result<u64, MappingError> {
        Ok(self
            .store
            .load_checkpoint(self.mapping_id, shard.key)?
            .unwrap_or(0))
    }

    /// Dead letters of this mapping, oldest first.
    pub fn dead_letters(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, DeadLetter)>, MappingError> {
        self.store
            .dead_letters(self.mapping_id, after, limit)?
            .into_iter()
            .map(|(id, b)| {
                serde_json::from_slice(&b)
                    .map(|d| (id, d))
                    .map_err(|e| StorageError::Corrupt(format!("dead letter: {e}")).into())
            })
            .collect()
    }

    /// The stream as it is now (resharding replaces its shard list).
    pub fn current_stream(&self) -> Arc<StreamState> {
        self.streams
            .get(&self.stream.name)
            .unwrap_or_else(|_| Arc::clone(&self.stream))
    }

    /// The id of the stream the mapping reads.
    fn stream_id(&self) -> u32 {
        self.entry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stream_id
    }

    /// Makes `stream`, created under the name of the stream this mapping read, the one it
    /// reads: from TRIM_HORIZON in every shard, since all of it was written after the
    /// mapping existed. The checkpoints are durable before the catalog entry names the new
    /// stream, so a crash in between attaches again and finds them.
    fn attach(&self, stream: &StreamState) -> Result<(), MappingError> {
        let mut ops = Vec::new();
        for shard in &stream.shards {
            if self
                .store
                .load_checkpoint(self.mapping_id, shard.key)?
                .is_none()
            {
                ops.push(WriteOp::Checkpoint {
                    mapping_id: self.mapping_id,
                    shard: shard.key,
                    next_counter: self
                        .streams
                        .resolve_in_shard(shard, &StartPosition::TrimHorizon)?,
                });
            }
        }
        if !ops.is_empty() {
            self.store.apply(&ops, SyncMode::SyncData)?;
        }
        let mut entry = self.entry.lock().unwrap_or_else(|p| p.into_inner()).clone();
        entry.stream_id = stream.stream_id;
        entry.stream_name = Some(stream.name.clone());
        self.store.put_mapping(&entry)?;
        *self.entry.lock().unwrap_or_else(|p| p.into_inner()) = entry;
        tracing::warn!(
            uuid = %self.uuid,
            stream = %stream.name,
            function = %self.function.name,
            "the mapping's stream was created again; the mapping reads the new stream from TRIM_HORIZON"
        );
        Ok(())
    }

    /// Starts a poller for every shard of the stream, and for shards a reshard adds.
    /// Follows the stream by name: stops polling when it is deleted, and attaches to a
    /// stream created again under its name (see [`Self::attach`]).
    async fn supervise(self: Arc<Self>, tasks: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>) {
        // Pollers of the stream read now, by shard index.
        let mut pollers: HashMap<u32, tokio::task::AbortHandle> = HashMap::new();
        let mut waiting = false;
        loop {
            match self.streams.get(&self.stream.name) {
                Ok(stream) if stream.status() != StreamStatus::Deleting => {
                    if stream.stream_id != self.stream_id() {
                        for (_, p) in pollers.drain() {
                            p.abort();
                        }
                        if let Err(e) = self.attach(&stream) {
                            tracing::warn!(error = %e, uuid = %self.uuid, "attaching to the re-created stream failed; retrying");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            continue;
                        }
                    }
                    waiting = false;
                    for shard in &stream.shards {
                        if let std::collections::hash_map::Entry::Vacant(v) =
                            pollers.entry(shard.key.shard_index)
                        {
                            let (m, s) = (Arc::clone(&self), Arc::clone(shard));
                            let poller = tokio::spawn(async move { m.poll_shard(s).await });
                            v.insert(poller.abort_handle());
                            lock_tasks(&tasks).push(poller);
                        }
                    }
                }
                // Deleted, or being deleted: its records are going; wait for its successor.
                _ => {
                    if !waiting {
                        tracing::warn!(
                            uuid = %self.uuid,
                            stream = %self.stream.name,
                            function = %self.function.name,
                            "the mapping's stream was deleted; the mapping waits for a stream of that name to be created and will read it from TRIM_HORIZON"
                        );
                        waiting = true;
                    }
                    for (_, p) in pollers.drain() {
                        p.abort();
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Parents drained: every parent is closed and processed to its end, so this shard's
    /// records (which come after theirs for any partition key) may go.
    fn parents_done(&self, shard: &ShardState) -> Result<bool, MappingError> {
        let stream = self.current_stream();
        for p in &shard.parents {
            let Some(parent) = stream.shards.iter().find(|s| s.key.shard_index == *p) else {
                continue;
            };
            match parent.ending() {
                Some(end) if self.checkpoint(parent)? >= end => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    }

    async fn poll_shard(self: Arc<Self>, shard: Arc<ShardState>) {
        let mut tip = shard.subscribe();
        let mut failures = 0u32;
        while !matches!(self.parents_done(&shard), Ok(true)) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        loop {
            // A closed shard processed to its end is done; its children take over.
            if let Some(end) = shard.ending()
                && matches!(self.checkpoint(&shard), Ok(c) if c >= end)
            {
                self.stats.forget_shard(&shard.shard_id);
                return;
            }
            match self.poll_once(&shard, &mut tip).await {
                Ok(()) => failures = 0,
                Err(e) => {
                    // Storage trouble: nothing was committed; wait and read again.
                    failures += 1;
                    tracing::warn!(error = %e, shard = %shard.shard_id, "poller error");
                    tokio::time::sleep(backoff(failures)).await;
                }
            }
        }
    }

    /// Reads from the checkpoint, waits for records if there are none, and processes one
    /// round (one batch, or one batch per lane).
    async fn poll_once(
        &self,
        shard: &Arc<ShardState>,
        tip: &mut tokio::sync::watch::Receiver<crate::storage::ShardTip>,
    ) -> Result<(), MappingError> {
        let checkpoint = self.checkpoint(shard)?;
        let oldest_pending = self.stats.oldest_pending(&shard.shard_id);
        if shard.tip().next_counter <= checkpoint {
            // Caught up. Nothing new: wait for the engine to move the shard's tip.
            oldest_pending.store(0, Ordering::Relaxed);
            tip.mark_unchanged();
            if shard.tip().next_counter <= checkpoint {
                let _ = tokio::time::timeout(Duration::from_secs(1), tip.changed()).await;
            }
            return Ok(());
        }
        let pf = self.config.parallelization_factor.max(1) as usize;
        let batch_size = self.config.batch_size as usize;
        let want = batch_size * pf;
        let window = Duration::from_secs(u64::from(self.config.maximum_batching_window_in_seconds));
        if !window.is_zero() {
            // Batching window: wait until a full round is there or the window has passed
            // since the oldest waiting record arrived.
            loop {
                let available = shard.tip().next_counter.saturating_sub(checkpoint) as usize;
                if available >= want {
                    break;
                }
                let first = self.streams.read_shard(shard, checkpoint, 1)?;
                let Some(oldest) = first.records.first() else {
                    break;
                };
                let deadline = oldest.arrival_ms + window.as_millis() as u64;
                let now = self.streams.clock().now_ms();
                if now >= deadline {
                    break;
                }
                let _ = tokio::time::timeout(Duration::from_millis(deadline - now), tip.changed())
                    .await;
            }
        }
        let read = self.streams.read_shard(shard, checkpoint, want)?;
        let (Some(first), Some(last)) = (read.records.first(), read.records.last()) else {
            return Ok(());
        };
        // Until this round is processed, its first record is the oldest pending one.
        oldest_pending.store(first.arrival_ms.max(1), Ordering::Relaxed);
        let round_end = last.counter + 1;
        if pf == 1 {
            run_batch(
                &ShardRun {
                    mapping: self,
                    shard,
                },
                read.records,
                true,
            )
            .await?;
        } else {
            let runs = lanes(read.records, pf).into_iter().map(|lane| async move {
                for chunk in lane.chunks(batch_size) {
                    run_batch(
                        &ShardRun {
                            mapping: self,
                            shard,
                        },
                        chunk.to_vec(),
                        false,
                    )
                    .await?;
                }
                Ok::<(), MappingError>(())
            });
            for r in futures_util::future::join_all(runs).await {
                r?;
            }
            self.commit(Vec::new(), Some((shard, round_end)), SyncMode::Os)?;
        }
        Ok(())
    }

    /// Invokes the function with one batch and judges the answer.
    async fn invoke(&self, shard: &ShardState, batch: &[Record]) -> (Outcome, Vec<WriteOp>) {
        let payload = kinesis_event(
            batch,
            &shard.shard_id,
            &self.stream.arn,
            &self.function.role_arn,
            &self.region,
        );
        invoke_function(
            &self.functions,
            &self.config,
            &self.function.arn,
            &self.stats,
            payload,
            batch,
        )
        .await
    }

    /// Commits writes and, if given, the shard's new checkpoint, in one atomic batch.
    /// The function's items use `SyncMode::Os`: the stream holds the records durably and
    /// replaying them rewrites the same items, so a lost commit costs a replay, never data.
    fn commit(
        &self,
        mut ops: Vec<WriteOp>,
        checkpoint: Option<(&ShardState, u64)>,
        sync: SyncMode,
    ) -> Result<(), MappingError> {
        if let Some((shard, next_counter)) = checkpoint {
            ops.push(WriteOp::Checkpoint {
                mapping_id: self.mapping_id,
                shard: shard.key,
                next_counter,
            });
        }
        if ops.is_empty() {
            return Ok(());
        }
        self.tables.commit(&ops, sync)?;
        Ok(())
    }

    /// Records a dead letter for `batch` and moves past it.
    fn dead_letter(
        &self,
        shard: &ShardState,
        batch: &[Record],
        condition: &str,
        invokes: u64,
        checkpoint: Option<(&ShardState, u64)>,
    ) -> Result<(), MappingError> {
        let Some(first) = batch.first() else {
            return Ok(());
        };
        let letter = DeadLetter::for_batch(
            &self.function.arn,
            condition,
            invokes,
            self.streams.clock().now_ms(),
            &shard.shard_id,
            batch,
            &self.stream.arn,
        );
        tracing::warn!(
            shard = %shard.shard_id,
            condition,
            records = batch.len(),
            start = %first.sequence_number,
            "batch dead-lettered"
        );
        // Ids increase: microseconds, and never below the previous id.
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let prev = self.last_dead_letter_id.load(Ordering::Relaxed);
        let id = now_us.max(prev + 1);
        self.last_dead_letter_id.store(id, Ordering::Relaxed);
        let record = serde_json::to_vec(&letter).expect("dead letters serialize");
        let ops = vec![WriteOp::DeadLetter {
            mapping_id: self.mapping_id,
            id,
            record: record.clone(),
        }];
        self.stats
            .records_dead_lettered
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        // The dead letter is the only trace of these records: make it durable.
        self.commit(ops, checkpoint, SyncMode::SyncData)?;
        self.send_on_failure(&record);
        Ok(())
    }

    /// Sends the on-failure record to the mapping's SQS destination, if it has one; a
    /// failure is logged and counted (the dead letter stays either way).
    fn send_on_failure(&self, record: &[u8]) {
        let Some(destination) = self.config.sqs_destination() else {
            return;
        };
        if let Err(e) = self.on_failure.deliver(destination, record) {
            self.stats
                .destination_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(uuid = %self.uuid, destination, error = %e, "on-failure destination did not take the record; the dead letter stays");
        }
    }
}

/// What running one batch by Lambda's rules needs from where it runs: the embedded
/// mapping ([`ShardRun`]: items and checkpoint in one atomic write) or a worker over
/// remote engines (`crate::worker`: items first, then a fenced checkpoint).
pub(crate) trait BatchHost: Sync {
    fn config(&self) -> &MappingConfig;
    fn now_ms(&self) -> u64;
    /// Invokes the function with one batch and judges the answer.
    fn invoke(&self, batch: &[Record]) -> impl Future<Output = (Outcome, Vec<WriteOp>)> + Send;
    /// Commits the function's writes and, given `next` (the counter of the next record
    /// to process), moves the checkpoint there.
    fn settle(
        &self,
        writes: Vec<WriteOp>,
        next: Option<u64>,
    ) -> impl Future<Output = Result<(), MappingError>> + Send;
    /// Keeps a dead letter for `batch` and, given `next`, moves past it.
    fn dead_letter(
        &self,
        batch: &[Record],
        condition: &str,
        invokes: u64,
        next: Option<u64>,
    ) -> impl Future<Output = Result<(), MappingError>> + Send;
    /// A failed invocation, for the log.
    fn log_failure(&self, e: &FunctionError, batch: &[Record], attempts: u32);
    fn stats(&self) -> &MappingStats;
}

/// One shard of an embedded mapping as a [`BatchHost`].
struct ShardRun<'a> {
    mapping: &'a Mapping,
    shard: &'a ShardState,
}

impl BatchHost for ShardRun<'_> {
    fn config(&self) -> &MappingConfig {
        &self.mapping.config
    }

    fn now_ms(&self) -> u64 {
        self.mapping.streams.clock().now_ms()
    }

    async fn invoke(&self, batch: &[Record]) -> (Outcome, Vec<WriteOp>) {
        self.mapping.invoke(self.shard, batch).await
    }

    async fn settle(&self, writes: Vec<WriteOp>, next: Option<u64>) -> Result<(), MappingError> {
        self.mapping
            .commit(writes, next.map(|n| (self.shard, n)), SyncMode::Os)
    }

    async fn dead_letter(
        &self,
        batch: &[Record],
        condition: &str,
        invokes: u64,
        next: Option<u64>,
    ) -> Result<(), MappingError> {
        self.mapping.dead_letter(
            self.shard,
            batch,
            condition,
            invokes,
            next.map(|n| (self.shard, n)),
        )
    }

    fn log_failure(&self, e: &FunctionError, batch: &[Record], attempts: u32) {
        log_failure(
            &self.mapping.stats,
            &self.mapping.uuid,
            &self.mapping.function.name,
            e,
            &self.shard.shard_id,
            batch,
            attempts,
        );
    }

    fn stats(&self) -> &MappingStats {
        &self.mapping.stats
    }
}

/// Records spread over `pf` lanes by a hash of their partition key (one key's records
/// stay in order in one lane); empty lanes left out.
pub(crate) fn lanes(records: Vec<Record>, pf: usize) -> Vec<Vec<Record>> {
    let mut lanes: Vec<Vec<Record>> = vec![Vec::new(); pf.max(1)];
    for r in records {
        let lane = (crate::stream::hash::partition_key_hash(&r.partition_key) % pf.max(1) as u128)
            as usize;
        lanes[lane].push(r);
    }
    lanes.retain(|l| !l.is_empty());
    lanes
}

/// Runs one batch to completion: success, partial retries, bisection, dead letters.
/// With `checkpoint`, each settled prefix moves the shard's checkpoint.
pub(crate) async fn run_batch<H: BatchHost>(
    host: &H,
    records: Vec<Record>,
    checkpoint: bool,
) -> Result<(), MappingError> {
    let cp = |end: u64| checkpoint.then_some(end);
    let mut queue: VecDeque<(Vec<Record>, u32)> = VecDeque::from([(records, 0)]);
    let mut invokes = 0u64;
    while let Some((mut batch, mut attempts)) = queue.pop_front() {
        loop {
            // Records past MaximumRecordAgeInSeconds are not sent again. Arrival times
            // never decrease in a shard, so the expired ones are a prefix.
            if host.config().maximum_record_age_in_seconds >= 0 {
                let max_age = host.config().maximum_record_age_in_seconds as u64 * 1000;
                let now = host.now_ms();
                let expired = batch
                    .iter()
                    .take_while(|r| now.saturating_sub(r.arrival_ms) > max_age)
                    .count();
                if expired > 0 {
                    let rest = batch.split_off(expired);
                    host.dead_letter(
                        &batch,
                        "RecordAgeExceeded",
                        invokes,
                        cp(rest
                            .first()
                            .map_or(batch[expired - 1].counter + 1, |r| r.counter)),
                    )
                    .await?;
                    batch = rest;
                }
            }
            if batch.is_empty() {
                break;
            }
            invokes += 1;
            match host.invoke(&batch).await {
                (Outcome::Success, writes) => {
                    let end = batch[batch.len() - 1].counter + 1;
                    host.stats()
                        .records_processed
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    host.settle(writes, cp(end)).await?;
                    break;
                }
                (Outcome::Partial(idx), writes) => {
                    host.stats()
                        .records_processed
                        .fetch_add(idx as u64, Ordering::Relaxed);
                    host.settle(writes, cp(batch[idx].counter)).await?;
                    batch.drain(..idx);
                    attempts += 1;
                }
                (Outcome::Failure(e), _) => {
                    host.stats().function_errors.fetch_add(1, Ordering::Relaxed);
                    host.log_failure(&e, &batch, attempts);
                    if host.config().bisect_batch_on_function_error && batch.len() > 1 {
                        let second = batch.split_off(batch.len() / 2);
                        queue.push_front((second, attempts));
                        queue.push_front((batch, attempts));
                        break;
                    }
                    attempts += 1;
                }
            }
            let max = host.config().maximum_retry_attempts;
            if max >= 0 && i64::from(attempts) > max {
                let end = batch[batch.len() - 1].counter + 1;
                host.dead_letter(&batch, "RetryAttemptsExhausted", invokes, cp(end))
                    .await?;
                break;
            }
            tokio::time::sleep(backoff(attempts)).await;
        }
    }
    Ok(())
}

/// Logs a failed invocation at warn level, at most one line a second per mapping
/// (a shard stuck on a poison record fails many times a second); the line counts
/// the failures it stands for.
pub(crate) fn log_failure(
    stats: &MappingStats,
    mapping: &str,
    function: &str,
    e: &FunctionError,
    shard_id: &str,
    batch: &[Record],
    attempts: u32,
) {
    let now = now_ms();
    let last = stats.last_failure_log_ms.load(Ordering::Relaxed);
    if now.saturating_sub(last) < 1000
        || stats
            .last_failure_log_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        stats.unlogged_failures.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(error = %e, shard = %shard_id, records = batch.len(), "function error");
        return;
    }
    let also = stats.unlogged_failures.swap(0, Ordering::Relaxed);
    let oldest = batch
        .first()
        .map_or(0, |r| now.saturating_sub(r.arrival_ms));
    tracing::warn!(
        mapping = %mapping,
        function = %function,
        shard = %shard_id,
        error = %e,
        records = batch.len(),
        first_sequence_number = batch.first().map_or("", |r| r.sequence_number.as_str()),
        retry = attempts,
        iterator_age_ms = oldest,
        failures_since_last_line = also,
        "function invocation failed; the batch will be retried"
    );
}

/// Invokes the mapping's function (by its name now) with one event and judges the answer.
pub(crate) async fn invoke_function(
    functions: &Functions,
    config: &MappingConfig,
    function_arn: &str,
    stats: &MappingStats,
    payload: Bytes,
    batch: &[Record],
) -> (Outcome, Vec<WriteOp>) {
    stats.invocations.fetch_add(1, Ordering::Relaxed);
    let mut writes = TableWrites::default();
    let result = match functions.get(&config.function_name) {
        Some(function) => function.invoke(payload, &mut writes).await,
        None => Err(FunctionError::Start(format!(
            "Function not found: {function_arn}"
        ))),
    };
    let outcome = match result {
        Err(e) => Outcome::Failure(e),
        Ok(_) if !config.reports_batch_item_failures() => Outcome::Success,
        Ok(body) => judge_response(&body, batch),
    };
    (outcome, writes.ops)
}

/// Lambda's Kinesis event for a batch of one shard.
pub(crate) fn kinesis_event(
    batch: &[Record],
    shard_id: &str,
    stream_arn: &str,
    role_arn: &str,
    region: &str,
) -> Bytes {
    let event = KinesisEvent {
        records: batch
            .iter()
            .map(|r| KinesisEventRecord {
                kinesis: KinesisRecordData {
                    kinesis_schema_version: "1.0".into(),
                    partition_key: r.partition_key.clone(),
                    sequence_number: r.sequence_number.clone(),
                    data: base64::engine::general_purpose::STANDARD.encode(&r.data),
                    approximate_arrival_timestamp: r.arrival_ms as f64 / 1000.0,
                },
                event_source: "aws:kinesis".into(),
                event_version: "1.0".into(),
                event_id: format!("{shard_id}:{}", r.sequence_number),
                event_name: "aws:kinesis:record".into(),
                invoke_identity_arn: role_arn.to_owned(),
                aws_region: region.to_owned(),
                event_source_arn: stream_arn.to_owned(),
            })
            .collect(),
    };
    Bytes::from(serde_json::to_vec(&event).expect("events serialize"))
}

/// Judges a ReportBatchItemFailures response: empty or no failures is success; failures
/// naming records of the batch are a partial failure from the lowest one; anything else
/// (not JSON, wrong shape, an identifier not in the batch) fails the whole batch.
fn judge_response(body: &[u8], batch: &[Record]) -> Outcome {
    let malformed = |why: &str| {
        Outcome::Failure(FunctionError::Unhandled {
            error_type: "MalformedBatchResponse".into(),
            message: why.to_owned(),
        })
    };
    let text = std::str::from_utf8(body).unwrap_or("").trim();
    if text.is_empty() || text == "null" || text == "{}" {
        return Outcome::Success;
    }
    let response: BatchResponse = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => return malformed(&format!("not a batch response: {e}")),
    };
    let mut lowest: Option<usize> = None;
    for f in &response.batch_item_failures {
        match batch
            .iter()
            .position(|r| r.sequence_number == f.item_identifier)
        {
            Some(i) => lowest = Some(lowest.map_or(i, |l| l.min(i))),
            None => {
                return malformed(&format!(
                    "itemIdentifier {:?} is not in the batch",
                    f.item_identifier
                ));
            }
        }
    }
    match lowest {
        None => Outcome::Success,
        Some(i) => Outcome::Partial(i),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::clock::{ManualClock, SharedClock};
    use crate::storage::memory_engine::MemoryStore;

    /// The default config with its mapping reading from TRIM_HORIZON, and `edit` applied.
    fn config_from_the_start(edit: impl FnOnce(String) -> String) -> Config {
        let text = crate::config::DEFAULT_TOML.replace(
            "StartingPosition = \"LATEST\"",
            "StartingPosition = \"TRIM_HORIZON\"",
        );
        Config::parse(&edit(text), std::path::Path::new("t.toml")).unwrap()
    }

    /// Appends `n` reference-shaped records (`{"message": "mI"}`).
    async fn append_messages(streams: &Streams, n: usize) {
        for i in 0..n {
            let body = format!("{{\"message\": \"m{i}\"}}");
            streams
                .append("example-stream", format!("pk{i}"), None, body.into())
                .await
                .unwrap();
        }
    }

    /// Streams (on `clock`) and tables over `store`.
    fn open_domain(
        store: &Arc<dyn Store>,
        config: &Config,
        clock: &Arc<ManualClock>,
    ) -> (Arc<Streams>, Arc<Tables>) {
        let streams = Streams::open_with_clock(
            Arc::clone(store) as Arc<dyn crate::storage::StreamStore>,
            &config.streams_settings(),
            Arc::clone(clock) as SharedClock,
        )
        .unwrap();
        let tables = Tables::open(Arc::clone(store), &config.tables_settings()).unwrap();
        (Arc::new(streams), Arc::new(tables))
    }

    /// The config's mappings, into its built-in function.
    fn start_mappings(
        store: &Arc<dyn Store>,
        config: &Config,
        streams: &Arc<Streams>,
        tables: &Arc<Tables>,
    ) -> Mappings {
        let functions = Arc::new(Functions::from_config(
            config,
            tables,
            "127.0.0.1:9".parse().unwrap(),
        ));
        Mappings::start(
            config,
            Arc::clone(store),
            Arc::clone(streams),
            Arc::clone(tables),
            functions,
        )
        .unwrap()
    }

    /// Item IDs of the reference table, sorted.
    fn item_ids(tables: &Tables) -> Vec<String> {
        let mut ids: Vec<String> = tables
            .scan_page("example-table", None, 10_000)
            .unwrap()
            .items
            .iter()
            .map(|i| match &i["ID"] {
                crate::table::AttributeValue::S(s) => s.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        ids.sort();
        ids
    }

    /// A mapping commits items and checkpoint without fsync: a power loss takes them
    /// back, and the restarted mapping replays the records from the last durable
    /// checkpoint and writes the same items again (their IDs come from the records):
    /// the table ends with each record exactly once. The test sees the loss and the
    /// replay happen, rather than hoping a kill landed between the two.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_power_loss_after_the_table_writes_costs_a_replay_that_rewrites_the_same_items() {
        let config = config_from_the_start(|t| t);
        let clock = ManualClock::starting_now();
        let crashable = Arc::new(MemoryStore::with_crash_model());
        let store: Arc<dyn Store> = Arc::clone(&crashable) as Arc<dyn Store>;
        let (streams, tables) = open_domain(&store, &config, &clock);
        append_messages(&streams, 50).await;
        let mappings = start_mappings(&store, &config, &streams, &tables);
        eventually("50 items", || tables.count("example-table").unwrap() == 50).await;
        let before = item_ids(&tables);
        mappings.stop();
        tokio::task::block_in_place(|| streams.shutdown());

        assert!(crashable.crash() > 0, "the table writes were not synced");
        let (streams, tables) = open_domain(&store, &config, &clock);
        assert_eq!(
            tables.count("example-table").unwrap(),
            0,
            "the power loss took them"
        );
        let mappings = start_mappings(&store, &config, &streams, &tables);
        let mapping = mappings.list().remove(0);
        eventually("the replay", || {
            tables.count("example-table").unwrap() == 50
        })
        .await;
        assert!(mapping.stats.invocations.load(Ordering::Relaxed) > 0);
        assert_eq!(item_ids(&tables), before, "the replay wrote the same items");
        mappings.stop();
        tokio::task::block_in_place(|| streams.shutdown());
    }

    /// A spell of failing writes (a full disk) while a mapping has records to process:
    /// nothing lands and the engine says why, then everything lands once writes work
    /// again, each record once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_disk_holds_the_mapping_back_and_loses_nothing() {
        // A batching window on a clock that stands still holds the records back until
        // the disk is full; moving the clock lets the mapping at them.
        let config = config_from_the_start(|t| {
            t.replace(
                "MaximumBatchingWindowInSeconds = 0",
                "MaximumBatchingWindowInSeconds = 1",
            )
        });
        let clock = ManualClock::starting_now();
        let memory = Arc::new(MemoryStore::new());
        let store: Arc<dyn Store> = Arc::clone(&memory) as Arc<dyn Store>;
        let (streams, tables) = open_domain(&store, &config, &clock);
        let mappings = start_mappings(&store, &config, &streams, &tables);
        append_messages(&streams, 20).await;
        memory.fail_writes(Some(crate::storage::StorageError::Full(
            "No space left on device".into(),
        )));
        clock.advance(Duration::from_secs(2));
        eventually("a failed write", || {
            crate::storage::StreamStore::health(&*memory).write_failures > 0
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(tables.count("example-table").unwrap(), 0);
        assert!(!streams.storage_health().writable);
        memory.fail_writes(None);
        eventually("20 items", || tables.count("example-table").unwrap() == 20).await;
        assert_eq!(item_ids(&tables).len(), 20);
        mappings.stop();
        tokio::task::block_in_place(|| streams.shutdown());
    }

    /// Polls `cond` every 20 ms for up to 10 s.
    async fn eventually(what: &str, cond: impl Fn() -> bool) {
        for _ in 0..500 {
            if cond() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("timed out waiting for {what}");
    }

    /// MaximumRecordAgeInSeconds at Lambda's minimum, 60 s, without waiting a minute:
    /// the clock moves. A batch that keeps failing (infinite retries, no bisection)
    /// blocks its shard until its records are older than that, then goes to a dead
    /// letter as `RecordAgeExceeded`, and the shard flows again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_batch_blocks_its_shard_until_its_records_age_out() {
        let text = crate::config::DEFAULT_TOML
            .replace(
                "fail_records_containing = \"\"",
                "fail_records_containing = \"poison\"",
            )
            .replace(
                "MaximumRecordAgeInSeconds = -1",
                "MaximumRecordAgeInSeconds = 60",
            )
            .replace(
                "StartingPosition = \"LATEST\"",
                "StartingPosition = \"TRIM_HORIZON\"",
            );
        let config = Config::parse(&text, std::path::Path::new("t.toml")).unwrap();
        let clock = ManualClock::starting_now();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (streams, tables) = open_domain(&store, &config, &clock);
        let append = |body: &str| {
            streams.append(
                "example-stream",
                body.to_owned(),
                None,
                bytes::Bytes::from(body.to_owned()),
            )
        };
        // All four are there before the mapping starts: one batch.
        let first = append("{\"message\": \"poison pill\"}").await.unwrap();
        let mut last = first.clone();
        for i in 0..3 {
            last = append(&format!("{{\"message\": \"m{i}\"}}")).await.unwrap();
        }
        let mappings = start_mappings(&store, &config, &streams, &tables);
        let mapping = mappings.list().remove(0);
        eventually("the batch to fail twice", || {
            mapping.stats.function_errors.load(Ordering::Relaxed) >= 2
        })
        .await;
        assert_eq!(tables.count("example-table").unwrap(), 0);
        assert!(mapping.dead_letters(None, 10).unwrap().is_empty());

        clock.advance(Duration::from_secs(59));
        let errors = mapping.stats.function_errors.load(Ordering::Relaxed);
        eventually("another failure at 59 s", || {
            mapping.stats.function_errors.load(Ordering::Relaxed) > errors
        })
        .await;
        assert!(mapping.dead_letters(None, 10).unwrap().is_empty());

        clock.advance(Duration::from_secs(2));
        eventually("the dead letter", || {
            !mapping.dead_letters(None, 10).unwrap().is_empty()
        })
        .await;
        let letters = mapping.dead_letters(None, 10).unwrap();
        let (_, letter) = &letters[0];
        assert_eq!(letter.request_context.condition, "RecordAgeExceeded");
        let info = &letter.kinesis_batch_info;
        assert_eq!(info.start_sequence_number, first.sequence_number);
        assert_eq!(info.end_sequence_number, last.sequence_number);
        assert_eq!(info.batch_size, 4);

        // The shard flows again.
        append("{\"message\": \"after\"}").await.unwrap();
        eventually("the next record in the table", || {
            tables.count("example-table").unwrap() == 1
        })
        .await;
        mappings.stop();
        tokio::task::block_in_place(|| streams.shutdown());
    }
}
