//! Tables: DynamoDB's item model on one machine.
//!
//! Items are maps of attribute values ([`value`]), numbers are exact decimals
//! ([`number`]), and each table has a hash key and an optional range key of type S, N or
//! B, encoded into order-preserving item keys ([`key`]). Put, get, delete and an ordered
//! scan with a resumable cursor. Knows nothing of HTTP.

mod admin;
pub mod partition;
pub mod plan;

// The item model is its own crate (`crates/item`), re-exported where the domain
// always had it.
pub use spillway_item::{expr, key, number, reserved, value};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

pub use self::admin::{Lifecycle, NewTable, run_ttl_sweep};
pub use self::number::Number;
pub use self::value::{AttributeValue, Item};
use crate::storage::{
    KeyAttributeEntry, ScanFrom, StorageError, Store, SyncMode, TableCatalogEntry, WriteOp,
};
use crate::stream::now_ms;

/// Largest item: attribute names plus values, in bytes (DynamoDB: 400 KB).
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// Longest hash key (S or B), in bytes, as DynamoDB allows.
pub const MAX_HASH_KEY_BYTES: usize = 2048;
/// Longest range key (S or B), in bytes.
pub const MAX_RANGE_KEY_BYTES: usize = 1024;

/// Errors of the table domain.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("Requested resource not found: Table: {0} not found")]
    TableNotFound(String),
    #[error("{0}")]
    Validation(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Config(String),
    #[error("Table already exists: {0}")]
    ResourceInUse(String),
    /// A ResourceInUseException with its own message.
    #[error("{0}")]
    InUse(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("The conditional request failed")]
    ConditionalCheckFailed {
        /// The item as it was, for ReturnValuesOnConditionCheckFailure.
        old: Option<Box<Item>>,
    },
}

/// Key attribute types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    S,
    N,
    B,
}

impl KeyType {
    pub fn parse(t: &str) -> Option<Self> {
        match t {
            "S" => Some(Self::S),
            "N" => Some(Self::N),
            "B" => Some(Self::B),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::S => "S",
            Self::N => "N",
            Self::B => "B",
        }
    }

    fn matches(self, v: &AttributeValue) -> bool {
        matches!(
            (self, v),
            (Self::S, AttributeValue::S(_))
                | (Self::N, AttributeValue::N(_))
                | (Self::B, AttributeValue::B(_))
        )
    }
}

/// One key attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAttribute {
    pub name: String,
    pub kind: KeyType,
}

/// A table at run time.
#[derive(Debug)]
pub struct TableState {
    pub name: String,
    pub arn: String,
    pub table_id: u32,
    pub created_ms: u64,
    pub hash_key: KeyAttribute,
    pub range_key: Option<KeyAttribute>,
    pub indexes: Vec<Index>,
    /// The catalog entry as stored (TableId, throughput, tags, TTL).
    pub entry: TableCatalogEntry,
    /// CREATING, ACTIVE, UPDATING or DELETING, and each index's status; shared by the
    /// states that replace this one when the table changes.
    pub status: Arc<Lifecycle>,
}

/// A secondary index at run time.
#[derive(Debug, Clone)]
pub struct Index {
    pub name: String,
    pub hash_key: KeyAttribute,
    pub range_key: Option<KeyAttribute>,
    pub local: bool,
    pub projection: String,
    pub non_key_attributes: Vec<String>,
}

impl Index {
    /// Whether `item` appears in this index (it has the index's key attributes, typed).
    pub fn holds(&self, item: &Item) -> bool {
        std::iter::once(&self.hash_key)
            .chain(self.range_key.as_ref())
            .all(|k| item.get(&k.name).is_some_and(|v| k.kind.matches(v)))
    }
}

/// Builds a table's run-time state from its catalog entry.
fn build_state(
    region: &str,
    account: &str,
    e: &TableCatalogEntry,
    status: Arc<Lifecycle>,
) -> Result<TableState, TableError> {
    Ok(TableState {
        entry: e.clone(),
        status,
        arn: format!("arn:aws:dynamodb:{region}:{account}:table/{}", e.name),
        hash_key: key_attribute(&e.hash_key)?,
        range_key: e.range_key.as_ref().map(key_attribute).transpose()?,
        name: e.name.clone(),
        table_id: e.table_id,
        created_ms: e.created_ms,
        indexes: e
            .indexes
            .iter()
            .map(|i| {
                Ok(Index {
                    name: i.name.clone(),
                    hash_key: key_attribute(&i.hash_key)?,
                    range_key: i.range_key.as_ref().map(key_attribute).transpose()?,
                    local: i.local,
                    projection: i.projection.clone(),
                    non_key_attributes: i.non_key_attributes.clone(),
                })
            })
            .collect::<Result<_, TableError>>()?,
    })
}

/// Where DynamoDB puts an item among items of equal index keys: the first three bytes
/// of MD5("Outliers", hash key, range key) (string and binary keys; a number key sorts
/// by its own encoding).
fn tie_order(t: &TableState, item: &Item) -> Vec<u8> {
    use md5::{Digest, Md5};
    let raw = |v: Option<&AttributeValue>| -> Option<Vec<u8>> {
        match v {
            Some(AttributeValue::S(s)) => Some(s.as_bytes().to_vec()),
            Some(AttributeValue::B(b)) => Some(b.to_vec()),
            None => Some(Vec::new()),
            _ => None,
        }
    };
    let (Some(h), Some(r)) = (
        raw(item.get(&t.hash_key.name)),
        raw(t.range_key.as_ref().and_then(|r| item.get(&r.name))),
    ) else {
        return Vec::new();
    };
    let mut md = Md5::new();
    md.update(b"Outliers");
    md.update(&h);
    md.update(&r);
    md.finalize()[..3].to_vec()
}

/// DynamoDB's key size limits for S and B (numbers are bounded by their own rules).
fn key_size(hash: bool, v: &AttributeValue) -> Result<(), TableError> {
    let len = match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::B(b) => b.len(),
        _ => 0,
    };
    if hash && len > MAX_HASH_KEY_BYTES {
        return Err(TableError::Validation(format!(
            "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of{MAX_HASH_KEY_BYTES} bytes"
        )));
    }
    if !hash && len > MAX_RANGE_KEY_BYTES {
        return Err(TableError::Validation(format!(
            "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of {MAX_RANGE_KEY_BYTES} bytes"
        )));
    }
    Ok(())
}

impl TableState {
    /// Validates the key attributes of `item` (which may hold more) and encodes them.
    pub fn encode_key(&self, item: &Item) -> Result<Vec<u8>, TableError> {
        let mut out = Vec::new();
        for (i, k) in std::iter::once(&self.hash_key)
            .chain(self.range_key.as_ref())
            .enumerate()
        {
            let v = item.get(&k.name).ok_or_else(|| {
                TableError::Validation(format!(
                    "One or more parameter values were invalid: Missing the key {} in the item",
                    k.name
                ))
            })?;
            if !k.kind.matches(v) {
                return Err(TableError::Validation(format!(
                    "One or more parameter values were invalid: Type mismatch for key {} expected: {} actual: {}",
                    k.name,
                    k.kind.as_str(),
                    v.type_name()
                )));
            }
            let empty = match v {
                AttributeValue::S(s) => s.is_empty(),
                AttributeValue::B(b) => b.is_empty(),
                _ => false,
            };
            if empty {
                return Err(TableError::Validation(format!(
                    "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty {} value. Key: {}",
                    if matches!(v, AttributeValue::S(_)) {
                        "string"
                    } else {
                        "binary"
                    },
                    k.name
                )));
            }
            key_size(i == 0, v)?;
            key::encode_part(v, &mut out);
        }
        Ok(out)
    }

    /// Refuses key attributes over DynamoDB's size limits (absent ones are not checked).
    pub fn check_key_sizes(&self, item: &Item) -> Result<(), TableError> {
        for (i, k) in std::iter::once(&self.hash_key)
            .chain(self.range_key.as_ref())
            .enumerate()
        {
            if let Some(v) = item.get(&k.name) {
                key_size(i == 0, v)?;
            }
        }
        Ok(())
    }

    /// The key attributes of `item`, as an item (for LastEvaluatedKey).
    pub fn key_of(&self, item: &Item) -> Item {
        std::iter::once(&self.hash_key)
            .chain(self.range_key.as_ref())
            .filter_map(|k| item.get(&k.name).map(|v| (k.name.clone(), v.clone())))
            .collect()
    }

    /// Validates a whole item for a put and returns the write.
    pub fn prepare_put(&self, item: &Item) -> Result<WriteOp, TableError> {
        let key = self.encode_key(item)?;
        let size = value::item_size(item);
        if size > MAX_ITEM_BYTES {
            return Err(TableError::Validation(
                "Item size has exceeded the maximum allowed size".into(),
            ));
        }
        Ok(WriteOp::PutItem {
            table_id: self.table_id,
            key,
            item: serde_json::to_vec(&value::item_to_json(item)).expect("items serialize"),
        })
    }
}

/// What [`Tables`] takes from the configuration, built by
/// `crate::config::Config::tables_settings`: the table domain never reads the TOML
/// schema, and the catalog's key attributes never change with it.
#[derive(Debug, Clone)]
pub struct TablesSettings {
    pub region: String,
    pub account_id: String,
    /// Tables allowed in the account.
    pub table_limit: usize,
    /// How long CreateTable, DeleteTable and UpdateTable keep a table in transition.
    pub create_delay_ms: u64,
    pub delete_delay_ms: u64,
    pub update_delay_ms: u64,
    /// Fsync table writes (`durability = "fsync"`).
    pub fsync: bool,
    /// The tables the configuration declares (created at start when missing).
    pub tables: Vec<DeclaredTable>,
}

/// A table the configuration declares: its name and key attributes as the catalog
/// keeps them.
#[derive(Debug, Clone)]
pub struct DeclaredTable {
    pub name: String,
    pub hash_key: KeyAttributeEntry,
    pub range_key: Option<KeyAttributeEntry>,
}

/// All tables of this process.
pub struct Tables {
    store: Arc<dyn Store>,
    region: String,
    account_id: String,
    by_name: RwLock<BTreeMap<String, Arc<TableState>>>,
    /// Serialises read-modify-write sequences (conditions, returned old items).
    write_lock: Mutex<()>,
    /// Writes batches of concurrent requests with one fsync (group commit).
    writer: crate::storage::table_writer::TableWriter,
    /// Tables allowed in the account.
    table_limit: usize,
    /// Lifecycle delays.
    config: TablesSettings,
}

impl std::fmt::Debug for Tables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tables").finish_non_exhaustive()
    }
}

fn decode_item(bytes: &[u8]) -> Result<Item, TableError> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| StorageError::Corrupt(format!("item: {e}")))?;
    value::stored_item_from_json(&v).map_err(|e| StorageError::Corrupt(format!("item: {e}")).into())
}

fn key_attribute(entry: &KeyAttributeEntry) -> Result<KeyAttribute, TableError> {
    Ok(KeyAttribute {
        name: entry.name.clone(),
        kind: KeyType::parse(&entry.kind).ok_or_else(|| {
            TableError::Config(format!(
                "key attribute `{}`: type must be S, N or B, got `{}`",
                entry.name, entry.kind
            ))
        })?,
    })
}

impl Tables {
    /// Loads the catalog and creates the configured tables that do not exist yet.
    pub fn open(store: Arc<dyn Store>, config: &TablesSettings) -> Result<Self, TableError> {
        let mut catalog: BTreeMap<String, TableCatalogEntry> = store
            .load_tables()?
            .into_iter()
            .map(|e| (e.name.clone(), e))
            .collect();
        for tc in &config.tables {
            let (hash_key, range_key) = (tc.hash_key.clone(), tc.range_key.clone());
            let wanted = |id: u32, created_ms: u64| TableCatalogEntry {
                table_id: id,
                name: tc.name.clone(),
                created_ms,
                hash_key: hash_key.clone(),
                range_key: range_key.clone(),
                indexes: Vec::new(),
                uuid: Some(uuid::Uuid::new_v4().to_string()),
                throughput: None,
                tags: Vec::new(),
                ttl_attribute: None,
            };
            match catalog.get(&tc.name) {
                Some(existing) => {
                    if existing.hash_key != hash_key || existing.range_key != range_key {
                        return Err(TableError::Config(format!(
                            "table `{}` exists in the data dir with another key schema; \
                             change the config back or use a new data dir",
                            tc.name
                        )));
                    }
                }
                None => {
                    let entry = wanted(store.allocate_table_id()?, now_ms());
                    key_attribute(&entry.hash_key)?;
                    store.put_table(&entry)?;
                    tracing::info!(table = %entry.name, "created table");
                    catalog.insert(entry.name.clone(), entry);
                }
            }
        }
        let mut by_name = BTreeMap::new();
        for e in catalog.into_values() {
            let state = build_state(
                &config.region,
                &config.account_id,
                &e,
                Arc::new(Lifecycle::active()),
            )?;
            by_name.insert(state.name.clone(), Arc::new(state));
        }
        Ok(Self {
            region: config.region.clone(),
            account_id: config.account_id.clone(),
            by_name: RwLock::new(by_name),
            write_lock: Mutex::new(()),
            table_limit: config.table_limit,
            config: config.clone(),
            writer: crate::storage::table_writer::TableWriter::start(
                Arc::clone(&store),
                config.fsync,
            ),
            store,
        })
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    pub fn all(&self) -> Vec<Arc<TableState>> {
        self.by_name
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// A table that takes item requests (not CREATING or DELETING, which DynamoDB
    /// answers as not found).
    pub fn get(&self, name: &str) -> Result<Arc<TableState>, TableError> {
        let t = self.describe(name)?;
        if matches!(t.status.table(), "CREATING" | "DELETING") {
            return Err(TableError::TableNotFound(name.to_owned()));
        }
        Ok(t)
    }

    /// A table in any state (DescribeTable, DeleteTable, UpdateTable, tags, TTL).
    pub fn describe(&self, name: &str) -> Result<Arc<TableState>, TableError> {
        self.by_name
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| TableError::TableNotFound(name.to_owned()))
    }

    /// Puts an item durably; returns the item it replaced.
    pub fn put_item(&self, table: &str, item: &Item) -> Result<Option<Item>, TableError> {
        let key = self.get(table)?.key_of(item);
        Ok(self
            .modify(table, &key, SyncMode::SyncData, |_| Ok(Some(item.clone())))?
            .0)
    }

    /// The item with the given key attributes.
    pub fn get_item(&self, table: &str, key: &Item) -> Result<Option<Item>, TableError> {
        let t = self.get(table)?;
        let k = t.encode_key(key)?;
        self.get_encoded(&t, &k)
    }

    /// The item under `key`, counting writes queued but not yet written.
    fn get_encoded(&self, t: &TableState, key: &[u8]) -> Result<Option<Item>, TableError> {
        let bytes = match self.writer.pending(t.table_id, key) {
            Some(queued) => queued,
            None => self.store.get_item(t.table_id, key)?,
        };
        bytes.map(|b| decode_item(&b)).transpose()
    }

    /// Queues writes decided under the write lock; the caller drops the lock, then waits.
    fn submit(
        &self,
        ops: Vec<WriteOp>,
        sync: SyncMode,
    ) -> std::sync::mpsc::Receiver<Result<(), String>> {
        self.writer.submit(ops, sync == SyncMode::SyncData)
    }

    /// Waits for queued writes to be written (and fsynced, if asked).
    fn settle(answer: std::sync::mpsc::Receiver<Result<(), String>>) -> Result<(), TableError> {
        match answer.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(TableError::Storage(StorageError::Io(e))),
            Err(_) => Err(TableError::Storage(StorageError::Io(
                "the table writer has stopped".into(),
            ))),
        }
    }

    /// Deletes an item durably; returns it.
    pub fn delete_item(&self, table: &str, key: &Item) -> Result<Option<Item>, TableError> {
        Ok(self.modify(table, key, SyncMode::SyncData, |_| Ok(None))?.0)
    }

    /// Item writes (puts and deletes) made durable since start, by table id.
    pub fn writes_by_table(&self) -> std::collections::HashMap<u32, u64> {
        self.writer.written()
    }

    /// Number of items (counted, so exact).
    pub fn count(&self, table: &str) -> Result<u64, TableError> {
        let t = self.get(table)?;
        Ok(self.store.count_items(t.table_id)?)
    }

    /// Applies prepared writes (and any checkpoint or dead letter) in one atomic batch.
    pub fn commit(&self, ops: &[WriteOp], sync: SyncMode) -> Result<(), TableError> {
        let answer = {
            let _g = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
            self.submit(ops.to_vec(), sync)
        };
        Self::settle(answer)
    }
}

fn op_key(op: &WriteOp) -> &[u8] {
    match op {
        WriteOp::PutItem { key, .. } | WriteOp::DeleteItem { key, .. } => key,
        _ => &[],
    }
}

/// One page of a query or scan, before projection.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Item>,
    /// Items read (before any filter).
    pub scanned: usize,
    pub last_evaluated_key: Option<Item>,
}

impl Tables {
    fn state_of(
        &self,
        e: &TableCatalogEntry,
        status: Arc<admin::Lifecycle>,
    ) -> Result<TableState, TableError> {
        build_state(&self.region, &self.account_id, e, status)
    }

    /// A Query or Scan of a secondary index: the items holding the index's keys (with
    /// hash `hash` for a Query), ordered by the index's range key then the table's key.
    /// Computed by a pass over the table: indexes are not materialised on one machine.
    #[allow(clippy::too_many_arguments)]
    pub fn index_page(
        &self,
        table: &str,
        index: &str,
        hash: Option<&AttributeValue>,
        forward: bool,
        start_after: Option<&Item>,
        limit: usize,
        keep: &dyn Fn(&Item) -> bool,
    ) -> Result<Page, TableError> {
        let t = self.get(table)?;
        let ix = t
            .indexes
            .iter()
            .find(|i| i.name == index)
            .cloned()
            .ok_or_else(|| {
                TableError::Validation(format!(
                    "The table does not have the specified index: {index}"
                ))
            })?;
        let sort_key = |item: &Item| -> Vec<u8> {
            let mut k = Vec::new();
            for a in std::iter::once(&ix.hash_key).chain(ix.range_key.as_ref()) {
                if let Some(v) = item.get(&a.name) {
                    key::encode_part(v, &mut k);
                }
            }
            // Items with equal index keys come in the order DynamoDB gives them: by a
            // hash of their table key, then the key itself.
            k.extend(tie_order(&t, item));
            k.extend(t.encode_key(item).unwrap_or_default());
            k
        };
        let mut rows: Vec<(Vec<u8>, Item)> = Vec::new();
        self.for_each_stored(&t, |v| {
            let item = decode_item(v)?;
            if ix.holds(&item)
                && hash.is_none_or(|h| item.get(&ix.hash_key.name) == Some(h))
                && keep(&item)
            {
                rows.push((sort_key(&item), item));
            }
            Ok(())
        })?;
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        if !forward {
            rows.reverse();
        }
        let start = match start_after {
            Some(s) => {
                let k = sort_key(s);
                rows.iter()
                    .position(|(rk, _)| if forward { *rk > k } else { *rk < k })
                    .unwrap_or(rows.len())
            }
            None => 0,
        };
        let limit = limit.max(1);
        let rest = &rows[start..];
        let range_key = t.range_key.as_ref().map(|r| r.name.as_str());
        let mut items: Vec<Item> = Vec::new();
        let mut bytes = 0;
        for (_, i) in rest.iter().take(limit) {
            bytes += value::page_size(i, range_key);
            items.push(i.clone());
            if bytes >= 1024 * 1024 {
                break;
            }
        }
        let more = rest.len() > items.len() || items.len() == limit || bytes >= 1024 * 1024;
        let last_evaluated_key = if more {
            items.last().map(|i| {
                let mut k = t.key_of(i);
                for a in std::iter::once(&ix.hash_key).chain(ix.range_key.as_ref()) {
                    if let Some(v) = i.get(&a.name) {
                        k.insert(a.name.clone(), v.clone());
                    }
                }
                k
            })
        } else {
            None
        };
        Ok(Page {
            scanned: items.len(),
            items,
            last_evaluated_key,
        })
    }

    /// Item count and total stored size, by a full pass (DescribeTable).
    pub fn stats(&self, table: &str) -> Result<(u64, u64), TableError> {
        let t = self.describe(table)?;
        let (mut count, mut bytes) = (0u64, 0u64);
        self.for_each_stored(&t, |v| {
            count += 1;
            bytes += decode_item(v)
                .map(|i| value::item_size(&i) as u64)
                .unwrap_or(0);
            Ok(())
        })?;
        Ok((count, bytes))
    }

    /// A full pass over a table's stored items (encoded), in key order, read from
    /// storage 10,000 at a time.
    fn for_each_stored(
        &self,
        t: &TableState,
        mut each: impl FnMut(&[u8]) -> Result<(), TableError>,
    ) -> Result<(), TableError> {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let batch = self.store.scan_items(
                t.table_id,
                &[],
                after.as_deref().map_or(ScanFrom::Start, ScanFrom::After),
                false,
                10_000,
                usize::MAX,
            )?;
            let Some((last, _)) = batch.last() else {
                return Ok(());
            };
            after = Some(last.clone());
            for (_, v) in &batch {
                each(v)?;
            }
        }
    }

    /// Reads, decides and writes one item under the write lock, so conditions hold
    /// against the item as written: `decide` gets the current item and returns the new
    /// one (Some: put, None: delete). Returns (old, new).
    pub fn modify(
        &self,
        table: &str,
        key: &Item,
        sync: SyncMode,
        decide: impl FnOnce(Option<&Item>) -> Result<Option<Item>, TableError>,
    ) -> Result<(Option<Item>, Option<Item>), TableError> {
        let t = self.get(table)?;
        let k = t.encode_key(key)?;
        let _g = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.get_encoded(&t, &k)?;
        let new = decide(old.as_ref())?;
        let op = match &new {
            Some(item) => {
                let op = t.prepare_put(item)?;
                if op_key(&op) != k.as_slice() {
                    return Err(TableError::Validation(
                        "The key of the new item differs from the key given".into(),
                    ));
                }
                op
            }
            None => WriteOp::DeleteItem {
                table_id: t.table_id,
                key: k,
            },
        };
        let answer = self.submit(vec![op], sync);
        drop(_g);
        Self::settle(answer)?;
        Ok((old, new))
    }

    /// Items of one partition (hash key) that the sort-key condition selects, in
    /// range-key order or reversed, after `start_after` (an item key, inside the
    /// condition), at most `limit` items or about 1 MB. `keep` is the condition as an
    /// expression; `sort` the same condition as bounds ([`plan`]), where reading begins.
    #[allow(clippy::too_many_arguments)]
    pub fn query(
        &self,
        table: &str,
        hash: &AttributeValue,
        sort: &plan::SortKeyCondition,
        forward: bool,
        start_after: Option<&Item>,
        limit: usize,
        keep: &dyn Fn(&Item) -> bool,
    ) -> Result<Page, TableError> {
        let t = self.get(table)?;
        if !t.hash_key.kind.matches(hash) {
            return Err(TableError::Validation(
                "One or more parameter values were invalid: Condition parameter type does not match schema type".into(),
            ));
        }
        let mut prefix = Vec::new();
        key::encode_part(hash, &mut prefix);
        let after = start_after.map(|k| t.encode_key(k)).transpose()?;
        let (bound, at_run_start) = sort.start(forward);
        let mut bound_key = prefix.clone();
        let from = match (&after, bound) {
            // A page that resumes inside the run.
            (Some(a), _) => ScanFrom::After(a),
            (None, std::ops::Bound::Unbounded) => ScanFrom::Start,
            (None, std::ops::Bound::Included(v)) => {
                key::encode_part(v, &mut bound_key);
                ScanFrom::At(&bound_key)
            }
            (None, std::ops::Bound::Excluded(v)) => {
                key::encode_part(v, &mut bound_key);
                ScanFrom::After(&bound_key)
            }
        };
        let at_run_start = at_run_start || after.is_some();
        self.page(&t, &prefix, from, !forward, limit, keep, at_run_start)
    }

    /// Items of the whole table in key order, after `start_after`.
    pub fn scan_page(
        &self,
        table: &str,
        start_after: Option<&Item>,
        limit: usize,
    ) -> Result<Page, TableError> {
        let t = self.get(table)?;
        let after = start_after.map(|k| t.encode_key(k)).transpose()?;
        let from = after.as_deref().map_or(ScanFrom::Start, ScanFrom::After);
        self.page(&t, &[], from, false, limit, &|_| true, true)
    }

    /// One page: items from `from` that `keep` accepts (the key condition: items it
    /// refuses are neither returned, counted nor charged, as DynamoDB reads only the
    /// key range), at most `limit` of them or about 1 MB. The items `keep` accepts are
    /// one run: the first refused item after an accepted one ends it, and so does the
    /// first refused item at all when reading begins where the run does
    /// (`at_run_start`).
    #[allow(clippy::too_many_arguments)]
    fn page(
        &self,
        t: &TableState,
        prefix: &[u8],
        from: ScanFrom<'_>,
        reverse: bool,
        limit: usize,
        keep: &dyn Fn(&Item) -> bool,
        at_run_start: bool,
    ) -> Result<Page, TableError> {
        const PAGE_BYTES: usize = 1024 * 1024;
        // Read no more than this many stored bytes at once. Stored values (DynamoDB
        // JSON) are never smaller than the DynamoDB size of their items, and their JSON
        // syntax rarely doubles it, so this nearly always fills a 1 MB page; when it
        // does not, the page is shorter and carries a LastEvaluatedKey, as DynamoDB's
        // pages may.
        const READ_BYTES: usize = 2 * PAGE_BYTES;
        let limit = limit.max(1);
        let range_key = t.range_key.as_ref().map(|r| r.name.as_str());
        let mut cursor: Option<Vec<u8>> = None;
        let mut items = Vec::new();
        let mut bytes = 0;
        let mut read = 0usize;
        let more = loop {
            let want = limit - items.len();
            let rows = self.store.scan_items(
                t.table_id,
                prefix,
                cursor.as_deref().map_or(from, ScanFrom::After),
                reverse,
                want,
                READ_BYTES,
            )?;
            let read_all =
                rows.len() < want && rows.iter().map(|(_, v)| v.len()).sum::<usize>() < READ_BYTES;
            let mut cut = false;
            let mut run_ended = false;
            let mut batch_read = 0usize;
            for (k, v) in &rows {
                cursor = Some(k.to_vec());
                read += v.len();
                batch_read += 1;
                let item = decode_item(v)?;
                if !keep(&item) {
                    if at_run_start || !items.is_empty() {
                        run_ended = true;
                        break;
                    }
                    continue;
                }
                bytes += value::page_size(&item, range_key);
                items.push(item);
                if bytes >= PAGE_BYTES {
                    cut = true;
                    break;
                }
            }
            if run_ended {
                break false;
            }
            if cut {
                break true;
            }
            if read_all && batch_read == rows.len() {
                break false;
            }
            // Reading on while nothing was found yet: a page that stopped there would
            // carry no LastEvaluatedKey and end the query early.
            if items.len() >= limit || (read >= READ_BYTES && !items.is_empty()) || rows.is_empty()
            {
                break true;
            }
        };
        Ok(Page {
            scanned: items.len(),
            last_evaluated_key: if more {
                items.last().map(|i| t.key_of(i))
            } else {
                None
            },
            items,
        })
    }
}

/// What one step of a transaction does to its item.
#[derive(Debug, Clone)]
pub enum TxOutcome {
    Put(Item),
    Delete,
    /// A ConditionCheck: the item stays as it is.
    Keep,
}

/// Decides a transaction step from the item as it is.
pub type TxDecision<'a> = Box<dyn FnOnce(Option<&Item>) -> Result<TxOutcome, TableError> + 'a>;

/// One step of a transaction: its item, and what to make of the item as it is.
pub struct TxStep<'a> {
    pub table: String,
    pub key: Item,
    pub decide: TxDecision<'a>,
}

impl std::fmt::Debug for TxStep<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxStep")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

/// Why a transaction did not commit.
#[derive(Debug)]
pub enum TxError {
    /// Some steps' conditions failed: per step, None or the failure.
    Canceled(Vec<Option<TableError>>),
    /// The request itself is wrong.
    Invalid(TableError),
}

impl Tables {
    /// Runs every step's decision against the items as they are, under the write lock;
    /// commits all the writes in one atomic, durable batch, or none of them.
    pub fn transact(&self, steps: Vec<TxStep<'_>>) -> Result<(), TxError> {
        let _g = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut seen = std::collections::HashSet::new();
        let mut ops = Vec::new();
        let mut reasons = Vec::with_capacity(steps.len());
        let mut failed = false;
        for step in steps {
            let t = self.get(&step.table).map_err(TxError::Invalid)?;
            let k = t.encode_key(&step.key).map_err(TxError::Invalid)?;
            if !seen.insert((t.table_id, k.clone())) {
                return Err(TxError::Invalid(TableError::Validation(
                    "Transaction request cannot include multiple operations on one item".into(),
                )));
            }
            let old = self.get_encoded(&t, &k).map_err(TxError::Invalid)?;
            match (step.decide)(old.as_ref()) {
                Ok(TxOutcome::Put(item)) => {
                    let op = t.prepare_put(&item).map_err(TxError::Invalid)?;
                    ops.push(op);
                    reasons.push(None);
                }
                Ok(TxOutcome::Delete) => {
                    ops.push(WriteOp::DeleteItem {
                        table_id: t.table_id,
                        key: k,
                    });
                    reasons.push(None);
                }
                Ok(TxOutcome::Keep) => reasons.push(None),
                Err(e @ TableError::ConditionalCheckFailed { .. }) => {
                    failed = true;
                    reasons.push(Some(e));
                }
                Err(e) => return Err(TxError::Invalid(e)),
            }
        }
        if failed {
            return Err(TxError::Canceled(reasons));
        }
        let answer = self.submit(ops, SyncMode::SyncData);
        drop(_g);
        Self::settle(answer).map_err(TxError::Invalid)
    }
}

/// Builds an item from pairs: `item([("ID", AttributeValue::S("x".into()))])`.
pub fn item<const N: usize>(pairs: [(&str, AttributeValue); N]) -> Item {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::storage::fjall_engine::FjallStore;

    fn tables_with_range_key(dir: &std::path::Path) -> Tables {
        let text = crate::config::DEFAULT_TOML.replace(
            "hash_key = { name = \"ID\", type = \"S\" }",
            "hash_key = { name = \"ID\", type = \"S\" }\nrange_key = { name = \"At\", type = \"N\" }",
        );
        let config = Config::parse(&text, std::path::Path::new("t.toml")).unwrap();
        let store: Arc<dyn Store> = Arc::new(FjallStore::open(dir).unwrap());
        Tables::open(store, &config.tables_settings()).unwrap()
    }

    fn n(t: &str) -> AttributeValue {
        AttributeValue::N(Number::parse(t).unwrap())
    }

    #[test]
    fn put_get_delete_and_ordered_resumable_scan() {
        let dir = tempfile::tempdir().unwrap();
        let tables = tables_with_range_key(dir.path());
        let t = "example-table";
        for at in ["10", "-2.5", "3", "100", "0"] {
            let it = item([
                ("ID", AttributeValue::S("a".into())),
                ("At", n(at)),
                ("v", n(at)),
            ]);
            assert!(tables.put_item(t, &it).unwrap().is_none());
        }
        tables
            .put_item(
                t,
                &item([("ID", AttributeValue::S("b".into())), ("At", n("1"))]),
            )
            .unwrap();
        // Replacing returns the old item.
        let old = tables
            .put_item(
                t,
                &item([
                    ("ID", AttributeValue::S("a".into())),
                    ("At", n("3")),
                    ("v", n("33")),
                ]),
            )
            .unwrap()
            .unwrap();
        assert_eq!(old["v"], n("3"));
        let key = item([("ID", AttributeValue::S("a".into())), ("At", n("3.0"))]);
        assert_eq!(tables.get_item(t, &key).unwrap().unwrap()["v"], n("33"));

        // Scan in key order (hash, then range numerically), two at a time.
        let mut seen = Vec::new();
        let mut start = None;
        loop {
            let page = tables.scan_page(t, start.as_ref(), 2).unwrap();
            seen.extend(
                page.items
                    .iter()
                    .map(|i| (i["ID"].clone(), i["At"].clone())),
            );
            match page.last_evaluated_key {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        let a = |x: &str| (AttributeValue::S("a".into()), n(x));
        assert_eq!(
            seen,
            vec![
                a("-2.5"),
                a("0"),
                a("3"),
                a("10"),
                a("100"),
                (AttributeValue::S("b".into()), n("1"))
            ]
        );
        assert_eq!(tables.count(t).unwrap(), 6);
        assert!(tables.delete_item(t, &key).unwrap().is_some());
        assert!(tables.get_item(t, &key).unwrap().is_none());
        assert_eq!(tables.count(t).unwrap(), 5);
    }

    #[test]
    fn concurrent_conditional_writes_see_queued_writes() {
        // 16 threads race to create the same item with "create if absent": writes queued
        // for the group commit are visible to the next condition, so exactly one wins.
        let dir = tempfile::tempdir().unwrap();
        let tables = Arc::new(tables_with_range_key(dir.path()));
        let key = item([("ID", AttributeValue::S("race".into())), ("At", n("1"))]);
        let winners: usize = std::thread::scope(|s| {
            (0..16)
                .map(|i| {
                    let (tables, key) = (Arc::clone(&tables), key.clone());
                    s.spawn(move || {
                        tables
                            .modify("example-table", &key, SyncMode::SyncData, |old| match old {
                                Some(_) => Err(TableError::ConditionalCheckFailed { old: None }),
                                None => {
                                    let mut it = key.clone();
                                    it.insert("winner".into(), n(&i.to_string()));
                                    Ok(Some(it))
                                }
                            })
                            .is_ok() as usize
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| h.join().unwrap())
                .sum()
        });
        assert_eq!(winners, 1);
        assert!(
            tables
                .get_item("example-table", &key)
                .unwrap()
                .unwrap()
                .contains_key("winner")
        );
    }

    #[test]
    fn keys_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let tables = tables_with_range_key(dir.path());
        let t = "example-table";
        for bad in [
            item([("ID", AttributeValue::S("a".into()))]),
            item([("ID", n("1")), ("At", n("1"))]),
            item([("ID", AttributeValue::S(String::new())), ("At", n("1"))]),
        ] {
            assert!(
                matches!(tables.put_item(t, &bad), Err(TableError::Validation(_))),
                "{bad:?}"
            );
        }
        let huge = item([
            ("ID", AttributeValue::S("a".into())),
            ("At", n("1")),
            ("blob", AttributeValue::S("x".repeat(MAX_ITEM_BYTES))),
        ]);
        assert!(matches!(
            tables.put_item(t, &huge),
            Err(TableError::Validation(_))
        ));
        assert!(matches!(
            tables.get_item("nope", &huge),
            Err(TableError::TableNotFound(_))
        ));
    }

    #[test]
    fn pages_of_a_large_table_stay_near_1_mb_and_cover_every_item_once() {
        let dir = tempfile::tempdir().unwrap();
        let tables = tables_with_range_key(dir.path());
        let t = "example-table";
        let text = "x".repeat(1000);
        let ops: Vec<_> = (0..4000)
            .map(|i| {
                item([
                    ("ID", AttributeValue::S("h".into())),
                    ("At", n(&i.to_string())),
                    ("v", AttributeValue::S(text.clone())),
                ])
            })
            .collect();
        for it in &ops {
            tables.put_item(t, it).unwrap();
        }
        // No Limit: pages are bounded by size alone (4 MB of items here).
        let (mut seen, mut pages, mut start) = (Vec::new(), 0, None);
        loop {
            let page = tables.scan_page(t, start.as_ref(), usize::MAX).unwrap();
            let bytes: usize = page.items.iter().map(value::item_size).sum();
            assert!(bytes < 1024 * 1024 + 2048, "a page of {bytes} bytes");
            pages += 1;
            seen.extend(page.items.iter().map(|i| i["At"].clone()));
            match page.last_evaluated_key {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        assert!(pages >= 4, "{pages} pages");
        let want: Vec<_> = (0..4000).map(|i| n(&i.to_string())).collect();
        assert_eq!(seen, want);
    }
    /// A sort-key condition reads its run of the partition, wherever the run lies: 4 MB
    /// of items before (or after) it are not read, do not count, and do not cut the
    /// query short.
    #[test]
    fn queries_read_the_run_their_sort_key_condition_selects() {
        use plan::SortKeyCondition;
        let dir = tempfile::tempdir().unwrap();
        let tables = tables_with_range_key(dir.path());
        let t = "example-table";
        let text = "x".repeat(1000);
        for i in 0..4000 {
            let it = item([
                ("ID", AttributeValue::S("h".into())),
                ("At", n(&i.to_string())),
                ("v", AttributeValue::S(text.clone())),
            ]);
            tables.put_item(t, &it).unwrap();
        }
        let hash = AttributeValue::S("h".into());
        let at = |i: &Item| match &i["At"] {
            AttributeValue::N(x) => x.to_string().parse::<i64>().unwrap(),
            other => panic!("{other:?}"),
        };
        let query =
            |op: &str, values: &[i64], forward: bool, limit: usize, start: Option<&Item>| {
                let bounds: Vec<AttributeValue> =
                    values.iter().map(|v| n(&v.to_string())).collect();
                let sort = SortKeyCondition::from_operator(op, &bounds);
                let (op, values) = (op.to_owned(), values.to_vec());
                let keep = move |i: &Item| {
                    let x = at(i);
                    match op.as_str() {
                        "GT" => x > values[0],
                        "LT" => x < values[0],
                        "EQ" => x == values[0],
                        "BETWEEN" => (values[0]..=values[1]).contains(&x),
                        _ => unreachable!(),
                    }
                };
                let page = tables
                    .query(t, &hash, &sort, forward, start, limit, &keep)
                    .unwrap();
                let got: Vec<i64> = page.items.iter().map(at).collect();
                (got, page.scanned, page.last_evaluated_key)
            };

        let (got, scanned, last) = query("GT", &[3990], true, 100, None);
        assert_eq!(got, (3991..4000).collect::<Vec<_>>());
        assert_eq!(scanned, 9);
        assert!(last.is_none());
        let (got, _, last) = query("LT", &[5], false, 100, None);
        assert_eq!(got, [4, 3, 2, 1, 0]);
        assert!(last.is_none());
        let (got, _, last) = query("BETWEEN", &[1000, 1002], true, 100, None);
        assert_eq!(got, [1000, 1001, 1002]);
        assert!(last.is_none());
        let (got, _, _) = query("BETWEEN", &[1000, 1002], false, 100, None);
        assert_eq!(got, [1002, 1001, 1000]);
        let (got, _, _) = query("EQ", &[2500], true, 100, None);
        assert_eq!(got, [2500]);

        // Limit counts items of the run only, and a page resumes inside it.
        let (got, scanned, last) = query("GT", &[100], true, 10, None);
        assert_eq!(got, (101..111).collect::<Vec<_>>());
        assert_eq!(scanned, 10);
        let last = last.expect("more to read");
        let (got, _, _) = query("GT", &[100], true, 10, Some(&last));
        assert_eq!(got, (111..121).collect::<Vec<_>>());
    }
}
