//! The seam's own test suite: what the domain relies on from any engine, run against
//! every engine (`memory://` and `fjall://` today; each engine's tests call
//! [`check_all`] on a fresh store). An engine that passes behaves, for the domain, as
//! the others do.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;

use super::{
    MappingCatalogEntry, ScanFrom, ShardCatalogEntry, ShardKey, ShardTip, Store, StoredRecord,
    StreamCatalogEntry, SyncMode, TableCatalogEntry, WriteOp,
};

const SHARD: ShardKey = ShardKey {
    stream_id: 3,
    shard_index: 1,
};
const OTHER_SHARD: ShardKey = ShardKey {
    stream_id: 3,
    shard_index: 2,
};

fn record(counter: u64, arrival_ms: u64, data: &str) -> StoredRecord {
    StoredRecord {
        counter,
        arrival_ms,
        partition_key: format!("pk-{counter}"),
        data: Bytes::from(data.to_owned()),
    }
}

/// Every check, on one fresh store.
pub fn check_all(store: &dyn Store) {
    shard_logs(store);
    stream_catalog(store);
    items(store);
    mappings(store);
    resources(store);
}

/// Appends with tips, bounded reads, trims by arrival time.
fn shard_logs(store: &dyn Store) {
    assert_eq!(store.load_tip(SHARD).unwrap(), None);
    assert_eq!(store.first_counter(SHARD).unwrap(), None);
    let records: Vec<_> = (0..10)
        .map(|i| (SHARD, record(i, 1_000 + i * 10, "0123456789")))
        .collect();
    let tip = ShardTip {
        next_counter: 10,
        last_arrival_ms: 1_090,
    };
    store
        .append(&records, &[(SHARD, tip)], SyncMode::SyncData)
        .unwrap();
    store
        .append(&[(OTHER_SHARD, record(0, 5, "other"))], &[], SyncMode::Os)
        .unwrap();
    assert_eq!(store.load_tip(SHARD).unwrap(), Some(tip));

    // [from, until), in order, and nothing of another shard.
    let read = store.read(SHARD, 2, 6, 100, usize::MAX).unwrap();
    let counters: Vec<u64> = read.iter().map(|r| r.counter).collect();
    assert_eq!(counters, [2, 3, 4, 5]);
    assert_eq!(read[0], records[2].1);
    assert_eq!(store.read(SHARD, 0, 100, 3, usize::MAX).unwrap().len(), 3);
    // The byte bound stops after the record that reaches it, and always returns one.
    let by_bytes = store.read(SHARD, 0, 100, 100, 25).unwrap();
    assert_eq!(by_bytes.len(), 2, "two records of 14 bytes reach 25");
    assert_eq!(store.read(SHARD, 0, 100, 100, 1).unwrap().len(), 1);
    assert!(store.read(SHARD, 6, 6, 100, usize::MAX).unwrap().is_empty());
    assert!(store.read(SHARD, 0, 10, 0, usize::MAX).unwrap().is_empty());

    // Records that arrived before the cutoff go; later ones and other shards stay.
    assert_eq!(store.trim(SHARD, 1_035).unwrap(), 4);
    assert_eq!(store.first_counter(SHARD).unwrap(), Some(4));
    assert_eq!(
        store.read(SHARD, 0, 100, 100, usize::MAX).unwrap()[0].counter,
        4
    );
    assert_eq!(store.trim(SHARD, 1_035).unwrap(), 0);
    assert_eq!(store.first_counter(OTHER_SHARD).unwrap(), Some(0));
    assert_eq!(
        store.load_tip(SHARD).unwrap(),
        Some(tip),
        "a trim keeps the tip"
    );
}

/// Ids never handed out twice; catalog entries kept and removed with their records.
fn stream_catalog(store: &dyn Store) {
    let ids: Vec<u32> = (0..3)
        .map(|_| store.allocate_stream_id().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let entry = StreamCatalogEntry {
        stream_id: SHARD.stream_id,
        name: "s".into(),
        created_ms: 1,
        retention_ms: 86_400_000,
        shards: [SHARD, OTHER_SHARD]
            .iter()
            .map(|k| ShardCatalogEntry {
                index: k.shard_index,
                starting_hash_key: "0".into(),
                ending_hash_key: "1".into(),
                parents: Vec::new(),
                closed: false,
                ending_counter: None,
            })
            .collect(),
        tags: Default::default(),
        settings: Default::default(),
    };
    store.put_stream(&entry).unwrap();
    let mut renamed = entry.clone();
    renamed.name = "s2".into();
    store.put_stream(&renamed).unwrap();
    assert_eq!(store.load_catalog().unwrap(), [renamed.clone()]);
    store.delete_stream(&renamed).unwrap();
    assert!(store.load_catalog().unwrap().is_empty());
    assert_eq!(store.load_tip(SHARD).unwrap(), None);
    assert_eq!(store.first_counter(SHARD).unwrap(), None);
    assert_eq!(store.first_counter(OTHER_SHARD).unwrap(), None);
    assert!(store.allocate_stream_id().unwrap() > ids[2]);
}

fn put(table_id: u32, key: &str, item: &str) -> WriteOp {
    WriteOp::PutItem {
        table_id,
        key: key.as_bytes().to_vec(),
        item: item.as_bytes().to_vec(),
    }
}

/// Items by key: point reads, prefix scans both ways with `after`, limits, bytes.
fn items(store: &dyn Store) {
    let a = store.allocate_table_id().unwrap();
    let b = store.allocate_table_id().unwrap();
    assert_ne!(a, b);
    let entry = |table_id: u32, name: &str| TableCatalogEntry {
        table_id,
        name: name.into(),
        created_ms: 1,
        hash_key: super::KeyAttributeEntry {
            name: "ID".into(),
            kind: "S".into(),
        },
        range_key: None,
        indexes: Vec::new(),
        uuid: None,
        throughput: None,
        tags: Vec::new(),
        ttl_attribute: None,
    };
    store.put_table(&entry(a, "a")).unwrap();
    store.put_table(&entry(b, "b")).unwrap();
    assert_eq!(store.load_tables().unwrap().len(), 2);

    let ops: Vec<WriteOp> = ["k1", "k2", "k3", "x1"]
        .iter()
        .map(|k| put(a, k, &format!("item-{k}")))
        .chain([put(b, "k1", "other table")])
        .collect();
    store.apply(&ops, SyncMode::Os).unwrap();
    assert_eq!(
        store.get_item(a, b"k2").unwrap().as_deref(),
        Some(&b"item-k2"[..])
    );
    assert_eq!(store.get_item(a, b"nope").unwrap(), None);
    let keys = |v: Vec<(Vec<u8>, Bytes)>| -> Vec<String> {
        v.into_iter()
            .map(|(k, _)| String::from_utf8(k).unwrap())
            .collect()
    };
    let all = store
        .scan_items(a, b"", ScanFrom::Start, false, 100, usize::MAX)
        .unwrap();
    assert_eq!(keys(all), ["k1", "k2", "k3", "x1"]);
    let k = store
        .scan_items(a, b"k", ScanFrom::Start, false, 100, usize::MAX)
        .unwrap();
    assert_eq!(keys(k), ["k1", "k2", "k3"]);
    let after = store
        .scan_items(a, b"k", ScanFrom::After(b"k1"), false, 100, usize::MAX)
        .unwrap();
    assert_eq!(keys(after), ["k2", "k3"]);
    let back = store
        .scan_items(a, b"k", ScanFrom::After(b"k3"), true, 100, usize::MAX)
        .unwrap();
    assert_eq!(keys(back), ["k2", "k1"]);
    // At a key: it is included when there, else the next one in the direction of travel.
    let at = |from: &[u8], reverse| {
        keys(
            store
                .scan_items(a, b"k", ScanFrom::At(from), reverse, 100, usize::MAX)
                .unwrap(),
        )
    };
    assert_eq!(at(b"k2", false), ["k2", "k3"]);
    assert_eq!(at(b"k2", true), ["k2", "k1"]);
    assert_eq!(at(b"k15", false), ["k2", "k3"]);
    assert_eq!(at(b"k15", true), ["k1"]);
    let rev = store
        .scan_items(a, b"", ScanFrom::Start, true, 2, usize::MAX)
        .unwrap();
    assert_eq!(keys(rev), ["x1", "k3"]);
    // The byte budget: the item that reaches it is the last.
    let bytes = store
        .scan_items(a, b"", ScanFrom::Start, false, 100, 8)
        .unwrap();
    assert_eq!(keys(bytes), ["k1", "k2"]);
    assert_eq!(store.count_items(a).unwrap(), 4);

    store
        .apply(
            &[
                WriteOp::DeleteItem {
                    table_id: a,
                    key: b"k2".to_vec(),
                },
                put(a, "k1", "replaced"),
            ],
            SyncMode::SyncData,
        )
        .unwrap();
    assert_eq!(store.get_item(a, b"k2").unwrap(), None);
    assert_eq!(
        store.get_item(a, b"k1").unwrap().as_deref(),
        Some(&b"replaced"[..])
    );
    store.delete_table(a).unwrap();
    assert_eq!(store.count_items(a).unwrap(), 0);
    assert_eq!(store.load_tables().unwrap().len(), 1);
    assert_eq!(store.count_items(b).unwrap(), 1);
}

/// Checkpoints written with items in one batch; dead letters in id order.
fn mappings(store: &dyn Store) {
    let id = store.allocate_mapping_id().unwrap();
    let entry = MappingCatalogEntry {
        mapping_id: id,
        uuid: "u".into(),
        function: "f".into(),
        stream_id: SHARD.stream_id,
        created_ms: 1,
        stream_name: Some("s".into()),
    };
    store.put_mapping(&entry).unwrap();
    assert_eq!(store.load_mappings().unwrap(), [entry]);
    assert_eq!(store.load_checkpoint(id, SHARD).unwrap(), None);
    let table = store.allocate_table_id().unwrap();
    let mut ops = vec![
        put(table, "item", "v"),
        WriteOp::Checkpoint {
            mapping_id: id,
            shard: SHARD,
            next_counter: 42,
        },
    ];
    ops.extend((1..=5).map(|n| WriteOp::DeadLetter {
        mapping_id: id,
        id: n,
        record: format!("dead-{n}").into_bytes(),
    }));
    store.apply(&ops, SyncMode::Os).unwrap();
    assert_eq!(store.load_checkpoint(id, SHARD).unwrap(), Some(42));
    assert_eq!(store.load_checkpoint(id, OTHER_SHARD).unwrap(), None);
    let letters = store.dead_letters(id, Some(2), 2).unwrap();
    let ids: Vec<u64> = letters.iter().map(|(n, _)| *n).collect();
    assert_eq!(ids, [3, 4]);
    assert_eq!(letters[0].1, Bytes::from_static(b"dead-3"));
    assert_eq!(store.dead_letters(id, None, 100).unwrap().len(), 5);
    assert!(store.dead_letters(id + 1, None, 100).unwrap().is_empty());

    // Deleting a mapping takes its checkpoints, not its dead letters.
    store.delete_mapping(id).unwrap();
    assert!(store.load_mappings().unwrap().is_empty());
    assert_eq!(store.load_checkpoint(id, SHARD).unwrap(), None);
    assert_eq!(store.dead_letters(id, None, 100).unwrap().len(), 5);
}

/// Documents by kind and name: one kind never lists another's, even as a prefix.
fn resources(store: &dyn Store) {
    store.put_resource("iam.role", "b", b"2").unwrap();
    store.put_resource("iam.role", "a", b"1").unwrap();
    store.put_resource("iam.roles", "c", b"3").unwrap();
    let listed = store.list_resources("iam.role").unwrap();
    let names: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(
        store.get_resource("iam.role", "a").unwrap().as_deref(),
        Some(&b"1"[..])
    );
    store.delete_resource("iam.role", "a").unwrap();
    store.delete_resource("iam.role", "never there").unwrap();
    assert_eq!(store.get_resource("iam.role", "a").unwrap(), None);
    assert_eq!(store.list_resources("iam.roles").unwrap().len(), 1);
}
