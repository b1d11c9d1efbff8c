//! The embedded storage engine: fjall, an LSM-tree key-value store, in the data dir.
//!
//! Why fjall: appends are sequential key inserts (an LSM's best case), a record and its
//! shard tip go in one atomic write batch, and one journal fdatasync makes every batch
//! written before it durable, which is what group commit needs. Key layout: [`super::keys`].

use std::path::Path;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use super::keys;
use bytes::Bytes;

use super::{
    BatchWriter, MappingCatalogEntry, MappingStore, ShardKey, ShardTip, StorageError, StoreResult,
    StoredRecord, StreamCatalogEntry, StreamStore, SyncMode, TableCatalogEntry, TableStore,
    WriteOp,
};

/// Block cache for reads of recent records.
const CACHE_BYTES: u64 = 32 << 20;
/// One memtable; rotated and flushed to a table file when full.
const MEMTABLE_BYTES: u64 = 16 << 20;
/// The mappings keyspace holds a few keys rewritten often (checkpoints): small memtable.
const MAPPING_MEMTABLE_BYTES: u64 = 4 << 20;
/// Journal kept before memtables are forced to disk.
const JOURNAL_BYTES: u64 = 256 << 20;

/// The fjall-backed implementation of the storage traits.
pub struct FjallStore {
    db: Database,
    streams: Keyspace,
    tables: Keyspace,
    mappings: Keyspace,
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
            id_lock: std::sync::Mutex::new(()),
        })
    }

    /// Allocates the next id of the counter at `key` in `ks`, durably.
    fn allocate_id(&self, ks: &Keyspace, key: [u8; 1]) -> StoreResult<u32> {
        let _g = self.id_lock.lock().unwrap_or_else(|p| p.into_inner());
        let next = match ks.get(key).map_err(io)? {
            Some(v) => u32::from_be_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| StorageError::Corrupt("id counter".into()))?,
            ),
            None => 0,
        };
        ks.insert(key, (next + 1).to_be_bytes()).map_err(io)?;
        self.persist(SyncMode::SyncData)?;
        Ok(next)
    }

    /// Every JSON value under a one-byte prefix.
    fn load_json<T: serde::de::DeserializeOwned>(
        &self,
        ks: &Keyspace,
        prefix: u8,
    ) -> StoreResult<Vec<T>> {
        let mut out = Vec::new();
        for guard in ks.prefix([prefix]) {
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
        ks: &Keyspace,
        key: &[u8],
        value: &T,
    ) -> StoreResult<()> {
        let json = serde_json::to_vec(value).expect("catalog entries serialize");
        ks.insert(key, json).map_err(io)?;
        self.persist(SyncMode::SyncData)
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
        self.load_json(&self.streams, keys::STREAM_CATALOG)
    }

    fn allocate_stream_id(&self) -> StoreResult<u32> {
        self.allocate_id(&self.streams, keys::next_stream_id_key())
    }

    fn put_stream(&self, entry: &StreamCatalogEntry) -> StoreResult<()> {
        self.put_json(&self.streams, &keys::catalog_key(entry.stream_id), entry)
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

    fn delete_stream(&self, entry: &StreamCatalogEntry) -> StoreResult<()> {
        // Catalog entry first: once it is gone the stream is gone, even if a crash
        // interrupts the deletion of its records (they are unreachable, under an id
        // that is never handed out again).
        self.streams
            .remove(keys::catalog_key(entry.stream_id))
            .map_err(io)?;
        self.persist(SyncMode::SyncData)?;
        for s in &entry.shards {
            let shard = ShardKey {
                stream_id: entry.stream_id,
                shard_index: s.index,
            };
            self.trim(shard, u64::MAX)?;
            self.streams.remove(keys::tip_key(shard)).map_err(io)?;
        }
        self.persist(SyncMode::Os)
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

/// The smallest key greater than every key starting with `prefix`.
fn successor(prefix: &[u8]) -> Vec<u8> {
    let mut s = prefix.to_vec();
    while let Some(last) = s.pop() {
        if last < 0xFF {
            s.push(last + 1);
            return s;
        }
    }
    vec![0xFF; prefix.len() + 1]
}

impl TableStore for FjallStore {
    fn load_tables(&self) -> StoreResult<Vec<TableCatalogEntry>> {
        self.load_json(&self.tables, keys::TABLE_CATALOG)
    }

    fn allocate_table_id(&self) -> StoreResult<u32> {
        self.allocate_id(&self.tables, [keys::NEXT_TABLE_ID])
    }

    fn put_table(&self, entry: &TableCatalogEntry) -> StoreResult<()> {
        let key = keys::prefixed_id(keys::TABLE_CATALOG, entry.table_id);
        self.put_json(&self.tables, &key, entry)
    }

    fn get_item(&self, table_id: u32, key: &[u8]) -> StoreResult<Option<Bytes>> {
        Ok(self
            .tables
            .get(keys::item_key(table_id, key))
            .map_err(io)?
            .map(|v| Bytes::copy_from_slice(&v)))
    }

    fn scan_items(
        &self,
        table_id: u32,
        prefix: &[u8],
        after: Option<&[u8]>,
        reverse: bool,
        limit: usize,
        max_bytes: usize,
    ) -> StoreResult<Vec<(Vec<u8>, Bytes)>> {
        use std::ops::Bound::{Excluded, Included};
        let low = keys::item_key(table_id, prefix);
        let high = successor(&low);
        let (lower, upper) = match (after, reverse) {
            (Some(a), false) => (Excluded(keys::item_key(table_id, a)), Excluded(high)),
            (Some(a), true) => (Included(low), Excluded(keys::item_key(table_id, a))),
            (None, _) => (Included(low), Excluded(high)),
        };
        let range = self.tables.range::<Vec<u8>, _>((lower, upper));
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
        self.tables
            .remove(keys::prefixed_id(keys::TABLE_CATALOG, table_id))
            .map_err(io)?;
        self.persist(SyncMode::SyncData)?;
        loop {
            let mut batch = self.db.batch();
            let mut n = 0;
            for guard in self
                .tables
                .prefix(keys::prefixed_id(keys::ITEM, table_id))
                .take(10_000)
            {
                batch.remove(&self.tables, guard.key().map_err(io)?);
                n += 1;
            }
            if n == 0 {
                break;
            }
            batch.commit().map_err(io)?;
        }
        self.persist(SyncMode::Os)
    }

    fn count_items(&self, table_id: u32) -> StoreResult<u64> {
        let mut n = 0;
        for guard in self.tables.prefix(keys::prefixed_id(keys::ITEM, table_id)) {
            guard.key().map_err(io)?;
            n += 1;
        }
        Ok(n)
    }
}

impl MappingStore for FjallStore {
    fn load_mappings(&self) -> StoreResult<Vec<MappingCatalogEntry>> {
        self.load_json(&self.mappings, keys::MAPPING_CATALOG)
    }

    fn allocate_mapping_id(&self) -> StoreResult<u32> {
        self.allocate_id(&self.mappings, [keys::NEXT_MAPPING_ID])
    }

    fn put_mapping(&self, entry: &MappingCatalogEntry) -> StoreResult<()> {
        let key = keys::prefixed_id(keys::MAPPING_CATALOG, entry.mapping_id);
        self.put_json(&self.mappings, &key, entry)
    }

    fn load_checkpoint(&self, mapping_id: u32, shard: ShardKey) -> StoreResult<Option<u64>> {
        match self
            .mappings
            .get(keys::checkpoint_key(mapping_id, shard))
            .map_err(io)?
        {
            Some(v) => {
                Ok(Some(u64::from_be_bytes(v.as_ref().try_into().map_err(
                    |_| StorageError::Corrupt("checkpoint".into()),
                )?)))
            }
            None => Ok(None),
        }
    }

    fn dead_letters(
        &self,
        mapping_id: u32,
        after: Option<u64>,
        limit: usize,
    ) -> StoreResult<Vec<(u64, Bytes)>> {
        let start = keys::dead_letter_key(mapping_id, after.map_or(0, |a| a.saturating_add(1)));
        let end = keys::prefixed_id(keys::DEAD_LETTER, mapping_id + 1);
        let mut out = Vec::new();
        for guard in self
            .mappings
            .range::<&[u8], _>(&start[..]..&end[..])
            .take(limit)
        {
            let (k, v) = guard.into_inner().map_err(io)?;
            let id = u64::from_be_bytes(
                k.get(5..13)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| StorageError::Corrupt("dead letter key".into()))?,
            );
            out.push((id, Bytes::copy_from_slice(&v)));
        }
        Ok(out)
    }
}

impl BatchWriter for FjallStore {
    fn apply(&self, ops: &[WriteOp], sync: SyncMode) -> StoreResult<()> {
        let mut batch = self.db.batch();
        for op in ops {
            match op {
                WriteOp::PutItem {
                    table_id,
                    key,
                    item,
                } => batch.insert(
                    &self.tables,
                    keys::item_key(*table_id, key),
                    item.as_slice(),
                ),
                WriteOp::DeleteItem { table_id, key } => {
                    batch.remove(&self.tables, keys::item_key(*table_id, key));
                }
                WriteOp::Checkpoint {
                    mapping_id,
                    shard,
                    next_counter,
                } => batch.insert(
                    &self.mappings,
                    keys::checkpoint_key(*mapping_id, *shard),
                    next_counter.to_be_bytes(),
                ),
                WriteOp::DeadLetter {
                    mapping_id,
                    id,
                    record,
                } => batch.insert(
                    &self.mappings,
                    keys::dead_letter_key(*mapping_id, *id),
                    record.as_slice(),
                ),
            }
        }
        batch.commit().map_err(io)?;
        self.persist(sync)
    }
}
