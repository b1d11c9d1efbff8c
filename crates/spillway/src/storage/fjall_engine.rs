//! The embedded storage engine: fjall, an LSM-tree key-value store, in the data dir.
//!
//! Why fjall: appends are sequential key inserts (an LSM's best case), a record and its
//! shard tip go in one atomic write batch, and one journal fdatasync makes every batch
//! written before it durable, which is what group commit needs. Key layout: [`super::keys`].

use std::path::Path;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use super::keys;
use super::{
    ShardKey, ShardTip, StorageError, StoreResult, StoredRecord, StreamCatalogEntry, StreamStore,
    SyncMode,
};

/// Block cache for reads of recent records.
const CACHE_BYTES: u64 = 32 << 20;
/// One memtable; rotated and flushed to a table file when full.
const MEMTABLE_BYTES: u64 = 16 << 20;
/// Journal kept before memtables are forced to disk.
const JOURNAL_BYTES: u64 = 256 << 20;

/// The fjall-backed implementation of the storage traits.
pub struct FjallStore {
    db: Database,
    streams: Keyspace,
    /// Serialises stream-id allocation (read-modify-write of one key).
    id_lock: std::sync::Mutex<()>,
}

impl std::fmt::Debug for FjallStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallStore").finish_non_exhaustive()
    }
}

fn io(e: fjall::Error) -> StorageError {
    let text = e.to_string();
    if let fjall::Error::Io(ref ioe) = e
        && ioe.raw_os_error() == Some(28)
    {
        return StorageError::Full(text);
    }
    if text.contains("No space left") {
        StorageError::Full(text)
    } else {
        StorageError::Io(text)
    }
}

impl FjallStore {
    /// Opens (or creates) the engine in `dir`.
    pub fn open(dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::Io(e.to_string()))?;
        let db = Database::builder(dir.join("fjall"))
            // We decide when the journal reaches the OS and the disk (see `append`).
            .manual_journal_persist(true)
            // Memory bounds: a spike goes to disk, not to RAM. Block cache, memtable
            // size (below), and the journal kept before a forced flush.
            .cache_size(CACHE_BYTES)
            .max_journaling_size(JOURNAL_BYTES)
            // One background worker (flush, compaction): the machine has few cores and
            // the request path needs them.
            .worker_threads(1)
            .open()
            .map_err(io)?;
        let streams = db
            .keyspace("streams", || {
                KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
            })
            .map_err(io)?;
        Ok(Self {
            db,
            streams,
            id_lock: std::sync::Mutex::new(()),
        })
    }

    fn persist(&self, sync: SyncMode) -> StoreResult<()> {
        let mode = match sync {
            SyncMode::SyncData => PersistMode::SyncData,
            SyncMode::Os => PersistMode::Buffer,
        };
        self.db.persist(mode).map_err(io)
    }
}

impl StreamStore for FjallStore {
    fn load_catalog(&self) -> StoreResult<Vec<StreamCatalogEntry>> {
        let mut out = Vec::new();
        for guard in self.streams.prefix([keys::STREAM_CATALOG]) {
            let (_, v) = guard.into_inner().map_err(io)?;
            out.push(
                serde_json::from_slice(&v)
                    .map_err(|e| StorageError::Corrupt(format!("stream catalog entry: {e}")))?,
            );
        }
        Ok(out)
    }

    fn allocate_stream_id(&self) -> StoreResult<u32> {
        let _g = self.id_lock.lock().unwrap_or_else(|p| p.into_inner());
        let key = keys::next_stream_id_key();
        let next = match self.streams.get(key).map_err(io)? {
            Some(v) => u32::from_be_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| StorageError::Corrupt("next stream id".into()))?,
            ),
            None => 0,
        };
        self.streams
            .insert(key, (next + 1).to_be_bytes())
            .map_err(io)?;
        self.persist(SyncMode::SyncData)?;
        Ok(next)
    }

    fn put_stream(&self, entry: &StreamCatalogEntry) -> StoreResult<()> {
        let json = serde_json::to_vec(entry).expect("catalog entries serialize");
        self.streams
            .insert(keys::catalog_key(entry.stream_id), json)
            .map_err(io)?;
        self.persist(SyncMode::SyncData)
    }

    fn load_tip(&self, shard: ShardKey) -> StoreResult<Option<ShardTip>> {
        self.streams
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
        let mut batch = self.db.batch();
        for (shard, r) in records {
            batch.insert(
                &self.streams,
                keys::record_key(*shard, r.counter),
                keys::encode_record_value(r),
            );
        }
        for (shard, tip) in tips {
            batch.insert(&self.streams, keys::tip_key(*shard), keys::encode_tip(*tip));
        }
        batch.commit().map_err(io)?;
        self.persist(sync)
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
        let start = keys::record_key(shard, from);
        let end = keys::record_key(shard, until);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for guard in self.streams.range(start..end) {
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
        match self.streams.prefix(keys::record_prefix(shard)).next() {
            Some(guard) => Ok(Some(keys::record_key_counter(&guard.key().map_err(io)?)?)),
            None => Ok(None),
        }
    }

    fn trim(&self, shard: ShardKey, cutoff_ms: u64) -> StoreResult<u64> {
        let mut removed = 0u64;
        loop {
            // Delete in bounded batches so a long backlog never builds one huge batch.
            let mut batch = self.db.batch();
            let mut n = 0;
            let mut done = true;
            for guard in self.streams.prefix(keys::record_prefix(shard)) {
                let (k, v) = guard.into_inner().map_err(io)?;
                let counter = keys::record_key_counter(&k)?;
                if keys::decode_record_value(counter, &v)?.arrival_ms >= cutoff_ms {
                    break;
                }
                batch.remove(&self.streams, k);
                n += 1;
                if n == 10_000 {
                    done = false;
                    break;
                }
            }
            if n == 0 {
                break;
            }
            batch.commit().map_err(io)?;
            self.persist(SyncMode::Os)?;
            removed += n;
            if done {
                break;
            }
        }
        Ok(removed)
    }
}
