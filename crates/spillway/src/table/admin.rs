//! The table control plane: create and delete with DynamoDB's lifecycle states, catalog
//! changes (UpdateTable, tags, Time to Live) and the TTL sweep.
//!
//! States are kept in memory ([`Lifecycle`]); what DynamoDB keeps durably (key schema,
//! indexes, throughput, tags, the TTL attribute) is in the table's catalog entry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Item, TableError, TableState, Tables, value::AttributeValue};
use crate::storage::{IndexEntry, KeyAttributeEntry, SyncMode, TableCatalogEntry, Throughput};
use crate::stream::admin::after;
use crate::stream::now_ms;

/// A table's status and its indexes' statuses.
#[derive(Debug)]
pub struct Lifecycle {
    table: Mutex<&'static str>,
    indexes: Mutex<HashMap<String, &'static str>>,
}

impl Lifecycle {
    pub fn active() -> Self {
        Self::new("ACTIVE")
    }

    fn new(status: &'static str) -> Self {
        Self {
            table: Mutex::new(status),
            indexes: Mutex::new(HashMap::new()),
        }
    }

    /// CREATING, ACTIVE, UPDATING or DELETING.
    pub fn table(&self) -> &'static str {
        *self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_table(&self, s: &'static str) {
        *self.table.lock().unwrap_or_else(|p| p.into_inner()) = s;
    }

    /// An index's status (ACTIVE unless it is being created or deleted).
    pub fn index_status(&self, name: &str) -> &'static str {
        self.indexes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .copied()
            .unwrap_or("ACTIVE")
    }

    fn set_index(&self, name: &str, s: Option<&'static str>) {
        let mut m = self.indexes.lock().unwrap_or_else(|p| p.into_inner());
        match s {
            Some(s) => m.insert(name.to_owned(), s),
            None => m.remove(name),
        };
    }
}

/// What CreateTable asks for.
#[derive(Debug)]
pub struct NewTable {
    pub name: String,
    pub hash_key: KeyAttributeEntry,
    pub range_key: Option<KeyAttributeEntry>,
    pub indexes: Vec<IndexEntry>,
    pub throughput: Option<Throughput>,
    pub tags: Vec<(String, String)>,
}

impl Tables {
    fn delay(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// Creates a table at run time (CreateTable): CREATING for `create_delay_ms`.
    pub fn create_table(self: &Arc<Self>, spec: NewTable) -> Result<Arc<TableState>, TableError> {
        if self.describe(&spec.name).is_ok() {
            return Err(TableError::ResourceInUse(spec.name));
        }
        if self.all().len() >= self.table_limit {
            return Err(TableError::LimitExceeded(format!(
                "Subscriber limit exceeded: You have exceeded the maximum number of tables allowed ({}) for this account",
                self.table_limit
            )));
        }
        let entry = TableCatalogEntry {
            table_id: self.store.allocate_table_id()?,
            name: spec.name.clone(),
            created_ms: now_ms(),
            hash_key: spec.hash_key,
            range_key: spec.range_key,
            indexes: spec.indexes,
            uuid: Some(uuid::Uuid::new_v4().to_string()),
            throughput: spec.throughput,
            tags: spec.tags,
            ttl_attribute: None,
        };
        let status = Arc::new(Lifecycle::new(if self.config.create_delay_ms > 0 {
            "CREATING"
        } else {
            "ACTIVE"
        }));
        let state = Arc::new(self.state_of(&entry, Arc::clone(&status))?);
        self.store.put_table(&entry)?;
        self.by_name
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(spec.name, Arc::clone(&state));
        after(Self::delay(self.config.create_delay_ms), move || {
            status.set_table("ACTIVE");
        });
        Ok(state)
    }

    /// Deletes a table and its items (DeleteTable): DELETING for `delete_delay_ms`,
    /// then gone. Returns the table as it was.
    pub fn delete_table(self: &Arc<Self>, name: &str) -> Result<Arc<TableState>, TableError> {
        let t = self.describe(name)?;
        match t.status.table() {
            "CREATING" => {
                return Err(TableError::InUse(format!(
                    "Attempt to change a resource which is still in use: Table is being created: {name}"
                )));
            }
            "DELETING" => {
                return Err(TableError::InUse(format!(
                    "Attempt to change a resource which is still in use: Table is being deleted: {name}"
                )));
            }
            _ => {}
        }
        t.status.set_table("DELETING");
        let remove = {
            let this = Arc::clone(self);
            let name = name.to_owned();
            let t = Arc::clone(&t);
            move || {
                let mut by_name = this.by_name.write().unwrap_or_else(|p| p.into_inner());
                // Only this table: a new one of the same name is not touched.
                if by_name
                    .get(&name)
                    .is_some_and(|x| Arc::ptr_eq(&x.status, &t.status))
                {
                    by_name.remove(&name);
                }
                drop(by_name);
                if let Err(e) = this.store.delete_table(t.table_id) {
                    tracing::warn!(error = %e, table = %name, "deleting table data failed");
                }
            }
        };
        if self.config.delete_delay_ms == 0 {
            let mut by_name = self.by_name.write().unwrap_or_else(|p| p.into_inner());
            by_name.remove(name);
            drop(by_name);
            self.store.delete_table(t.table_id)?;
        } else {
            // Removing items is blocking storage work.
            after(Self::delay(self.config.delete_delay_ms), move || {
                match tokio::runtime::Handle::try_current() {
                    Ok(h) => {
                        h.spawn_blocking(remove);
                    }
                    Err(_) => remove(),
                }
            });
        }
        Ok(t)
    }

    /// Changes a table's catalog entry durably and publishes the new state. `change`
    /// may refuse.
    pub fn update_entry(
        &self,
        name: &str,
        change: impl FnOnce(&mut TableCatalogEntry) -> Result<(), TableError>,
    ) -> Result<Arc<TableState>, TableError> {
        let _g = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.describe(name)?;
        let mut entry = old.entry.clone();
        change(&mut entry)?;
        let state = Arc::new(self.state_of(&entry, Arc::clone(&old.status))?);
        self.store.put_table(&entry)?;
        self.by_name
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), Arc::clone(&state));
        Ok(state)
    }

    /// Marks a table UPDATING for `update_delay_ms`, and `creating` indexes CREATING and
    /// `deleting` ones DELETING meanwhile; a deleted index leaves the catalog when the
    /// window ends. `increase` and `decrease` say how the table's throughput changed:
    /// DynamoDB stamps `LastIncreaseDateTime` or `LastDecreaseDateTime` again when the
    /// change takes effect.
    pub fn start_update(
        self: &Arc<Self>,
        t: &Arc<TableState>,
        creating: Vec<String>,
        deleting: Vec<String>,
        (increase, decrease): (bool, bool),
    ) {
        let delay = self.config.update_delay_ms;
        if delay == 0 {
            self.drop_indexes(&t.name, &deleting);
            return;
        }
        t.status.set_table("UPDATING");
        for i in &creating {
            t.status.set_index(i, Some("CREATING"));
        }
        for i in &deleting {
            t.status.set_index(i, Some("DELETING"));
        }
        let this = Arc::clone(self);
        let status = Arc::clone(&t.status);
        let name = t.name.clone();
        after(Self::delay(delay), move || {
            for i in creating.iter().chain(&deleting) {
                status.set_index(i, None);
            }
            this.drop_indexes(&name, &deleting);
            if increase || decrease {
                let stamped = this.update_entry(&name, |e| {
                    if let Some(tp) = &mut e.throughput {
                        if increase {
                            tp.last_increase_ms = Some(now_ms());
                        }
                        if decrease {
                            tp.last_decrease_ms = Some(now_ms());
                        }
                    }
                    Ok(())
                });
                if let Err(e) = stamped {
                    tracing::warn!(error = %e, table = %name, "recording the throughput increase failed");
                }
            }
            status.set_table("ACTIVE");
        });
    }

    fn drop_indexes(&self, table: &str, names: &[String]) {
        if names.is_empty() {
            return;
        }
        let r = self.update_entry(table, |e| {
            e.indexes.retain(|i| !names.contains(&i.name));
            Ok(())
        });
        if let Err(e) = r {
            tracing::warn!(error = %e, table, "dropping indexes failed");
        }
    }

    /// Deletes, in every table with Time to Live enabled, the items whose TTL attribute
    /// is a number of epoch seconds in the past. Each deletion re-checks the item under
    /// the write lock, so an item whose TTL was just extended stays. Returns how many
    /// items were deleted.
    pub fn sweep_expired(&self) -> Result<usize, TableError> {
        let now_s = now_ms() / 1000;
        let mut deleted = 0;
        for t in self.all() {
            let Some(attr) = t.entry.ttl_attribute.clone() else {
                continue;
            };
            if t.status.table() != "ACTIVE" {
                continue;
            }
            let expired = |i: &Item| -> bool {
                match i.get(&attr) {
                    Some(AttributeValue::N(n)) => n
                        .to_string()
                        .parse::<f64>()
                        .is_ok_and(|secs| secs >= 0.0 && secs <= now_s as f64),
                    _ => false,
                }
            };
            let mut keys = Vec::new();
            self.for_each_stored(&t, |v| {
                let item = super::decode_item(v)?;
                if expired(&item) {
                    keys.push(t.key_of(&item));
                }
                Ok(())
            })?;
            for key in keys {
                let r = self.modify(&t.name, &key, SyncMode::SyncData, |old| match old {
                    Some(i) if expired(i) => Ok(None),
                    Some(_) => Err(TableError::ConditionalCheckFailed { old: None }),
                    None => Err(TableError::ConditionalCheckFailed { old: None }),
                });
                match r {
                    Ok(_) => deleted += 1,
                    Err(TableError::ConditionalCheckFailed { .. }) => {}
                    // The table went away meanwhile.
                    Err(TableError::TableNotFound(_)) => break,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(deleted)
    }
}

/// Runs the TTL sweep every `interval` until the process ends.
pub async fn run_ttl_sweep(tables: Arc<Tables>, interval: Duration) {
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let t = Arc::clone(&tables);
        match tokio::task::spawn_blocking(move || t.sweep_expired()).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::debug!(items = n, "TTL sweep deleted expired items"),
            Ok(Err(e)) => tracing::warn!(error = %e, "TTL sweep failed"),
            Err(e) => tracing::warn!(error = %e, "TTL sweep panicked"),
        }
    }
}
