//! A table engine in PostgreSQL (`postgres://USER@HOST:PORT/DB`): the items a worker's
//! functions write, and the lease table, for workers whose team runs PostgreSQL rather
//! than DynamoDB. Conditional lease writes are single `UPDATE ... WHERE` statements
//! (PostgreSQL's row locks make two racing workers serialize; one matches, the other
//! finds no row).
//!
//! Schema (created if missing; stable: a worker of another version reads the same rows):
//!
//! ```sql
//! spillway_items  (table_name text, hash_key text, range_key text, item jsonb,
//!                  PRIMARY KEY (table_name, hash_key, range_key))
//! spillway_leases (lease_table text, lease_key text, lease_owner text,
//!                  lease_counter bigint, checkpoint text, parent_shard_ids text[],
//!                  owner_switches bigint, dead_letter text,
//!                  PRIMARY KEY (lease_table, lease_key))
//! ```
//!
//! `hash_key` and `range_key` hold the key attributes' values in DynamoDB JSON
//! (`{"S":"..."}`; `""` for a table without a range key), so every key type has one
//! exact text form. An item is a whole DynamoDB JSON item; a put replaces it.

use std::sync::Arc;

use serde_json::Value;
use tokio_postgres::{Client, NoTls};

use super::RemoteError;
use crate::config::TableConfig;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS spillway_items (
    table_name text NOT NULL,
    hash_key text NOT NULL,
    range_key text NOT NULL DEFAULT '',
    item jsonb NOT NULL,
    PRIMARY KEY (table_name, hash_key, range_key)
);
CREATE TABLE IF NOT EXISTS spillway_leases (
    lease_table text NOT NULL,
    lease_key text NOT NULL,
    lease_owner text NOT NULL DEFAULT '',
    lease_counter bigint NOT NULL DEFAULT 0,
    checkpoint text,
    parent_shard_ids text[] NOT NULL DEFAULT '{}',
    owner_switches bigint NOT NULL DEFAULT 0,
    dead_letter text,
    PRIMARY KEY (lease_table, lease_key)
);";

/// A lease row as read.
#[derive(Debug, Clone)]
pub struct LeaseRow {
    pub key: String,
    pub owner: String,
    pub counter: u64,
    pub checkpoint: String,
    pub parents: Vec<String>,
}

/// What a conditional lease update expects and sets.
#[derive(Debug, Clone, Copy)]
pub struct LeaseUpdate<'a> {
    /// The row must be owned by this worker (None: by anyone).
    pub expect_owner: Option<&'a str>,
    /// The row's counter must be this.
    pub expect_counter: u64,
    /// New owner, when taking.
    pub owner: Option<&'a str>,
    pub counter: u64,
    /// New checkpoint, when checkpointing.
    pub checkpoint: Option<&'a str>,
}

/// A table's hash key attribute and range key attribute, by name.
type KeyNames = (String, Option<String>);

/// The connection to one PostgreSQL database, opened again when it breaks.
#[derive(Clone)]
pub struct PostgresTables {
    url: String,
    client: Arc<tokio::sync::Mutex<Option<Arc<Client>>>>,
    /// Key attribute names per table, from the config.
    keys: Arc<std::sync::RwLock<std::collections::HashMap<String, KeyNames>>>,
}

impl std::fmt::Debug for PostgresTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresTables")
            .field("url", &redacted(&self.url))
            .finish_non_exhaustive()
    }
}

/// The URL without its password, for logs and errors.
pub fn redacted(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, rest)), Some((_, host))) => {
            let user = rest.split('@').next().unwrap_or("");
            let user = user.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}")
        }
        _ => url.to_owned(),
    }
}

impl PostgresTables {
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            client: Arc::default(),
            keys: Arc::default(),
        }
    }

    fn error(&self, e: &tokio_postgres::Error) -> RemoteError {
        let mut message = e.to_string();
        if let Some(db) = e.as_db_error() {
            message = format!("{}: {}", db.code().code(), db.message());
        }
        RemoteError::Transport {
            endpoint: redacted(&self.url),
            message,
        }
    }

    /// The open connection, opened (and the schema made) if there is none.
    async fn client(&self) -> Result<Arc<Client>, RemoteError> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(c));
        }
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .map_err(|e| self.error(&e))?;
        let url = redacted(&self.url);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(engine = %url, error = %e, "PostgreSQL connection lost; reconnecting on next use");
            }
        });
        client
            .batch_execute(SCHEMA)
            .await
            .map_err(|e| self.error(&e))?;
        let client = Arc::new(client);
        *slot = Some(Arc::clone(&client));
        Ok(client)
    }

    /// Remembers a table's key attributes (its rows need no other preparation).
    pub async fn ensure_table(&self, table: &TableConfig) -> Result<(), RemoteError> {
        self.client().await?;
        self.keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                table.name.clone(),
                (
                    table.hash_key.name.clone(),
                    table.range_key.as_ref().map(|k| k.name.clone()),
                ),
            );
        Ok(())
    }

    /// Makes sure the schema exists (the lease table is rows of `spillway_leases`).
    pub async fn ensure_lease_table(&self) -> Result<(), RemoteError> {
        self.client().await.map(|_| ())
    }

    /// Puts every item (DynamoDB JSON), replacing items of the same key, in one
    /// statement (all or nothing).
    pub async fn put_items(&self, table: &str, items: Vec<Value>) -> Result<(), RemoteError> {
        let (hash, range) = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(table)
            .cloned()
            .ok_or_else(|| RemoteError::Decode {
                endpoint: redacted(&self.url),
                message: format!("table {table} is not configured"),
            })?;
        let client = self.client().await?;
        let mut rows = Vec::with_capacity(items.len());
        for item in &items {
            let key_text = |name: &str| item.get(name).map(Value::to_string);
            let Some(h) = key_text(&hash) else {
                return Err(RemoteError::Decode {
                    endpoint: redacted(&self.url),
                    message: format!("an item of {table} has no {hash}"),
                });
            };
            let r = range.as_deref().and_then(key_text).unwrap_or_default();
            rows.push((h, r, item.to_string()));
        }
        // One statement (the connection is shared by every poller, so no multi-statement
        // transaction); a key written twice in one batch keeps its last item, as
        // DynamoDB's sequential puts would.
        let mut last: std::collections::BTreeMap<(String, String), String> = Default::default();
        for (h, r, item) in rows {
            last.insert((h, r), item);
        }
        let (mut hs, mut rs, mut is) = (Vec::new(), Vec::new(), Vec::new());
        for ((h, r), item) in last {
            hs.push(h);
            rs.push(r);
            is.push(item);
        }
        client
            .execute(
                "INSERT INTO spillway_items (table_name, hash_key, range_key, item) \
                 SELECT $1, h, r, i::jsonb FROM unnest($2::text[], $3::text[], $4::text[]) AS t(h, r, i) \
                 ON CONFLICT (table_name, hash_key, range_key) DO UPDATE SET item = EXCLUDED.item",
                &[&table, &hs, &rs, &is],
            )
            .await
            .map_err(|e| self.error(&e))?;
        Ok(())
    }

    /// Every item of a table, in key order.
    pub async fn items(&self, table: &str) -> Result<Vec<Value>, RemoteError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT item::text FROM spillway_items WHERE table_name = $1 ORDER BY hash_key, range_key",
                &[&table],
            )
            .await
            .map_err(|e| self.error(&e))?;
        Ok(rows
            .iter()
            .filter_map(|r| serde_json::from_str(r.get::<_, &str>(0)).ok())
            .collect())
    }

    /// Every lease of a lease table.
    pub async fn leases(&self, lease_table: &str) -> Result<Vec<LeaseRow>, RemoteError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT lease_key, lease_owner, lease_counter, checkpoint, parent_shard_ids \
                 FROM spillway_leases WHERE lease_table = $1 AND checkpoint IS NOT NULL \
                 ORDER BY lease_key",
                &[&lease_table],
            )
            .await
            .map_err(|e| self.error(&e))?;
        Ok(rows
            .iter()
            .map(|r| LeaseRow {
                key: r.get(0),
                owner: r.get(1),
                counter: u64::try_from(r.get::<_, i64>(2)).unwrap_or(0),
                checkpoint: r.get(3),
                parents: r.get(4),
            })
            .collect())
    }

    /// Creates a lease unless it exists: true when this call created it.
    pub async fn create_lease(
        &self,
        lease_table: &str,
        key: &str,
        checkpoint: &str,
        parents: &[String],
    ) -> Result<bool, RemoteError> {
        let client = self.client().await?;
        let parents: Vec<&str> = parents.iter().map(String::as_str).collect();
        let n = client
            .execute(
                "INSERT INTO spillway_leases (lease_table, lease_key, checkpoint, parent_shard_ids) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&lease_table, &key, &checkpoint, &parents],
            )
            .await
            .map_err(|e| self.error(&e))?;
        Ok(n == 1)
    }

    /// A conditional lease update: true when the row was as expected and is updated.
    pub async fn update_lease(
        &self,
        lease_table: &str,
        key: &str,
        u: LeaseUpdate<'_>,
    ) -> Result<bool, RemoteError> {
        let client = self.client().await?;
        let expect = i64::try_from(u.expect_counter).unwrap_or(i64::MAX);
        let counter = i64::try_from(u.counter).unwrap_or(i64::MAX);
        let n = client
            .execute(
                "UPDATE spillway_leases SET \
                   lease_counter = $4, \
                   lease_owner = COALESCE($5, lease_owner), \
                   checkpoint = COALESCE($6, checkpoint), \
                   owner_switches = CASE WHEN $6::text IS NOT NULL THEN 0 \
                                         WHEN $5::text IS NOT NULL THEN owner_switches + 1 \
                                         ELSE owner_switches END \
                 WHERE lease_table = $1 AND lease_key = $2 AND lease_counter = $3 \
                   AND ($7::text IS NULL OR lease_owner = $7)",
                &[
                    &lease_table,
                    &key,
                    &expect,
                    &counter,
                    &u.owner,
                    &u.checkpoint,
                    &u.expect_owner,
                ],
            )
            .await
            .map_err(|e| self.error(&e))?;
        Ok(n == 1)
    }

    /// Keeps a dead letter beside the leases.
    pub async fn put_dead_letter(
        &self,
        lease_table: &str,
        key: &str,
        record: &str,
    ) -> Result<(), RemoteError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO spillway_leases (lease_table, lease_key, dead_letter) VALUES ($1, $2, $3) \
                 ON CONFLICT (lease_table, lease_key) DO UPDATE SET dead_letter = EXCLUDED.dead_letter",
                &[&lease_table, &key, &record],
            )
            .await
            .map_err(|e| self.error(&e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(
            redacted("postgres://app:s3cret@db.internal:5432/spillway"),
            "postgres://app@db.internal:5432/spillway"
        );
        assert_eq!(redacted("postgres://db/x"), "postgres://db/x");
    }
}
