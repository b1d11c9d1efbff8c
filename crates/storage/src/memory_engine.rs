//! `memory://`: an engine that keeps everything in the process's memory.
//!
//! For tests and demos; nothing survives the process. It keeps the embedded engine's
//! layout ([`super::keys`]: the same keys in three ordered maps, one per keyspace), so
//! the domain sees the same orders, prefixes and ranges through either engine, and the
//! seam's shared tests (`storage::conformance`) hold both to the same behaviour.
//!
//! Two test seams the embedded engine cannot offer:
//! - **A machine crash** ([`MemoryStore::with_crash_model`], [`MemoryStore::crash`]).
//!   Beside what readers see, the store keeps what a [`SyncMode::SyncData`] write made
//!   durable; a crash throws away everything written since the last sync, as a power
//!   loss drops the page cache. kill -9 keeps the page cache, so a crash test that kills
//!   a process passes whether or not spillway syncs; this one does not.
//! - **Failing writes** ([`MemoryStore::fail_writes`]): every write fails with the given
//!   error (a full disk, a failed fsync) until cleared, and `health` says so.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;

use super::keys;
use super::{
    BatchWriter, EngineHealth, MappingCatalogEntry, MappingStore, ResourceStore, ScanFrom,
    ShardKey, ShardTip, StorageError, StoreResult, StoredRecord, StreamCatalogEntry, StreamStore,
    SyncMode, TableCatalogEntry, TableStore, WriteOp,
};

/// One keyspace: keys in byte order, as the embedded engine's.
type Space = BTreeMap<Vec<u8>, Bytes>;

/// The three keyspaces of the embedded engine's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyspace {
    Streams,
    Tables,
    Mappings,
}

#[derive(Debug, Clone, Default)]
struct Spaces {
    streams: Space,
    tables: Space,
    mappings: Space,
}

impl Spaces {
    fn space(&self, ks: Keyspace) -> &Space {
        match ks {
            Keyspace::Streams => &self.streams,
            Keyspace::Tables => &self.tables,
            Keyspace::Mappings => &self.mappings,
        }
    }

    fn space_mut(&mut self, ks: Keyspace) -> &mut Space {
        match ks {
            Keyspace::Streams => &mut self.streams,
            Keyspace::Tables => &mut self.tables,
            Keyspace::Mappings => &mut self.mappings,
        }
    }

    fn apply(&mut self, change: &Change) {
        match change {
            Change::Put(ks, k, v) => {
                self.space_mut(*ks).insert(k.clone(), v.clone());
            }
            Change::Remove(ks, k) => {
                self.space_mut(*ks).remove(k);
            }
        }
    }
}

/// One change of one atomic write.
#[derive(Debug, Clone)]
enum Change {
    Put(Keyspace, Vec<u8>, Bytes),
    Remove(Keyspace, Vec<u8>),
}

/// What a power loss would leave: the state as of the last sync, and the changes since.
#[derive(Debug, Default)]
struct CrashModel {
    durable: Spaces,
    unsynced: Vec<Change>,
}

#[derive(Debug, Default)]
struct State {
    live: Spaces,
    crash: Option<CrashModel>,
    /// While set, every write fails with this error.
    failing: Option<StorageError>,
    last_error: Option<String>,
}

/// The `memory://` engine. See the module documentation.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    write_failures: AtomicU64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that can [`crash`](Self::crash).
    pub fn with_crash_model() -> Self {
        let store = Self::default();
        store.lock().crash = Some(CrashModel::default());
        store
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Simulates a power loss: everything written since the last `SyncData` write is
    /// gone. Returns how many changes were lost. A store without the crash model loses
    /// nothing (it has no notion of durability).
    pub fn crash(&self) -> usize {
        let mut s = self.lock();
        let Some(model) = s.crash.as_mut() else {
            return 0;
        };
        let lost = model.unsynced.len();
        model.unsynced.clear();
        let durable = model.durable.clone();
        s.live = durable;
        lost
    }

    /// Makes every later write fail with `error` (a full disk: [`StorageError::Full`];
    /// a failed fsync: [`StorageError::Io`]), until called with `None`.
    pub fn fail_writes(&self, error: Option<StorageError>) {
        self.lock().failing = error;
    }

    /// Applies one atomic write: all of `changes` or, while writes fail, none.
    fn write(&self, changes: Vec<Change>, sync: SyncMode) -> StoreResult<()> {
        let mut s = self.lock();
        self.write_locked(&mut s, changes, sync)
    }

    /// [`Self::write`] under a lock the caller holds.
    fn write_locked(&self, s: &mut State, changes: Vec<Change>, sync: SyncMode) -> StoreResult<()> {
        if let Some(e) = s.failing.clone() {
            s.last_error = Some(e.to_string());
            self.write_failures.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
        s.last_error = None;
        for c in &changes {
            s.live.apply(c);
        }
        if let Some(model) = s.crash.as_mut() {
            model.unsynced.extend(changes);
            if sync == SyncMode::SyncData {
                // A sync makes everything written before it durable, not only this write.
                for c in std::mem::take(&mut model.unsynced) {
                    model.durable.apply(&c);
                }
            }
        }
        Ok(())
    }

    fn get(&self, ks: Keyspace, key: &[u8]) -> Option<Bytes> {
        self.lock().live.space(ks).get(key).cloned()
    }

    /// Entries of `ks` whose key starts with `prefix`, in key order.
    fn prefixed(&self, ks: Keyspace, prefix: &[u8]) -> Vec<(Vec<u8>, Bytes)> {
        self.lock()
            .live
            .space(ks)
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn allocate_id(&self, ks: Keyspace, key: &[u8]) -> StoreResult<u32> {
        // One lock for the read and the write: two callers never get the same id.
        let mut s = self.lock();
        let next = match s.live.space(ks).get(key) {
            Some(v) => u32::from_be_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| StorageError::Corrupt("id counter".into()))?,
            ),
            None => 0,
        };
        let counter = Bytes::copy_from_slice(&(next + 1).to_be_bytes());
        let change = Change::Put(ks, key.to_vec(), counter);
        self.write_locked(&mut s, vec![change], SyncMode::SyncData)?;
        Ok(next)
    }

    fn load_json<T: serde::de::DeserializeOwned>(
        &self,
        ks: Keyspace,
        prefix: u8,
    ) -> StoreResult<Vec<T>> {
        self.prefixed(ks, &[prefix])
            .into_iter()
            .map(|(_, v)| {
                serde_json::from_slice(&v)
                    .map_err(|e| StorageError::Corrupt(format!("catalog entry: {e}")))
            })
            .collect()
    }

    fn put_json<T: serde::Serialize>(
        &self,
        ks: Keyspace,
        key: &[u8],
        value: &T,
    ) -> StoreResult<()> {
        let json = serde_json::to_vec(value).expect("catalog entries serialize");
        self.write(
            vec![Change::Put(ks, key.to_vec(), json.into())],
            SyncMode::SyncData,
        )
    }
}

impl StreamStore for MemoryStore {
    fn load_catalog(&self) -> StoreResult<Vec<StreamCatalogEntry>> {
        self.load_json(Keyspace::Streams, keys::STREAM_CATALOG)
    }

    fn allocate_stream_id(&self) -> StoreResult<u32> {
        self.allocate_id(Keyspace::Streams, &keys::next_stream_id_key())
    }

    fn put_stream(&self, entry: &StreamCatalogEntry) -> StoreResult<()> {
        self.put_json(
            Keyspace::Streams,
            &keys::catalog_key(entry.stream_id),
            entry,
        )
    }

    fn load_tip(&self, shard: ShardKey) -> StoreResult<Option<ShardTip>> {
        self.get(Keyspace::Streams, &keys::tip_key(shard))
            .map(|v| keys::decode_tip(&v))
            .transpose()
    }

    fn append(
        &self,
        records: &[(ShardKey, StoredRecord)],
        tips: &[(ShardKey, ShardTip)],
        sync: SyncMode,
    ) -> StoreResult<()> {
        let mut changes = Vec::with_capacity(records.len() + tips.len());
        for (shard, r) in records {
            changes.push(Change::Put(
                Keyspace::Streams,
                keys::record_key(*shard, r.counter).to_vec(),
                keys::encode_record_value(r).into(),
            ));
        }
        for (shard, tip) in tips {
            changes.push(Change::Put(
                Keyspace::Streams,
                keys::tip_key(*shard).to_vec(),
                Bytes::copy_from_slice(&keys::encode_tip(*tip)),
            ));
        }
        self.write(changes, sync)
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
        let s = self.lock();
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for (k, v) in s
            .live
            .streams
            .range::<[u8], _>((Bound::Included(&start[..]), Bound::Excluded(&end[..])))
        {
            let r = keys::decode_record_value(keys::record_key_counter(k)?, v)?;
            bytes += r.data.len() + r.partition_key.len();
            out.push(r);
            if out.len() >= max_records || bytes >= max_bytes {
                break;
            }
        }
        Ok(out)
    }

    fn first_counter(&self, shard: ShardKey) -> StoreResult<Option<u64>> {
        match self
            .prefixed(Keyspace::Streams, &keys::record_prefix(shard))
            .first()
        {
            Some((k, _)) => Ok(Some(keys::record_key_counter(k)?)),
            None => Ok(None),
        }
    }

    fn trim(&self, shard: ShardKey, cutoff_ms: u64) -> StoreResult<u64> {
        let mut changes = Vec::new();
        for (k, v) in self.prefixed(Keyspace::Streams, &keys::record_prefix(shard)) {
            let r = keys::decode_record_value(keys::record_key_counter(&k)?, &v)?;
            if r.arrival_ms >= cutoff_ms {
                break;
            }
            changes.push(Change::Remove(Keyspace::Streams, k));
        }
        let n = changes.len() as u64;
        if n > 0 {
            self.write(changes, SyncMode::Os)?;
        }
        Ok(n)
    }

    fn delete_stream(&self, entry: &StreamCatalogEntry) -> StoreResult<()> {
        // The catalog entry first and synced, as the embedded engine does.
        self.write(
            vec![Change::Remove(
                Keyspace::Streams,
                keys::catalog_key(entry.stream_id).to_vec(),
            )],
            SyncMode::SyncData,
        )?;
        for s in &entry.shards {
            let shard = ShardKey {
                stream_id: entry.stream_id,
                shard_index: s.index,
            };
            self.trim(shard, u64::MAX)?;
            self.write(
                vec![Change::Remove(
                    Keyspace::Streams,
                    keys::tip_key(shard).to_vec(),
                )],
                SyncMode::Os,
            )?;
        }
        Ok(())
    }

    fn health(&self) -> EngineHealth {
        let s = self.lock();
        EngineHealth {
            writable: s.failing.is_none(),
            last_error: s.last_error.clone(),
            write_failures: self.write_failures.load(Ordering::Relaxed),
            reopens: 0,
        }
    }
}

impl TableStore for MemoryStore {
    fn load_tables(&self) -> StoreResult<Vec<TableCatalogEntry>> {
        self.load_json(Keyspace::Tables, keys::TABLE_CATALOG)
    }

    fn allocate_table_id(&self) -> StoreResult<u32> {
        self.allocate_id(Keyspace::Tables, &[keys::NEXT_TABLE_ID])
    }

    fn put_table(&self, entry: &TableCatalogEntry) -> StoreResult<()> {
        let key = keys::prefixed_id(keys::TABLE_CATALOG, entry.table_id);
        self.put_json(Keyspace::Tables, &key, entry)
    }

    fn get_item(&self, table_id: u32, key: &[u8]) -> StoreResult<Option<Bytes>> {
        Ok(self.get(Keyspace::Tables, &keys::item_key(table_id, key)))
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
        let (lower, upper) = keys::item_range(table_id, prefix, from, reverse);
        let s = self.lock();
        let range = s.live.tables.range::<Vec<u8>, _>((lower, upper));
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut take = |(k, v): (&Vec<u8>, &Bytes)| {
            bytes += v.len();
            out.push((k[5..].to_vec(), v.clone()));
            bytes < max_bytes
        };
        if reverse {
            for entry in range.rev().take(limit) {
                if !take(entry) {
                    break;
                }
            }
        } else {
            for entry in range.take(limit) {
                if !take(entry) {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn delete_table(&self, table_id: u32) -> StoreResult<()> {
        self.write(
            vec![Change::Remove(
                Keyspace::Tables,
                keys::prefixed_id(keys::TABLE_CATALOG, table_id).to_vec(),
            )],
            SyncMode::SyncData,
        )?;
        let items = self
            .prefixed(Keyspace::Tables, &keys::prefixed_id(keys::ITEM, table_id))
            .into_iter()
            .map(|(k, _)| Change::Remove(Keyspace::Tables, k))
            .collect();
        self.write(items, SyncMode::Os)
    }

    fn count_items(&self, table_id: u32) -> StoreResult<u64> {
        let prefix = keys::prefixed_id(keys::ITEM, table_id);
        let s = self.lock();
        Ok(s.live
            .tables
            .range::<[u8], _>((Bound::Included(&prefix[..]), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(&prefix))
            .count() as u64)
    }
}

impl ResourceStore for MemoryStore {
    fn put_resource(&self, kind: &str, name: &str, document: &[u8]) -> StoreResult<()> {
        self.write(
            vec![Change::Put(
                Keyspace::Mappings,
                keys::resource_key(kind, name),
                Bytes::copy_from_slice(document),
            )],
            SyncMode::SyncData,
        )
    }

    fn get_resource(&self, kind: &str, name: &str) -> StoreResult<Option<Bytes>> {
        Ok(self.get(Keyspace::Mappings, &keys::resource_key(kind, name)))
    }

    fn list_resources(&self, kind: &str) -> StoreResult<Vec<(String, Bytes)>> {
        let prefix = keys::resource_prefix(kind);
        self.prefixed(Keyspace::Mappings, &prefix)
            .into_iter()
            .map(|(k, v)| {
                let name = String::from_utf8(k[prefix.len()..].to_vec())
                    .map_err(|_| StorageError::Corrupt(format!("{kind} resource name")))?;
                Ok((name, v))
            })
            .collect()
    }

    fn delete_resource(&self, kind: &str, name: &str) -> StoreResult<()> {
        self.write(
            vec![Change::Remove(
                Keyspace::Mappings,
                keys::resource_key(kind, name),
            )],
            SyncMode::SyncData,
        )
    }
}

impl MappingStore for MemoryStore {
    fn load_mappings(&self) -> StoreResult<Vec<MappingCatalogEntry>> {
        self.load_json(Keyspace::Mappings, keys::MAPPING_CATALOG)
    }

    fn allocate_mapping_id(&self) -> StoreResult<u32> {
        self.allocate_id(Keyspace::Mappings, &[keys::NEXT_MAPPING_ID])
    }

    fn put_mapping(&self, entry: &MappingCatalogEntry) -> StoreResult<()> {
        let key = keys::prefixed_id(keys::MAPPING_CATALOG, entry.mapping_id);
        self.put_json(Keyspace::Mappings, &key, entry)
    }

    fn delete_mapping(&self, mapping_id: u32) -> StoreResult<()> {
        let mut changes = vec![Change::Remove(
            Keyspace::Mappings,
            keys::prefixed_id(keys::MAPPING_CATALOG, mapping_id).to_vec(),
        )];
        for (k, _) in self.prefixed(
            Keyspace::Mappings,
            &keys::prefixed_id(keys::CHECKPOINT, mapping_id),
        ) {
            changes.push(Change::Remove(Keyspace::Mappings, k));
        }
        self.write(changes, SyncMode::SyncData)
    }

    fn load_checkpoint(&self, mapping_id: u32, shard: ShardKey) -> StoreResult<Option<u64>> {
        self.get(Keyspace::Mappings, &keys::checkpoint_key(mapping_id, shard))
            .map(|v| keys::decode_checkpoint(&v))
            .transpose()
    }

    fn dead_letters(
        &self,
        mapping_id: u32,
        after: Option<u64>,
        limit: usize,
    ) -> StoreResult<Vec<(u64, Bytes)>> {
        let start = keys::dead_letter_key(mapping_id, after.map_or(0, |a| a.saturating_add(1)));
        let end = keys::prefixed_id(keys::DEAD_LETTER, mapping_id + 1);
        let s = self.lock();
        s.live
            .mappings
            .range::<[u8], _>((Bound::Included(&start[..]), Bound::Excluded(&end[..])))
            .take(limit)
            .map(|(k, v)| Ok((keys::dead_letter_key_id(k)?, v.clone())))
            .collect()
    }
}

impl BatchWriter for MemoryStore {
    fn apply(&self, ops: &[WriteOp], sync: SyncMode) -> StoreResult<()> {
        let changes = ops
            .iter()
            .map(|op| match op {
                WriteOp::PutItem {
                    table_id,
                    key,
                    item,
                } => Change::Put(
                    Keyspace::Tables,
                    keys::item_key(*table_id, key),
                    Bytes::copy_from_slice(item),
                ),
                WriteOp::DeleteItem { table_id, key } => {
                    Change::Remove(Keyspace::Tables, keys::item_key(*table_id, key))
                }
                WriteOp::Checkpoint {
                    mapping_id,
                    shard,
                    next_counter,
                } => Change::Put(
                    Keyspace::Mappings,
                    keys::checkpoint_key(*mapping_id, *shard).to_vec(),
                    Bytes::copy_from_slice(&next_counter.to_be_bytes()),
                ),
                WriteOp::DeadLetter {
                    mapping_id,
                    id,
                    record,
                } => Change::Put(
                    Keyspace::Mappings,
                    keys::dead_letter_key(*mapping_id, *id).to_vec(),
                    Bytes::copy_from_slice(record),
                ),
            })
            .collect();
        self.write(changes, sync)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn record(counter: u64) -> (ShardKey, StoredRecord) {
        let shard = ShardKey {
            stream_id: 0,
            shard_index: 0,
        };
        let r = StoredRecord {
            counter,
            arrival_ms: counter,
            partition_key: "pk".into(),
            data: Bytes::from_static(b"x"),
        };
        (shard, r)
    }

    #[test]
    fn passes_the_seam_suite() {
        crate::conformance::check_all(&MemoryStore::new());
        crate::conformance::check_all(&MemoryStore::with_crash_model());
    }

    #[test]
    fn a_crash_keeps_what_was_synced_and_loses_what_was_not() {
        let store = MemoryStore::with_crash_model();
        let (shard, _) = record(0);
        store.append(&[record(0)], &[], SyncMode::SyncData).unwrap();
        store.append(&[record(1)], &[], SyncMode::Os).unwrap();
        store
            .apply(
                &[WriteOp::Checkpoint {
                    mapping_id: 0,
                    shard,
                    next_counter: 2,
                }],
                SyncMode::Os,
            )
            .unwrap();
        assert_eq!(store.read(shard, 0, 10, 10, usize::MAX).unwrap().len(), 2);
        assert_eq!(store.crash(), 2);
        let left = store.read(shard, 0, 10, 10, usize::MAX).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(store.load_checkpoint(0, shard).unwrap(), None);

        // A sync makes what was written before it durable too.
        store.append(&[record(1)], &[], SyncMode::Os).unwrap();
        store.append(&[record(2)], &[], SyncMode::SyncData).unwrap();
        assert_eq!(store.crash(), 0);
        assert_eq!(store.read(shard, 0, 10, 10, usize::MAX).unwrap().len(), 3);
    }

    #[test]
    fn failing_writes_change_nothing_and_show_in_health() {
        let store = MemoryStore::new();
        let (shard, _) = record(0);
        store.fail_writes(Some(StorageError::Full("no space left".into())));
        let err = store
            .append(&[record(0)], &[], SyncMode::SyncData)
            .unwrap_err();
        assert!(matches!(err, StorageError::Full(_)), "{err}");
        assert!(store.read(shard, 0, 10, 10, usize::MAX).unwrap().is_empty());
        let health = store.health();
        assert!(!health.writable);
        assert_eq!(health.write_failures, 1);
        assert!(health.last_error.unwrap().contains("no space left"));
        store.fail_writes(None);
        store.append(&[record(0)], &[], SyncMode::SyncData).unwrap();
        assert!(store.health().writable);
        assert_eq!(store.read(shard, 0, 10, 10, usize::MAX).unwrap().len(), 1);
    }
}
