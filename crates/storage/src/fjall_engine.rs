//! The embedded storage engine: fjall, an LSM-tree key-value store, in the data dir.
//!
//! Why fjall: appends are sequential key inserts (an LSM's best case), a record and its
//! shard tip go in one atomic write batch, and one journal fdatasync makes every batch
//! written before it durable, which is what group commit needs. Key layout: [`super::keys`].
//!
//! # Write failures (disk full, fsync errors)
//!
//! fjall marks its database *poisoned* after any failed journal write or fsync and then
//! refuses every later write; only a reopen clears it. That is the right reflex (the
//! PostgreSQL "fsyncgate" lesson: after a failed fsync the page cache may hold pages the
//! disk never got, so retrying the fsync and carrying on would acknowledge data that is
//! not there), but it must not need an operator. So this engine:
//!
//! 1. answers the failed write, and every write after it, with an error (the edges say
//!    503 with `Retry-After`); nothing is acknowledged. Reads keep using the poisoned
//!    database, whose reads still work;
//! 2. at most every [`REOPEN_INTERVAL`], once the file system has [`REOPEN_MIN_FREE`]
//!    bytes free, reopens the database in place: waits for the operations in flight,
//!    drops it (its background workers stop), and opens it again, which replays the
//!    journal and drops a torn tail;
//! 3. then flushes every keyspace's memtable to new table files and lets the old
//!    journals go, so that no later acknowledgement depends on a journal file whose
//!    failed writes might still be sitting in the page cache: what was read back is
//!    written anew, and durably.
//!
//! A failed fsync is never retried as if it had worked: the write that met it was not
//! acknowledged, and the data it covered is only trusted again once step 3 wrote it out.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use fjall::{AbstractTree, Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use super::keys;
use bytes::Bytes;

use super::{
    BatchWriter, EngineHealth, MappingCatalogEntry, MappingStore, ResourceStore, ScanFrom,
    ShardKey, ShardTip, StorageError, StoreResult, StoredRecord, StreamCatalogEntry, StreamStore,
    SyncMode, TableCatalogEntry, TableStore, WriteOp,
};

/// Block cache for reads of recent records.
const CACHE_BYTES: u64 = 32 << 20;
/// One memtable; rotated and flushed to a table file when full.
const MEMTABLE_BYTES: u64 = 16 << 20;
/// The mappings keyspace holds a few keys rewritten often (checkpoints): small memtable.
const MAPPING_MEMTABLE_BYTES: u64 = 4 << 20;
/// How often the engine checks whether flushed memtables are still held in memory.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(1);
/// Journal kept before memtables are forced to disk.
const JOURNAL_BYTES: u64 = 256 << 20;
/// Least time between two attempts to reopen a failed engine.
pub const REOPEN_INTERVAL: Duration = Duration::from_millis(500);
/// Free bytes the file system must have before a failed engine is reopened (a reopen
/// that meets a still-full disk only fails again).
pub const REOPEN_MIN_FREE: u64 = 4 << 20;
/// Longest wait for operations in flight before a reopen gives up for now.
const DRAIN_WAIT: Duration = Duration::from_secs(5);

/// One open fjall database and its keyspaces.
struct Engine {
    db: Database,
    streams: Keyspace,
    tables: Keyspace,
    mappings: Keyspace,
    /// A full memtable was rotated since fjall last dropped its old versions (see
    /// [`Engine::bound_memtable`]).
    stale_versions: AtomicBool,
}

impl Engine {
    fn open(dir: &Path) -> StoreResult<Self> {
        let db = Database::builder(dir.join("fjall"))
            // We decide when the journal reaches the OS and the disk (see `append`).
            .manual_journal_persist(true)
            // Memory bounds: a spike goes to disk, not to RAM. Block cache, memtable
            // size (below), and the journal kept before a forced flush.
            .cache_size(CACHE_BYTES)
            .max_journaling_size(JOURNAL_BYTES)
            // Two background workers: with more than one, fjall keeps the first for
            // flushes, so a long compaction never holds up the flush that writers wait
            // for once 4 memtables are sealed (see `bound_memtable`). One worker halved
            // the throughput of a spike of 100 KB POSTs.
            .worker_threads(2)
            .open()
            .map_err(io)?;
        let streams = db
            .keyspace("streams", || {
                KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
            })
            .map_err(io)?;
        let tables = db
            .keyspace("tables", || {
                KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
            })
            .map_err(io)?;
        let mappings = db
            .keyspace("mappings", || {
                KeyspaceCreateOptions::default().max_memtable_size(MAPPING_MEMTABLE_BYTES)
            })
            .map_err(io)?;
        Ok(Self {
            db,
            streams,
            tables,
            mappings,
            stale_versions: AtomicBool::new(false),
        })
    }

    fn persist(&self, sync: SyncMode) -> StoreResult<()> {
        let mode = match sync {
            SyncMode::SyncData => PersistMode::SyncData,
            SyncMode::Os => PersistMode::Buffer,
        };
        self.db.persist(mode).map_err(io)
    }

    /// Rotates `ks`'s memtable once it is full, here on the writer's thread.
    ///
    /// fjall only *requests* a rotation from its background worker, which is busy with
    /// flushes and compactions under a spike: meanwhile the active memtable keeps
    /// growing (hundreds of MB under 100 KB POSTs at full speed), and fjall's write halt
    /// (4 sealed memtables) never triggers. Rotating here keeps a keyspace's memtables
    /// within 1 active + 4 sealed of `limit` bytes; the writes past that wait for
    /// flushes, as fjall intends.
    fn bound_memtable(&self, ks: &Keyspace, limit: u64) -> StoreResult<()> {
        if ks.tree.active_memtable().size() > limit && ks.rotate_memtable().map_err(io)? {
            self.stale_versions.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Lets fjall free memtables it has already flushed.
    ///
    /// fjall keeps old versions of each tree (for snapshots) and only drops them when
    /// a memtable rotates; a flushed memtable stays in memory as long as an old version
    /// refers to it. After a spike the last flushed memtables (up to 4 x 16 MiB) would
    /// be held until the next spike; once the flushes are done, one more rotation (of
    /// whatever small memtable is active) drops those versions.
    fn release_flushed_memtables(&self) -> StoreResult<()> {
        if !self.stale_versions.load(Ordering::Acquire) || self.db.outstanding_flushes() > 0 {
            return Ok(());
        }
        let keyspaces = [&self.streams, &self.tables, &self.mappings];
        if keyspaces.iter().any(|ks| ks.sealed_memtable_count() > 0) {
            return Ok(());
        }
        // A rotation of any keyspace drops the old versions of all of them; an empty
        // memtable does not rotate, so try each until one does.
        for ks in keyspaces {
            if ks.rotate_memtable().map_err(io)? {
                self.stale_versions.store(false, Ordering::Release);
                break;
            }
        }
        Ok(())
    }

    /// Writes every memtable out to table files and makes the journal durable: after a
    /// reopen, nothing depends on the old journal files any more.
    fn rewrite_memtables(&self) -> StoreResult<()> {
        for ks in [&self.streams, &self.tables, &self.mappings] {
            ks.rotate_memtable_and_wait().map_err(io)?;
        }
        self.persist(SyncMode::SyncData)
    }
}

/// The fjall-backed implementation of the storage traits.
pub struct FjallStore {
    dir: PathBuf,
    /// The open engine; `None` only in the middle of a reopen.
    engine: RwLock<Option<Arc<Engine>>>,
    /// Set by a failed write: writes are refused until a reopen succeeds.
    failed: AtomicBool,
    last_error: Mutex<Option<String>>,
    last_attempt: Mutex<Option<Instant>>,
    reopen_lock: Mutex<()>,
    reopens: AtomicU64,
    write_failures: AtomicU64,
    /// Serialises stream-id allocation (read-modify-write of one key).
    id_lock: Mutex<()>,
}

impl std::fmt::Debug for FjallStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallStore").finish_non_exhaustive()
    }
}

fn io(e: fjall::Error) -> StorageError {
    if let fjall::Error::Io(ref ioe) = e {
        let text = ioe.to_string();
        return if ioe.raw_os_error() == Some(28) {
            StorageError::Full(text)
        } else {
            StorageError::Io(text)
        };
    }
    let text = e.to_string();
    if text.contains("No space left") {
        StorageError::Full(text)
    } else {
        StorageError::Io(text)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs [`Engine::release_flushed_memtables`] every [`HOUSEKEEPING_INTERVAL`] until
/// the engine is dropped (it holds the engine only for the check, so a reopen can
/// still take it).
fn start_housekeeping(engine: &Arc<Engine>) {
    let engine = Arc::downgrade(engine);
    let spawned = std::thread::Builder::new()
        .name("spillway-storage".into())
        .spawn(move || {
            loop {
                std::thread::sleep(HOUSEKEEPING_INTERVAL);
                let Some(e) = engine.upgrade() else { return };
                if let Err(err) = e.release_flushed_memtables() {
                    tracing::debug!(error = %err, "memtable release failed");
                }
            }
        });
    if let Err(err) = spawned {
        tracing::warn!(error = %err, "no storage housekeeping thread");
    }
}

/// Bytes free for unprivileged writers on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

impl FjallStore {
    /// Opens (or creates) the engine in `dir`.
    pub fn open(dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::Io(e.to_string()))?;
        let engine = Arc::new(Engine::open(dir)?);
        start_housekeeping(&engine);
        Ok(Self {
            dir: dir.to_owned(),
            engine: RwLock::new(Some(engine)),
            failed: AtomicBool::new(false),
            last_error: Mutex::new(None),
            last_attempt: Mutex::new(None),
            reopen_lock: Mutex::new(()),
            reopens: AtomicU64::new(0),
            write_failures: AtomicU64::new(0),
            id_lock: Mutex::new(()),
        })
    }

    /// The open engine, for reads (a failed engine still reads).
    fn engine(&self) -> StoreResult<Arc<Engine>> {
        self.engine
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| StorageError::Io("storage is reopening after a write failure".into()))
    }

    /// Runs a write against the engine. After a failure, writes are refused until the
    /// engine has been reopened (see the module docs); a failure marks it for reopening.
    fn write<T>(&self, f: impl FnOnce(&Engine) -> StoreResult<T>) -> StoreResult<T> {
        if self.failed.load(Ordering::Acquire) {
            self.try_recover();
            if self.failed.load(Ordering::Acquire) {
                let last = lock(&self.last_error).clone().unwrap_or_default();
                let message = format!("writes are suspended after a failed write ({last})");
                return Err(if last.contains("No space left") {
                    StorageError::Full(message)
                } else {
                    StorageError::Io(message)
                });
            }
        }
        let engine = self.engine()?;
        let result = f(&engine);
        if let Err(StorageError::Full(m) | StorageError::Io(m)) = &result {
            self.write_failures.fetch_add(1, Ordering::Relaxed);
            if !self.failed.swap(true, Ordering::AcqRel) {
                tracing::error!(
                    error = %m,
                    "storage write failed; writes answer 503 until the engine is reopened"
                );
            }
            *lock(&self.last_error) = Some(m.clone());
        }
        result
    }

    /// Reopens a failed engine in place when it is time and there is room; clears the
    /// failure on success. Cheap when nothing failed.
    pub fn try_recover(&self) {
        if !self.failed.load(Ordering::Acquire) {
            return;
        }
        let Ok(_reopening) = self.reopen_lock.try_lock() else {
            return;
        };
        {
            let mut last = lock(&self.last_attempt);
            if last.is_some_and(|t| t.elapsed() < REOPEN_INTERVAL) {
                return;
            }
            *last = Some(Instant::now());
        }
        if free_bytes(&self.dir).is_some_and(|free| free < REOPEN_MIN_FREE) {
            return;
        }
        match self.reopen() {
            Ok(()) => {
                self.reopens.fetch_add(1, Ordering::Relaxed);
                *lock(&self.last_error) = None;
                self.failed.store(false, Ordering::Release);
                tracing::warn!("storage reopened after a write failure; writes resume");
            }
            Err(StorageError::Full(m) | StorageError::Io(m) | StorageError::Corrupt(m)) => {
                tracing::warn!(error = %m, "storage reopen failed; will retry");
                *lock(&self.last_error) = Some(m);
            }
        }
    }

    /// Drops the engine once no operation uses it, opens it again and rewrites its
    /// memtables (module docs, steps 2 and 3).
    fn reopen(&self) -> StoreResult<()> {
        let mut slot = self
            .engine
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(mut old) = slot.take() {
            let deadline = Instant::now() + DRAIN_WAIT;
            loop {
                match Arc::try_unwrap(old) {
                    // Dropping the last handle stops fjall's workers and frees its lock.
                    Ok(engine) => {
                        drop(engine);
                        break;
                    }
                    Err(still_shared) if Instant::now() < deadline => {
                        old = still_shared;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(still_shared) => {
                        *slot = Some(still_shared);
                        return Err(StorageError::Io(
                            "operations still running; reopen postponed".into(),
                        ));
                    }
                }
            }
        }
        let engine = Arc::new(Engine::open(&self.dir)?);
        start_housekeeping(&engine);
        *slot = Some(Arc::clone(&engine));
        drop(slot);
        engine.rewrite_memtables()
    }

    /// Allocates the next id of the counter at `key` in the keyspace `ks` picks.
    fn allocate_id(&self, ks: fn(&Engine) -> &Keyspace, key: [u8; 1]) -> StoreResult<u32> {
        let _g = lock(&self.id_lock);
        self.write(|e| {
            let ks = ks(e);
            let next = match ks.get(key).map_err(io)? {
                Some(v) => u32::from_be_bytes(
                    v.as_ref()
                        .try_into()
                        .map_err(|_| StorageError::Corrupt("id counter".into()))?,
                ),
                None => 0,
            };
            ks.insert(key, (next + 1).to_be_bytes()).map_err(io)?;
            e.persist(SyncMode::SyncData)?;
            Ok(next)
        })
    }

    /// Every JSON value under a one-byte prefix.
    fn load_json<T: serde::de::DeserializeOwned>(
        &self,
        ks: fn(&Engine) -> &Keyspace,
        prefix: u8,
    ) -> StoreResult<Vec<T>> {
        let e = self.engine()?;
        let mut out = Vec::new();
        for guard in ks(&e).prefix([prefix]) {
            let (_, v) = guard.into_inner().map_err(io)?;
            out.push(
                serde_json::from_slice(&v)
                    .map_err(|e| StorageError::Corrupt(format!("catalog entry: {e}")))?,
            );
        }
        Ok(out)
    }

    fn put_json<T: serde::Serialize>(
        &self,
        ks: fn(&Engine) -> &Keyspace,
        key: &[u8],
        value: &T,
    ) -> StoreResult<()> {
        let json = serde_json::to_vec(value).expect("catalog entries serialize");
        self.write(|e| {
            ks(e).insert(key, json).map_err(io)?;
            e.persist(SyncMode::SyncData)
        })
    }

    /// Whether writes work now, and what failed if not (`/_spillway/health`).
    pub fn engine_health(&self) -> EngineHealth {
        self.try_recover();
        EngineHealth {
            writable: !self.failed.load(Ordering::Acquire),
            last_error: lock(&self.last_error).clone(),
            write_failures: self.write_failures.load(Ordering::Relaxed),
            reopens: self.reopens.load(Ordering::Relaxed),
        }
    }
}

fn streams_ks(e: &Engine) -> &Keyspace {
    &e.streams
}
fn tables_ks(e: &Engine) -> &Keyspace {
    &e.tables
}
fn mappings_ks(e: &Engine) -> &Keyspace {
    &e.mappings
}

impl StreamStore for FjallStore {
    fn load_catalog(&self) -> StoreResult<Vec<StreamCatalogEntry>> {
        self.load_json(streams_ks, keys::STREAM_CATALOG)
    }

    fn allocate_stream_id(&self) -> StoreResult<u32> {
        self.allocate_id(streams_ks, keys::next_stream_id_key())
    }

    fn put_stream(&self, entry: &StreamCatalogEntry) -> StoreResult<()> {
        self.put_json(streams_ks, &keys::catalog_key(entry.stream_id), entry)
    }

    fn load_tip(&self, shard: ShardKey) -> StoreResult<Option<ShardTip>> {
        self.engine()?
            .streams
            .get(keys::tip_key(shard))
            .map_err(io)?
            .map(|v| keys::decode_tip(&v))
            .transpose()
    }

    fn append(
        &self,
        records: &[(ShardKey, StoredRecord)],
        tips: &[(ShardKey, ShardTip)],
        sync: SyncMode,
    ) -> StoreResult<()> {
        self.write(|e| {
            let mut batch = e.db.batch();
            for (shard, r) in records {
                batch.insert(
                    &e.streams,
                    keys::record_key(*shard, r.counter),
                    keys::encode_record_value(r),
                );
            }
            for (shard, tip) in tips {
                batch.insert(&e.streams, keys::tip_key(*shard), keys::encode_tip(*tip));
            }
            batch.commit().map_err(io)?;
            e.persist(sync)?;
            e.bound_memtable(&e.streams, MEMTABLE_BYTES)
        })
    }

    fn read(
        &self,
        shard: ShardKey,
        from: u64,
        until: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> StoreResult<Vec<StoredRecord>> {
        if from >= until || max_records == 0 {
            return Ok(Vec::new());
        }
        let e = self.engine()?;
        let start = keys::record_key(shard, from);
        let end = keys::record_key(shard, until);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for guard in e.streams.range(start..end) {
            let (k, v) = guard.into_inner().map_err(io)?;
            let counter = keys::record_key_counter(&k)?;
            let r = keys::decode_record_value(counter, &v)?;
            bytes += r.data.len() + r.partition_key.len();
            out.push(r);
            if out.len() >= max_records || bytes >= max_bytes {
                break;
            }
        }
        Ok(out)
    }

    fn first_counter(&self, shard: ShardKey) -> StoreResult<Option<u64>> {
        let e = self.engine()?;
        match e.streams.prefix(keys::record_prefix(shard)).next() {
            Some(guard) => Ok(Some(keys::record_key_counter(&guard.key().map_err(io)?)?)),
            None => Ok(None),
        }
    }

    fn delete_stream(&self, entry: &StreamCatalogEntry) -> StoreResult<()> {
        // Catalog entry first: once it is gone the stream is gone, even if a crash
        // interrupts the deletion of its records (they are unreachable, under an id
        // that is never handed out again).
        self.write(|e| {
            e.streams
                .remove(keys::catalog_key(entry.stream_id))
                .map_err(io)?;
            e.persist(SyncMode::SyncData)
        })?;
        for s in &entry.shards {
            let shard = ShardKey {
                stream_id: entry.stream_id,
                shard_index: s.index,
            };
            self.trim(shard, u64::MAX)?;
            self.write(|e| e.streams.remove(keys::tip_key(shard)).map_err(io))?;
        }
        self.write(|e| e.persist(SyncMode::Os))
    }

    fn trim(&self, shard: ShardKey, cutoff_ms: u64) -> StoreResult<u64> {
        let mut removed = 0u64;
        loop {
            // Delete in bounded batches so a long backlog never builds one huge batch.
            let (n, done) = self.write(|e| {
                let mut batch = e.db.batch();
                let mut n = 0;
                let mut done = true;
                for guard in e.streams.prefix(keys::record_prefix(shard)) {
                    let (k, v) = guard.into_inner().map_err(io)?;
                    let counter = keys::record_key_counter(&k)?;
                    if keys::decode_record_value(counter, &v)?.arrival_ms >= cutoff_ms {
                        break;
                    }
                    batch.remove(&e.streams, k);
                    n += 1;
                    if n == 10_000 {
                        done = false;
                        break;
                    }
                }
                if n > 0 {
                    batch.commit().map_err(io)?;
                    e.persist(SyncMode::Os)?;
                }
                Ok((n, done))
            })?;
            removed += n;
            if n == 0 || done {
                break;
            }
        }
        Ok(removed)
    }

    fn health(&self) -> EngineHealth {
        self.engine_health()
    }
}

impl TableStore for FjallStore {
    fn load_tables(&self) -> StoreResult<Vec<TableCatalogEntry>> {
        self.load_json(tables_ks, keys::TABLE_CATALOG)
    }

    fn allocate_table_id(&self) -> StoreResult<u32> {
        self.allocate_id(tables_ks, [keys::NEXT_TABLE_ID])
    }

    fn put_table(&self, entry: &TableCatalogEntry) -> StoreResult<()> {
        let key = keys::prefixed_id(keys::TABLE_CATALOG, entry.table_id);
        self.put_json(tables_ks, &key, entry)
    }

    fn get_item(&self, table_id: u32, key: &[u8]) -> StoreResult<Option<Bytes>> {
        Ok(self
            .engine()?
            .tables
            .get(keys::item_key(table_id, key))
            .map_err(io)?
            .map(|v| Bytes::copy_from_slice(&v)))
    }

    fn scan_items(
        &self,
        table_id: u32,
        prefix: &[u8],
        from: ScanFrom<'_>,
        reverse: bool,
        limit: usize,
        max_bytes: usize,
    ) -> StoreResult<Vec<(Vec<u8>, Bytes)>> {
        let e = self.engine()?;
        let (lower, upper) = keys::item_range(table_id, prefix, from, reverse);
        let range = e.tables.range::<Vec<u8>, _>((lower, upper));
        let mut out = Vec::new();
        let mut bytes = 0usize;
        // Takes one item; false once the byte budget is spent.
        let mut take = |guard: fjall::Guard| -> StoreResult<bool> {
            let (k, v) = guard.into_inner().map_err(io)?;
            bytes += v.len();
            out.push((k[5..].to_vec(), Bytes::copy_from_slice(&v)));
            Ok(bytes < max_bytes)
        };
        if reverse {
            for g in range.rev().take(limit) {
                if !take(g)? {
                    break;
                }
            }
        } else {
            for g in range.take(limit) {
                if !take(g)? {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn delete_table(&self, table_id: u32) -> StoreResult<()> {
        self.write(|e| {
            e.tables
                .remove(keys::prefixed_id(keys::TABLE_CATALOG, table_id))
                .map_err(io)?;
            e.persist(SyncMode::SyncData)
        })?;
        loop {
            let n = self.write(|e| {
                let mut batch = e.db.batch();
                let mut n = 0;
                for guard in e
                    .tables
                    .prefix(keys::prefixed_id(keys::ITEM, table_id))
                    .take(10_000)
                {
                    batch.remove(&e.tables, guard.key().map_err(io)?);
                    n += 1;
                }
                if n > 0 {
                    batch.commit().map_err(io)?;
                }
                Ok(n)
            })?;
            if n == 0 {
                break;
            }
        }
        self.write(|e| e.persist(SyncMode::Os))
    }

    fn count_items(&self, table_id: u32) -> StoreResult<u64> {
        let e = self.engine()?;
        let mut n = 0;
        for guard in e.tables.prefix(keys::prefixed_id(keys::ITEM, table_id)) {
            guard.key().map_err(io)?;
            n += 1;
        }
        Ok(n)
    }
}

impl ResourceStore for FjallStore {
    fn put_resource(&self, kind: &str, name: &str, document: &[u8]) -> StoreResult<()> {
        let key = keys::resource_key(kind, name);
        self.write(|e| {
            e.mappings.insert(key, document).map_err(io)?;
            e.persist(SyncMode::SyncData)
        })
    }

    fn get_resource(&self, kind: &str, name: &str) -> StoreResult<Option<Bytes>> {
        let e = self.engine()?;
        let v = e.mappings.get(keys::resource_key(kind, name)).map_err(io)?;
        Ok(v.map(|v| Bytes::copy_from_slice(&v)))
    }

    fn list_resources(&self, kind: &str) -> StoreResult<Vec<(String, Bytes)>> {
        let e = self.engine()?;
        let prefix = keys::resource_prefix(kind);
        let mut out = Vec::new();
        for guard in e.mappings.prefix(&prefix) {
            let (k, v) = guard.into_inner().map_err(io)?;
            let name = String::from_utf8(k[prefix.len()..].to_vec())
                .map_err(|_| StorageError::Corrupt(format!("{kind} resource name")))?;
            out.push((name, Bytes::copy_from_slice(&v)));
        }
        Ok(out)
    }

    fn delete_resource(&self, kind: &str, name: &str) -> StoreResult<()> {
        let key = keys::resource_key(kind, name);
        self.write(|e| {
            e.mappings.remove(key).map_err(io)?;
            e.persist(SyncMode::SyncData)
        })
    }
}

impl MappingStore for FjallStore {
    fn load_mappings(&self) -> StoreResult<Vec<MappingCatalogEntry>> {
        self.load_json(mappings_ks, keys::MAPPING_CATALOG)
    }

    fn allocate_mapping_id(&self) -> StoreResult<u32> {
        self.allocate_id(mappings_ks, [keys::NEXT_MAPPING_ID])
    }

    fn put_mapping(&self, entry: &MappingCatalogEntry) -> StoreResult<()> {
        let key = keys::prefixed_id(keys::MAPPING_CATALOG, entry.mapping_id);
        self.put_json(mappings_ks, &key, entry)
    }

    fn delete_mapping(&self, mapping_id: u32) -> StoreResult<()> {
        self.write(|e| {
            let mut batch = e.db.batch();
            batch.remove(
                &e.mappings,
                keys::prefixed_id(keys::MAPPING_CATALOG, mapping_id),
            );
            for guard in e
                .mappings
                .prefix(keys::prefixed_id(keys::CHECKPOINT, mapping_id))
            {
                let key = guard.key().map_err(io)?;
                batch.remove(&e.mappings, key);
            }
            batch.commit().map_err(io)?;
            e.persist(SyncMode::SyncData)
        })
    }

    fn load_checkpoint(&self, mapping_id: u32, shard: ShardKey) -> StoreResult<Option<u64>> {
        self.engine()?
            .mappings
            .get(keys::checkpoint_key(mapping_id, shard))
            .map_err(io)?
            .map(|v| keys::decode_checkpoint(&v))
            .transpose()
    }

    fn dead_letters(
        &self,
        mapping_id: u32,
        after: Option<u64>,
        limit: usize,
    ) -> StoreResult<Vec<(u64, Bytes)>> {
        let e = self.engine()?;
        let start = keys::dead_letter_key(mapping_id, after.map_or(0, |a| a.saturating_add(1)));
        let end = keys::prefixed_id(keys::DEAD_LETTER, mapping_id + 1);
        let mut out = Vec::new();
        for guard in e
            .mappings
            .range::<&[u8], _>(&start[..]..&end[..])
            .take(limit)
        {
            let (k, v) = guard.into_inner().map_err(io)?;
            out.push((keys::dead_letter_key_id(&k)?, Bytes::copy_from_slice(&v)));
        }
        Ok(out)
    }
}

impl BatchWriter for FjallStore {
    fn apply(&self, ops: &[WriteOp], sync: SyncMode) -> StoreResult<()> {
        self.write(|e| {
            let mut batch = e.db.batch();
            for op in ops {
                match op {
                    WriteOp::PutItem {
                        table_id,
                        key,
                        item,
                    } => batch.insert(&e.tables, keys::item_key(*table_id, key), item.as_slice()),
                    WriteOp::DeleteItem { table_id, key } => {
                        batch.remove(&e.tables, keys::item_key(*table_id, key));
                    }
                    WriteOp::Checkpoint {
                        mapping_id,
                        shard,
                        next_counter,
                    } => batch.insert(
                        &e.mappings,
                        keys::checkpoint_key(*mapping_id, *shard),
                        next_counter.to_be_bytes(),
                    ),
                    WriteOp::DeadLetter {
                        mapping_id,
                        id,
                        record,
                    } => batch.insert(
                        &e.mappings,
                        keys::dead_letter_key(*mapping_id, *id),
                        record.as_slice(),
                    ),
                }
            }
            batch.commit().map_err(io)?;
            e.persist(sync)?;
            e.bound_memtable(&e.tables, MEMTABLE_BYTES)?;
            e.bound_memtable(&e.mappings, MAPPING_MEMTABLE_BYTES)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_the_seam_suite() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FjallStore::open(dir.path()).expect("open");
        crate::conformance::check_all(&store);
    }

    #[test]
    fn resources_are_kept_by_kind_and_name_across_a_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let store = FjallStore::open(dir.path()).expect("open");
            store
                .put_resource("iam.role", "b", b"{\"n\":2}")
                .expect("put");
            store
                .put_resource("iam.role", "a", b"{\"n\":1}")
                .expect("put");
            // A kind that is a prefix of another kind's name stays apart.
            store.put_resource("iam", "role", b"{}").expect("put");
            store.put_resource("iam.role.x", "c", b"{}").expect("put");
            store
                .delete_resource("iam.role", "missing")
                .expect("delete of nothing");
        }
        let store = FjallStore::open(dir.path()).expect("reopen");
        let roles = store.list_resources("iam.role").expect("list");
        let names: Vec<&str> = roles.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(&roles[0].1[..], b"{\"n\":1}");
        store.delete_resource("iam.role", "a").expect("delete");
        assert_eq!(store.get_resource("iam.role", "a").expect("get"), None);
        assert!(store.get_resource("iam.role", "b").expect("get").is_some());
    }
}
