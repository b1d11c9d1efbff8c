//! The embedded engine's on-disk key layout. STABLE: changing any encoding here breaks
//! existing data dirs; add a new prefix byte instead of changing an old one.
//!
//! All stream data lives in the fjall keyspace `streams`. Every key starts with one
//! prefix byte naming its kind; integers are big-endian so that byte order equals
//! numeric order and a shard's records are one contiguous, ordered key range.
//!
//! | kind | key | value |
//! |---|---|---|
//! | next stream id | `0x00` | u32 BE: the next stream id to hand out |
//! | stream catalog | `0x01` stream_id:u32 | JSON [`StreamCatalogEntry`](super::StreamCatalogEntry) |
//! | shard tip | `0x02` stream_id:u32 shard:u32 | next_counter:u64, last_arrival_ms:u64 |
//! | record | `0x03` stream_id:u32 shard:u32 counter:u64 | see [`encode_record_value`] |
//!
//! A record and its shard's tip are written in one atomic batch, so after a crash the
//! tip never points past or before the last record.
//!
//! Tables live in the keyspace `tables`:
//!
//! | kind | key | value |
//! |---|---|---|
//! | next table id | `0x10` | u32 BE |
//! | table catalog | `0x11` table_id:u32 | JSON [`TableCatalogEntry`](super::TableCatalogEntry); fields added later (TableId `uuid`, `throughput`, `tags`, `ttl_attribute`, index `throughput`) are optional, so older entries still load |
//! | item | `0x12` table_id:u32 item_key | the item in DynamoDB's JSON wire form |
//!
//! `item_key` is the order-preserving encoding of the hash key, then the range key,
//! defined in `table::key`.
//!
//! Event source mappings live in the keyspace `mappings`:
//!
//! | kind | key | value |
//! |---|---|---|
//! | next mapping id | `0x20` | u32 BE |
//! | mapping catalog | `0x21` mapping_id:u32 | JSON [`MappingCatalogEntry`](super::MappingCatalogEntry) |
//! | checkpoint | `0x22` mapping_id:u32 stream_id:u32 shard:u32 | next_counter:u64 BE |
//! | dead letter | `0x23` mapping_id:u32 id:u64 | JSON, Lambda's on-failure record |
//!
//! A mapping writes its function's items and its checkpoint in one atomic batch.
//!
//! Control-plane resources (IAM roles, Lambda functions, API Gateway APIs, queues: what
//! the AWS control-plane APIs create) also live in the keyspace `mappings`:
//!
//! | kind | key | value |
//! |---|---|---|
//! | resource | `0x30` kind (ASCII, no NUL) `0x00` name (UTF-8) | the resource's own document, JSON |
//!
//! The kind names the document's type (`iam.role`, `lambda.function`, ...); a resource's
//! name is unique within its kind. Keys of one kind are one contiguous range, in the
//! byte order of their names.

use super::{ShardKey, ShardTip, StorageError, StoredRecord};
use std::ops::Bound::{self, Excluded, Included};

pub const NEXT_STREAM_ID: u8 = 0x00;
pub const STREAM_CATALOG: u8 = 0x01;
pub const SHARD_TIP: u8 = 0x02;
pub const RECORD: u8 = 0x03;

pub const NEXT_TABLE_ID: u8 = 0x10;
pub const TABLE_CATALOG: u8 = 0x11;
pub const ITEM: u8 = 0x12;

pub const NEXT_MAPPING_ID: u8 = 0x20;
pub const MAPPING_CATALOG: u8 = 0x21;
pub const CHECKPOINT: u8 = 0x22;
pub const DEAD_LETTER: u8 = 0x23;

pub const RESOURCE: u8 = 0x30;

/// The key prefix of every resource of `kind`: `0x30 kind 0x00`.
pub fn resource_prefix(kind: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + kind.len());
    k.push(RESOURCE);
    k.extend_from_slice(kind.as_bytes());
    k.push(0);
    k
}

/// The key of one resource: [`resource_prefix`] then the name.
pub fn resource_key(kind: &str, name: &str) -> Vec<u8> {
    let mut k = resource_prefix(kind);
    k.extend_from_slice(name.as_bytes());
    k
}

/// `prefix` then a big-endian u32: the catalog keys and the item-key prefix of a table.
pub fn prefixed_id(prefix: u8, id: u32) -> [u8; 5] {
    let mut k = [0u8; 5];
    k[0] = prefix;
    k[1..5].copy_from_slice(&id.to_be_bytes());
    k
}

pub fn item_key(table_id: u32, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(5 + key.len());
    k.extend_from_slice(&prefixed_id(ITEM, table_id));
    k.extend_from_slice(key);
    k
}

pub fn checkpoint_key(mapping_id: u32, shard: ShardKey) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[..5].copy_from_slice(&prefixed_id(CHECKPOINT, mapping_id));
    k[5..9].copy_from_slice(&shard.stream_id.to_be_bytes());
    k[9..13].copy_from_slice(&shard.shard_index.to_be_bytes());
    k
}

pub fn dead_letter_key(mapping_id: u32, id: u64) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[..5].copy_from_slice(&prefixed_id(DEAD_LETTER, mapping_id));
    k[5..13].copy_from_slice(&id.to_be_bytes());
    k
}

/// The id in a [`dead_letter_key`].
pub fn dead_letter_key_id(key: &[u8]) -> Result<u64, StorageError> {
    key.get(5..13)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StorageError::Corrupt("dead letter key".into()))
}

/// A checkpoint's value: the counter of the shard's next record, 8 bytes big-endian.
pub fn decode_checkpoint(v: &[u8]) -> Result<u64, StorageError> {
    v.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| StorageError::Corrupt("checkpoint".into()))
}

/// The stored keys a scan of `table_id`'s items under `prefix` covers from `from` in its
/// direction of travel: the bounds of an ordered range over [`item_key`]s.
pub fn item_range(
    table_id: u32,
    prefix: &[u8],
    from: super::ScanFrom<'_>,
    reverse: bool,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    use super::ScanFrom;
    let low = item_key(table_id, prefix);
    let high = prefix_successor(&low);
    match (from, reverse) {
        (ScanFrom::Start, _) => (Included(low), Excluded(high)),
        (ScanFrom::After(a), false) => (Excluded(item_key(table_id, a)), Excluded(high)),
        (ScanFrom::At(a), false) => (Included(item_key(table_id, a)), Excluded(high)),
        (ScanFrom::After(a), true) => (Included(low), Excluded(item_key(table_id, a))),
        (ScanFrom::At(a), true) => (Included(low), Included(item_key(table_id, a))),
    }
}

/// The smallest key greater than every key starting with `prefix` (the exclusive end
/// of a prefix range).
pub fn prefix_successor(prefix: &[u8]) -> Vec<u8> {
    let mut s = prefix.to_vec();
    while let Some(last) = s.pop() {
        if last < 0xFF {
            s.push(last + 1);
            return s;
        }
    }
    vec![0xFF; prefix.len() + 1]
}

/// Version byte leading each record value.
const RECORD_VALUE_V1: u8 = 1;

pub fn next_stream_id_key() -> [u8; 1] {
    [NEXT_STREAM_ID]
}

pub fn catalog_key(stream_id: u32) -> [u8; 5] {
    prefixed_id(STREAM_CATALOG, stream_id)
}

pub fn tip_key(shard: ShardKey) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = SHARD_TIP;
    k[1..5].copy_from_slice(&shard.stream_id.to_be_bytes());
    k[5..9].copy_from_slice(&shard.shard_index.to_be_bytes());
    k
}

/// The 9-byte prefix shared by all records of a shard.
pub fn record_prefix(shard: ShardKey) -> [u8; 9] {
    let mut k = tip_key(shard);
    k[0] = RECORD;
    k
}

pub fn record_key(shard: ShardKey, counter: u64) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[..9].copy_from_slice(&record_prefix(shard));
    k[9..17].copy_from_slice(&counter.to_be_bytes());
    k
}

/// Counter of a record key.
pub fn record_key_counter(key: &[u8]) -> Result<u64, StorageError> {
    key.get(9..17)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StorageError::Corrupt(format!("record key of {} bytes", key.len())))
}

/// Record value: `version:u8 = 1 | arrival_ms:u64 | partition_key_len:u16 |
/// partition_key (UTF-8) | data`.
pub fn encode_record_value(r: &StoredRecord) -> Vec<u8> {
    let pk = r.partition_key.as_bytes();
    let mut v = Vec::with_capacity(11 + pk.len() + r.data.len());
    v.push(RECORD_VALUE_V1);
    v.extend_from_slice(&r.arrival_ms.to_be_bytes());
    v.extend_from_slice(&(pk.len() as u16).to_be_bytes());
    v.extend_from_slice(pk);
    v.extend_from_slice(&r.data);
    v
}

pub fn decode_record_value(counter: u64, v: &[u8]) -> Result<StoredRecord, StorageError> {
    let corrupt = || StorageError::Corrupt(format!("record value #{counter}"));
    if v.first() != Some(&RECORD_VALUE_V1) || v.len() < 11 {
        return Err(corrupt());
    }
    let arrival_ms = u64::from_be_bytes(v[1..9].try_into().map_err(|_| corrupt())?);
    let pk_len = u16::from_be_bytes(v[9..11].try_into().map_err(|_| corrupt())?) as usize;
    let pk = v.get(11..11 + pk_len).ok_or_else(corrupt)?;
    let partition_key = String::from_utf8(pk.to_vec()).map_err(|_| corrupt())?;
    Ok(StoredRecord {
        counter,
        arrival_ms,
        partition_key,
        data: bytes::Bytes::copy_from_slice(&v[11 + pk_len..]),
    })
}

pub fn encode_tip(t: ShardTip) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&t.next_counter.to_be_bytes());
    v[8..].copy_from_slice(&t.last_arrival_ms.to_be_bytes());
    v
}

pub fn decode_tip(v: &[u8]) -> Result<ShardTip, StorageError> {
    if v.len() != 16 {
        return Err(StorageError::Corrupt(format!(
            "shard tip of {} bytes",
            v.len()
        )));
    }
    Ok(ShardTip {
        next_counter: u64::from_be_bytes(v[..8].try_into().expect("8 bytes")),
        last_arrival_ms: u64::from_be_bytes(v[8..].try_into().expect("8 bytes")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout_is_stable() {
        let shard = ShardKey {
            stream_id: 1,
            shard_index: 2,
        };
        assert_eq!(
            record_key(shard, 258),
            [3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 1, 2]
        );
        assert_eq!(tip_key(shard), [2, 0, 0, 0, 1, 0, 0, 0, 2]);
        assert_eq!(catalog_key(7), [1, 0, 0, 0, 7]);
        assert_eq!(item_key(5, b"k"), [0x12, 0, 0, 0, 5, b'k']);
        assert_eq!(
            checkpoint_key(1, shard),
            [0x22, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2]
        );
        assert_eq!(
            dead_letter_key(1, 3),
            [0x23, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 3]
        );
    }

    proptest! {
        #[test]
        fn record_keys_sort_by_counter(a: u64, b: u64) {
            let s = ShardKey { stream_id: 9, shard_index: 3 };
            prop_assert_eq!(record_key(s, a).cmp(&record_key(s, b)), a.cmp(&b));
        }

        #[test]
        fn record_values_round_trip(arrival: u64, pk in "\\PC{1,256}", data: Vec<u8>, counter: u64) {
            let r = StoredRecord { counter, arrival_ms: arrival, partition_key: pk, data: data.into() };
            prop_assert_eq!(decode_record_value(counter, &encode_record_value(&r)).unwrap(), r);
        }
    }
}
