//! Stateless workers: spillway's mappings run by several processes over shared remote
//! engines (`--stream-engine kinesis+http://...`, `--table-engine dynamodb+http://...`).
//!
//! A worker keeps nothing of its own that matters: the stream engine holds every
//! record (the ingest route's 200 is the engine's PutRecord answer), the table engine
//! holds the items, and the lease table (`worker::lease`) holds who processes which
//! shard and how far. Workers share the shards of every configured mapping through
//! leases; a worker killed mid-batch leaves its leases to expire and be taken over,
//! and the new holder reads from the last checkpoint. The function's items are written
//! before the checkpoint moves (the engines cannot do both atomically), so a crash
//! between them replays a batch; the built-in function's item ids are derived from the
//! records, so a replay rewrites the same items and the table holds each record once.
//!
//! Each shard runs Lambda's rules of the embedded mappings (`mapping::run_batch`:
//! retries, bisection, partial failures, record age, dead letters); dead letters are
//! kept beside the leases and, for an SQS on-failure destination, sent to the queue
//! engine (`[workers] queue_engine`).

pub mod lease;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use self::lease::{HeldLease, Lease, LeaseError, LeaseTable, Observations, SHARD_END, lease_key};
use crate::config::{Config, MappingConfig, StartingPosition};
use crate::function::{FunctionError, Functions};
use crate::mapping::dead_letter::DeadLetter;
use crate::mapping::{BatchHost, MappingError, MappingStats, Outcome};
use crate::remote::RemoteEngines;
use crate::remote::kinesis::{IteratorStart, RemoteShard};
use crate::storage::WriteOp;
use crate::stream::{Record, now_ms};
use crate::table::Tables;

/// How a worker takes part.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// This worker's name in the lease table (`--worker-id`).
    pub worker_id: String,
    /// The lease table in the table engine.
    pub lease_table: String,
    /// A lease whose counter stands still this long is taken as its holder's death.
    pub lease_duration: Duration,
    /// How often held leases are renewed and the lease table read.
    pub renew_interval: Duration,
    /// How long a caught-up shard waits before reading again.
    pub poll_interval: Duration,
}

/// One configured mapping as a worker runs it.
#[derive(Debug)]
pub struct WorkerMapping {
    /// `{function}@{stream}`: the same on every worker reading the same config.
    pub name: String,
    pub config: MappingConfig,
    pub stream: String,
    pub stream_arn: String,
    pub function_name: String,
    pub function_arn: String,
    pub role_arn: String,
    pub stats: MappingStats,
}

/// A shard this worker processes: its lease and its poller.
struct Holding {
    lease: Arc<HeldLease>,
    poller: tokio::task::AbortHandle,
}

/// This process as one of the workers.
pub struct Worker {
    settings: WorkerSettings,
    engines: RemoteEngines,
    leases: LeaseTable,
    functions: Arc<Functions>,
    /// The configured tables (their ids name them in the function's writes).
    tables: Arc<Tables>,
    region: String,
    mappings: Vec<Arc<WorkerMapping>>,
    held: std::sync::Mutex<HashMap<String, Holding>>,
    /// The lease table as last read.
    snapshot: std::sync::Mutex<Vec<Lease>>,
    coordinator: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Lease cycles that failed since start (`/metrics`).
    cycle_failures: std::sync::atomic::AtomicU64,
    /// Leases whose pollers [`Self::stop`] stopped, for [`Self::shutdown`] to give up.
    released: std::sync::Mutex<Vec<Arc<HeldLease>>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("worker_id", &self.settings.worker_id)
            .finish_non_exhaustive()
    }
}

impl From<LeaseError> for MappingError {
    fn from(e: LeaseError) -> Self {
        match e {
            LeaseError::Lost(key) => Self::LeaseLost(key),
            LeaseError::Remote(e) => Self::Remote(e),
        }
    }
}

/// Backoff after `failures` failed reads in a row: 200 ms doubling, at most 5 s.
fn backoff(failures: u32) -> Duration {
    Duration::from_millis((200u64 << failures.min(5)).min(5000))
}

impl Worker {
    /// Makes sure the engines hold the configured streams, tables and the lease table,
    /// then starts sharing the mappings' shards with the other workers.
    pub async fn start(
        config: &Config,
        engines: RemoteEngines,
        functions: Arc<Functions>,
        tables: Arc<Tables>,
        settings: WorkerSettings,
    ) -> anyhow::Result<Arc<Self>> {
        let mut arns = HashMap::new();
        for s in &config.streams {
            let arn = engines
                .kinesis
                .ensure_stream(&s.name, s.shard_count)
                .await?;
            arns.insert(s.name.clone(), arn);
        }
        for t in &config.tables {
            engines.tables.ensure_table(t).await?;
        }
        engines
            .tables
            .ensure_lease_table(&settings.lease_table)
            .await?;
        let mut mappings = Vec::new();
        for mc in config.mappings.iter().filter(|m| m.enabled) {
            let stream = mc.stream_name().to_owned();
            let Some(function) = functions.get(&mc.function_name) else {
                anyhow::bail!(
                    "mapping of stream {stream}: function `{}` is not declared",
                    mc.function_name
                );
            };
            let stream_arn = match arns.get(&stream) {
                Some(arn) => arn.clone(),
                None => engines.kinesis.ensure_stream(&stream, 1).await?,
            };
            if let Some(destination) = mc.sqs_destination()
                && engines.queues.is_none()
            {
                tracing::warn!(
                    stream,
                    function = mc.function_name,
                    destination,
                    "the mapping's on-failure destination is an SQS queue but this worker has \
                     no queue_engine: its dead letters are kept in the lease table only"
                );
            }
            mappings.push(Arc::new(WorkerMapping {
                name: format!("{}@{stream}", mc.function_name),
                config: mc.clone(),
                stream,
                stream_arn,
                function_name: mc.function_name.clone(),
                function_arn: function.arn.clone(),
                role_arn: function.role_arn.clone(),
                stats: MappingStats::default(),
            }));
        }
        let worker = Arc::new(Self {
            leases: LeaseTable {
                engine: engines.tables.clone(),
                table: settings.lease_table.clone(),
                worker_id: settings.worker_id.clone(),
            },
            settings,
            engines,
            functions,
            tables,
            region: config.region.clone(),
            mappings,
            held: Default::default(),
            snapshot: Default::default(),
            coordinator: Default::default(),
            cycle_failures: Default::default(),
            released: Default::default(),
        });
        tracing::info!(
            worker = %worker.settings.worker_id,
            lease_table = %worker.settings.lease_table,
            mappings = worker.mappings.len(),
            "worker started: sharing shards through leases"
        );
        let task = tokio::spawn(Arc::clone(&worker).coordinate());
        *worker
            .coordinator
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(task);
        Ok(worker)
    }

    /// A clean stop: the coordinator and every poller stop, then each held lease is
    /// given up, so the other workers take the shards at their next cycle rather than
    /// after `lease_duration`. What was in flight is replayed by the next holder.
    pub async fn shutdown(&self) {
        self.stop();
        let held: Vec<Arc<HeldLease>> = self
            .released
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..)
            .collect();
        for lease in held {
            match lease.release(&self.leases).await {
                Ok(()) => tracing::info!(lease = %lease.key, "gave up lease"),
                Err(e) => {
                    tracing::warn!(lease = %lease.key, error = %e, "could not give up lease; it expires instead");
                }
            }
        }
    }

    /// Stops the coordinator and every poller; the leases expire for others to take.
    pub fn stop(&self) {
        if let Some(t) = self
            .coordinator
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            t.abort();
        }
        let mut released = self
            .released
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (_, h) in self.held_map().drain() {
            h.poller.abort();
            released.push(h.lease);
        }
    }

    fn held_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Holding>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Leases held now, and lease cycles failed since start.
    pub fn lease_counts(&self) -> (usize, u64) {
        (
            self.held_map().len(),
            self.cycle_failures.load(Ordering::Relaxed),
        )
    }

    /// The mappings this worker runs.
    pub fn mappings(&self) -> &[Arc<WorkerMapping>] {
        &self.mappings
    }

    /// What `/_spillway/worker` shows: this worker, its leases, every lease as last read.
    pub fn status(&self) -> serde_json::Value {
        let held: Vec<String> = self.held_map().keys().cloned().collect();
        let leases: Vec<serde_json::Value> = self
            .snapshot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|l| {
                serde_json::json!({
                    "leaseKey": l.key,
                    "leaseOwner": l.owner,
                    "leaseCounter": l.counter,
                    "checkpoint": l.checkpoint,
                })
            })
            .collect();
        let mappings: Vec<serde_json::Value> = self
            .mappings
            .iter()
            .map(|m| {
                serde_json::json!({
                    "name": m.name,
                    "invocations": m.stats.invocations.load(Ordering::Relaxed),
                    "records_processed": m.stats.records_processed.load(Ordering::Relaxed),
                    "function_errors": m.stats.function_errors.load(Ordering::Relaxed),
                    "records_dead_lettered": m.stats.records_dead_lettered.load(Ordering::Relaxed),
                })
            })
            .collect();
        serde_json::json!({
            "worker_id": self.settings.worker_id,
            "lease_table": self.settings.lease_table,
            "held": held,
            "leases": leases,
            "mappings": mappings,
        })
    }

    /// The lease loop: every `renew_interval`, renew, create leases for new shards,
    /// and take what this worker's share allows.
    async fn coordinate(self: Arc<Self>) {
        let mut observations = Observations::default();
        let mut failures = 0u32;
        loop {
            match self.cycle(&mut observations).await {
                Ok(()) => failures = 0,
                Err(e) => {
                    failures += 1;
                    self.cycle_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(worker = %self.settings.worker_id, error = %e, "lease cycle failed; held leases stop being processed if it keeps failing");
                }
            }
            let wait = if failures == 0 {
                self.settings.renew_interval
            } else {
                backoff(failures).min(self.settings.renew_interval)
            };
            tokio::time::sleep(wait).await;
        }
    }

    async fn cycle(self: &Arc<Self>, observations: &mut Observations) -> Result<(), LeaseError> {
        // Renew first: a slow cycle must not let our own leases expire.
        let held: Vec<Arc<HeldLease>> = self
            .held_map()
            .values()
            .map(|h| Arc::clone(&h.lease))
            .collect();
        for lease in held {
            match lease.renew(&self.leases).await {
                Ok(()) => {}
                Err(LeaseError::Lost(_)) => {
                    // Another worker took it (to even out the shares, or because this one
                    // stopped renewing in time): the shard goes on there.
                    tracing::info!(worker = %self.settings.worker_id, lease = %lease.key, "lease taken over by another worker; stopped processing its shard");
                    if let Some(h) = self.held_map().remove(&lease.key) {
                        h.poller.abort();
                    }
                }
                Err(e) => return Err(e),
            }
        }
        // Pollers that finished their shard leave.
        self.held_map().retain(|_, h| !h.poller.is_finished());
        let mut leases = self.leases.all().await?;
        // New shards get their lease.
        let mut created = false;
        for m in &self.mappings {
            let shards = self.engines.kinesis.list_shards(&m.stream).await?;
            for shard in &shards {
                let key = lease_key(&m.name, &shard.shard_id);
                if !leases.iter().any(|l| l.key == key) {
                    let start = initial_checkpoint(&m.config, shard);
                    if self.leases.create(&key, &start, &shard.parents).await? {
                        tracing::info!(lease = %key, checkpoint = %start, "created lease");
                    }
                    created = true;
                }
            }
        }
        if created {
            leases = self.leases.all().await?;
        }
        let now = Instant::now();
        observations.note(&leases, now);
        let mine: Vec<String> = self.held_map().keys().cloned().collect();
        // What this worker holds counts as its own, whatever the table said a moment ago.
        let view: Vec<Lease> = leases
            .iter()
            .map(|l| {
                let mut l = l.clone();
                if mine.contains(&l.key) {
                    l.owner = self.settings.worker_id.clone();
                }
                l
            })
            .collect();
        for lease in lease::choose(
            &view,
            observations,
            &self.settings.worker_id,
            now,
            self.settings.lease_duration,
        ) {
            self.take(&lease).await?;
        }
        *self
            .snapshot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = leases;
        Ok(())
    }

    /// Takes one lease and starts its poller.
    async fn take(self: &Arc<Self>, lease: &Lease) -> Result<(), LeaseError> {
        let Some((mapping, shard_id)) = self.mappings.iter().find_map(|m| {
            lease
                .key
                .strip_prefix(&format!("{}/", m.name))
                .map(|shard| (Arc::clone(m), shard.to_owned()))
        }) else {
            return Ok(());
        };
        let sent = Instant::now();
        let counter = match self.leases.take(lease).await {
            Ok(c) => c,
            Err(LeaseError::Lost(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        tracing::info!(
            worker = %self.settings.worker_id,
            lease = %lease.key,
            from = %lease.owner,
            checkpoint = %lease.checkpoint,
            "took lease"
        );
        let held = Arc::new(HeldLease::new(
            lease,
            &shard_id,
            counter,
            sent,
            self.settings.lease_duration,
        ));
        let poller =
            tokio::spawn(Arc::clone(self).poll(mapping, Arc::clone(&held), lease.parents.clone()));
        self.held_map().insert(
            lease.key.clone(),
            Holding {
                lease: held,
                poller: poller.abort_handle(),
            },
        );
        Ok(())
    }

    /// Whether every parent of a shard has been processed to its end (or is gone).
    fn parents_done(&self, mapping: &WorkerMapping, parents: &[String]) -> bool {
        let snapshot = self
            .snapshot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        parents.iter().all(|p| {
            let key = lease_key(&mapping.name, p);
            snapshot
                .iter()
                .find(|l| l.key == key)
                .is_none_or(Lease::finished)
        })
    }

    /// Processes one leased shard from its checkpoint until the lease is lost or the
    /// shard is read to its end.
    async fn poll(
        self: Arc<Self>,
        mapping: Arc<WorkerMapping>,
        lease: Arc<HeldLease>,
        parents: Vec<String>,
    ) {
        while !self.parents_done(&mapping, &parents) {
            if lease.lost() {
                return;
            }
            tokio::time::sleep(self.settings.poll_interval).await;
        }
        let mut failures = 0u32;
        let mut next_counter = 1u64;
        let pf = mapping.config.parallelization_factor.max(1) as usize;
        let batch_size = mapping.config.batch_size.max(1) as usize;
        let want = (batch_size * pf).min(10_000) as u32;
        let oldest_pending = mapping.stats.oldest_pending(&lease.shard_id);
        'from_checkpoint: loop {
            let checkpoint = lease.checkpoint();
            if checkpoint == SHARD_END {
                return;
            }
            let start = iterator_start(&checkpoint);
            let mut iterator = match self
                .engines
                .kinesis
                .shard_iterator(&mapping.stream, &lease.shard_id, &start)
                .await
            {
                Ok(i) => i,
                Err(e) => {
                    failures += 1;
                    tracing::warn!(shard = %lease.shard_id, error = %e, "worker could not position its reader; trying again");
                    tokio::time::sleep(backoff(failures)).await;
                    continue;
                }
            };
            loop {
                if lease.lost() {
                    return;
                }
                if !lease.valid() {
                    // Not renewed lately (the table engine unreachable?): others may take
                    // it over soon, so invoke nothing until a renewal succeeds.
                    tokio::time::sleep(self.settings.poll_interval).await;
                    continue;
                }
                let read = match self.read_round(&mapping, &lease, &iterator, want).await {
                    Ok(r) => r,
                    Err(e) => {
                        failures += 1;
                        if e.kind() != Some("ExpiredIteratorException") {
                            tracing::warn!(shard = %lease.shard_id, error = %e, "worker read failed; reading again from the checkpoint");
                        }
                        tokio::time::sleep(backoff(failures)).await;
                        continue 'from_checkpoint;
                    }
                };
                if lease.lost() {
                    return;
                }
                failures = 0;
                let caught_up = read.records.is_empty();
                if caught_up {
                    oldest_pending.store(0, Ordering::Relaxed);
                } else {
                    let records: Vec<Record> = read
                        .records
                        .into_iter()
                        .map(|r| {
                            let counter = next_counter;
                            next_counter += 1;
                            Record {
                                counter,
                                sequence_number: r.sequence_number,
                                partition_key: r.partition_key,
                                data: r.data,
                                arrival_ms: r.arrival_ms,
                            }
                        })
                        .collect();
                    oldest_pending.store(records[0].arrival_ms.max(1), Ordering::Relaxed);
                    let round = Round {
                        worker: &self,
                        mapping: &mapping,
                        lease: &lease,
                        first_counter: records[0].counter,
                        sequence_numbers: records
                            .iter()
                            .map(|r| r.sequence_number.clone())
                            .collect(),
                    };
                    let done = if pf == 1 {
                        crate::mapping::run_batch(&round, records, true).await
                    } else {
                        round.run_lanes(records, pf, batch_size).await
                    };
                    if let Err(e) = done {
                        if lease.lost() {
                            tracing::info!(shard = %lease.shard_id, "lease lost mid-batch; the new holder replays from the checkpoint");
                            return;
                        }
                        failures += 1;
                        tracing::warn!(shard = %lease.shard_id, error = %e, "worker could not settle a batch; reading again from the checkpoint");
                        tokio::time::sleep(backoff(failures)).await;
                        continue 'from_checkpoint;
                    }
                }
                match read.next_iterator {
                    None => {
                        // A closed shard read to its end: its children may go.
                        match lease.set_checkpoint(&self.leases, SHARD_END).await {
                            Ok(()) => {
                                tracing::info!(shard = %lease.shard_id, mapping = %mapping.name, "shard processed to its end");
                                mapping.stats.forget_shard(&lease.shard_id);
                                return;
                            }
                            Err(e) => {
                                tracing::warn!(shard = %lease.shard_id, error = %e, "could not mark the shard finished");
                                tokio::time::sleep(backoff(1)).await;
                                continue 'from_checkpoint;
                            }
                        }
                    }
                    Some(next) => iterator = next,
                }
                if caught_up {
                    tokio::time::sleep(self.settings.poll_interval).await;
                }
            }
        }
    }

    /// One round's records: up to `want` from `iterator`; with a batching window
    /// (MaximumBatchingWindowInSeconds), reading on until `want` records are there or
    /// the window has passed since the first of them arrived, as Lambda waits.
    async fn read_round(
        &self,
        mapping: &WorkerMapping,
        lease: &HeldLease,
        iterator: &str,
        want: u32,
    ) -> Result<crate::remote::kinesis::RemoteRead, crate::remote::RemoteError> {
        let mut round = self.engines.kinesis.get_records(iterator, want).await?;
        let window_ms = u64::from(mapping.config.maximum_batching_window_in_seconds) * 1000;
        let Some(first) = round.records.first() else {
            return Ok(round);
        };
        let deadline = first.arrival_ms + window_ms;
        while window_ms > 0 && round.records.len() < want as usize && !lease.lost() {
            let (Some(next), now) = (round.next_iterator.clone(), now_ms()) else {
                break;
            };
            if now >= deadline {
                break;
            }
            let wait = Duration::from_millis(deadline - now).min(self.settings.poll_interval);
            tokio::time::sleep(wait).await;
            let more_wanted = want - round.records.len() as u32;
            let more = self.engines.kinesis.get_records(&next, more_wanted).await?;
            round.records.extend(more.records);
            round.next_iterator = more.next_iterator;
            round.millis_behind_latest = more.millis_behind_latest;
        }
        Ok(round)
    }

    /// Writes the function's items to the table engine (puts only: the built-in
    /// function writes nothing else).
    async fn write_items(&self, writes: Vec<WriteOp>) -> Result<(), MappingError> {
        let mut by_table: HashMap<u32, Vec<serde_json::Value>> = HashMap::new();
        for op in writes {
            match op {
                WriteOp::PutItem { table_id, item, .. } => {
                    let item = serde_json::from_slice(&item).map_err(|e| {
                        MappingError::Config(format!("an item the function wrote is not JSON: {e}"))
                    })?;
                    by_table.entry(table_id).or_default().push(item);
                }
                other => {
                    return Err(MappingError::Config(format!(
                        "a worker writes only items to remote tables, not {other:?}"
                    )));
                }
            }
        }
        for (table_id, items) in by_table {
            let Some(table) = self
                .tables
                .all()
                .into_iter()
                .find(|t| t.table_id == table_id)
            else {
                return Err(MappingError::Config(format!("no table of id {table_id}")));
            };
            self.engines.tables.put_items(&table.name, items).await?;
        }
        Ok(())
    }
}

/// The first checkpoint of a shard's lease: a shard born of a reshard from its start
/// (its parents are read first); else the mapping's StartingPosition, LATEST pinned to
/// the time the lease was created so that a worker taking it over later does not skip
/// what arrived in between.
fn initial_checkpoint(config: &MappingConfig, shard: &RemoteShard) -> String {
    if !shard.parents.is_empty() {
        return "TRIM_HORIZON".into();
    }
    match config.starting_position {
        StartingPosition::TrimHorizon => "TRIM_HORIZON".into(),
        StartingPosition::Latest => format!("AT_TIMESTAMP:{}", now_ms()),
        StartingPosition::AtTimestamp => format!(
            "AT_TIMESTAMP:{}",
            (config.starting_position_timestamp.unwrap_or(0.0) * 1000.0) as u64
        ),
    }
}

/// Where to read from a checkpoint as the lease table holds it.
fn iterator_start(checkpoint: &str) -> IteratorStart {
    match checkpoint {
        "TRIM_HORIZON" => IteratorStart::TrimHorizon,
        "LATEST" => IteratorStart::Latest,
        _ => match checkpoint.strip_prefix("AT_TIMESTAMP:") {
            Some(ms) => IteratorStart::AtTimestamp(ms.parse().unwrap_or(0)),
            None => IteratorStart::AfterSequenceNumber(checkpoint.to_owned()),
        },
    }
}

/// One read of a leased shard, as Lambda's rules see it ([`BatchHost`]): records carry
/// counters local to this worker, and a checkpoint "at counter n" is written as the
/// sequence number of the record before it.
struct Round<'a> {
    worker: &'a Arc<Worker>,
    mapping: &'a Arc<WorkerMapping>,
    lease: &'a Arc<HeldLease>,
    first_counter: u64,
    sequence_numbers: Vec<String>,
}

impl Round<'_> {
    /// The sequence number a checkpoint at counter `next` stands for; None when
    /// nothing of this round is processed yet.
    fn processed_through(&self, next: u64) -> Option<&str> {
        let index = next.checked_sub(self.first_counter)?.checked_sub(1)?;
        self.sequence_numbers
            .get(usize::try_from(index).ok()?)
            .map(String::as_str)
    }

    /// ParallelizationFactor > 1: lanes by partition key, each in order, checkpoint
    /// after the whole round.
    async fn run_lanes(
        &self,
        records: Vec<Record>,
        pf: usize,
        batch_size: usize,
    ) -> Result<(), MappingError> {
        let round_end = records.last().map_or(self.first_counter, |r| r.counter + 1);
        let runs = crate::mapping::lanes(records, pf)
            .into_iter()
            .map(|lane| async move {
                for chunk in lane.chunks(batch_size) {
                    crate::mapping::run_batch(self, chunk.to_vec(), false).await?;
                }
                Ok::<(), MappingError>(())
            });
        for r in futures_util::future::join_all(runs).await {
            r?;
        }
        self.settle(Vec::new(), Some(round_end)).await
    }
}

impl BatchHost for Round<'_> {
    fn config(&self) -> &MappingConfig {
        &self.mapping.config
    }

    fn now_ms(&self) -> u64 {
        now_ms()
    }

    async fn invoke(&self, batch: &[Record]) -> (Outcome, Vec<WriteOp>) {
        let payload = crate::mapping::kinesis_event(
            batch,
            &self.lease.shard_id,
            &self.mapping.stream_arn,
            &self.mapping.role_arn,
            &self.worker.region,
        );
        crate::mapping::invoke_function(
            &self.worker.functions,
            &self.mapping.config,
            &self.mapping.function_arn,
            &self.mapping.stats,
            payload,
            batch,
        )
        .await
    }

    async fn settle(&self, writes: Vec<WriteOp>, next: Option<u64>) -> Result<(), MappingError> {
        if !self.lease.valid() {
            return Err(MappingError::LeaseLost(self.lease.key.clone()));
        }
        self.worker.write_items(writes).await?;
        let Some(sequence_number) = next.and_then(|n| self.processed_through(n)) else {
            return Ok(());
        };
        Ok(self
            .lease
            .set_checkpoint(&self.worker.leases, sequence_number)
            .await?)
    }

    async fn dead_letter(
        &self,
        batch: &[Record],
        condition: &str,
        invokes: u64,
        next: Option<u64>,
    ) -> Result<(), MappingError> {
        let Some(first) = batch.first() else {
            return Ok(());
        };
        let letter = DeadLetter::for_batch(
            &self.mapping.function_arn,
            condition,
            invokes,
            now_ms(),
            &self.lease.shard_id,
            batch,
            &self.mapping.stream_arn,
        );
        tracing::warn!(
            shard = %self.lease.shard_id,
            mapping = %self.mapping.name,
            condition,
            records = batch.len(),
            start = %first.sequence_number,
            "batch dead-lettered (kept in the lease table)"
        );
        let record = serde_json::to_string(&letter).expect("dead letters serialize");
        self.worker
            .leases
            .put_dead_letter(&self.lease.key, &first.sequence_number, &record)
            .await?;
        if let (Some(destination), Some(queues)) = (
            self.mapping.config.sqs_destination(),
            &self.worker.engines.queues,
        ) && let Err(e) = queues.send(destination, &record).await
        {
            self.mapping
                .stats
                .destination_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                mapping = %self.mapping.name,
                destination,
                error = %e,
                "on-failure destination did not take the record; the dead letter stays in the lease table"
            );
        }
        self.mapping
            .stats
            .records_dead_lettered
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.settle(Vec::new(), next).await
    }

    fn log_failure(&self, e: &FunctionError, batch: &[Record], attempts: u32) {
        crate::mapping::log_failure(
            &self.mapping.stats,
            &self.mapping.name,
            &self.mapping.function_name,
            e,
            &self.lease.shard_id,
            batch,
            attempts,
        );
    }

    fn stats(&self) -> &MappingStats {
        &self.mapping.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_name_where_reading_resumes() {
        assert_eq!(iterator_start("TRIM_HORIZON"), IteratorStart::TrimHorizon);
        assert_eq!(
            iterator_start("AT_TIMESTAMP:1500"),
            IteratorStart::AtTimestamp(1500)
        );
        assert_eq!(
            iterator_start("49590338271490256608559692538361571095921575989136588898"),
            IteratorStart::AfterSequenceNumber(
                "49590338271490256608559692538361571095921575989136588898".into()
            )
        );
    }
}
