//! Managing streams at run time, as the Kinesis control plane does: create and delete
//! (with the CREATING and DELETING states), tags, retention. Configured streams are
//! created at start by [`Streams::open`]; these serve the Kinesis API.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{StreamError, StreamState, StreamStatus, Streams, hash, now_ms};
use crate::storage::{ShardCatalogEntry, StreamCatalogEntry};

/// Most tags on one stream.
pub const MAX_TAGS: usize = 50;

impl Streams {
    /// The stream, if it can be read and written (not CREATING or DELETING).
    pub fn get_readable(&self, name: &str) -> Result<Arc<StreamState>, StreamError> {
        let s = self.get(name)?;
        match s.status() {
            StreamStatus::Active | StreamStatus::Updating => Ok(s),
            StreamStatus::Creating | StreamStatus::Deleting => Err(self.not_found(name)),
        }
    }

    /// The stream, if it is ACTIVE (control-plane changes need that).
    pub fn get_active(&self, name: &str) -> Result<Arc<StreamState>, StreamError> {
        let s = self.get(name)?;
        match s.status() {
            StreamStatus::Active => Ok(s),
            other => Err(StreamError::ResourceInUse(format!(
                "Stream {name} under account {} not ACTIVE, instead in state {}",
                self.account_id,
                other.as_str()
            ))),
        }
    }

    fn not_found(&self, name: &str) -> StreamError {
        StreamError::StreamNotFound {
            name: name.to_owned(),
            account: self.account_id.clone(),
        }
    }

    /// Open shards across all streams.
    pub fn open_shard_count(&self) -> u32 {
        self.all().iter().map(|s| s.shards.len() as u32).sum()
    }

    /// The account's shard limit.
    pub fn shard_limit(&self) -> u32 {
        self.lifecycle.shard_limit
    }

    /// Creates a stream; it is CREATING until `create_delay_ms` has passed.
    pub fn create_stream(
        self: &Arc<Self>,
        name: &str,
        shard_count: u32,
        tags: BTreeMap<String, String>,
    ) -> Result<(), StreamError> {
        super::validate_stream_name(name)?;
        if self.get(name).is_ok() {
            return Err(StreamError::ResourceInUse(format!(
                "Stream {name} under account {} already exists.",
                self.account_id
            )));
        }
        let open = self.open_shard_count();
        if open + shard_count > self.lifecycle.shard_limit {
            return Err(StreamError::LimitExceeded(format!(
                "This request would exceed the shard limit for the account {}. Current shard count for the account: {open}. Limit: {}. Number of additional shards that would have resulted from this request: {shard_count}. Refer to the AWS Service Limits page (https://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current limits and how to request higher limits.",
                self.account_id, self.lifecycle.shard_limit
            )));
        }
        let entry = StreamCatalogEntry {
            stream_id: self.store.allocate_stream_id()?,
            name: name.to_owned(),
            created_ms: now_ms(),
            retention_ms: 24 * 3_600_000,
            shards: hash::even_ranges(shard_count)
                .into_iter()
                .enumerate()
                .map(|(i, r)| ShardCatalogEntry {
                    index: i as u32,
                    starting_hash_key: r.start.to_string(),
                    ending_hash_key: r.end.to_string(),
                })
                .collect(),
            tags,
        };
        self.store.put_stream(&entry)?;
        let state = Arc::new(Self::state_from_catalog(
            &*self.store,
            &entry,
            &self.region,
            &self.account_id,
            false,
        )?);
        state.set_status(StreamStatus::Creating);
        self.by_name
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), Arc::clone(&state));
        tracing::info!(stream = name, shards = shard_count, "created stream (API)");
        let delay = Duration::from_millis(self.lifecycle.create_delay_ms);
        after(delay, move || state.set_status(StreamStatus::Active));
        Ok(())
    }

    /// Deletes a stream: DELETING for `delete_delay_ms`, then its data is removed.
    pub fn delete_stream(self: &Arc<Self>, name: &str) -> Result<(), StreamError> {
        let state = self.get(name)?;
        if state.status() == StreamStatus::Deleting {
            return Err(StreamError::ResourceInUse(format!(
                "Stream {name} under account {} is already being deleted",
                self.account_id
            )));
        }
        if state.status() == StreamStatus::Creating {
            return Err(StreamError::ResourceInUse(format!(
                "Stream {name} under account {} not ACTIVE, instead in state CREATING",
                self.account_id
            )));
        }
        state.set_status(StreamStatus::Deleting);
        let this = Arc::clone(self);
        let name = name.to_owned();
        let delay = Duration::from_millis(self.lifecycle.delete_delay_ms);
        after(delay, move || {
            this.by_name
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&name);
            let entry = state.catalog_entry();
            let store = Arc::clone(&this.store);
            // Removing records is blocking storage work.
            let work = move || {
                if let Err(e) = store.delete_stream(&entry) {
                    tracing::warn!(error = %e, stream = %entry.name, "deleting stream data failed");
                }
            };
            match tokio::runtime::Handle::try_current() {
                Ok(h) => {
                    h.spawn_blocking(work);
                }
                Err(_) => work(),
            }
        });
        Ok(())
    }

    /// Adds or replaces tags (at most 50 per stream).
    pub fn add_tags(&self, name: &str, tags: BTreeMap<String, String>) -> Result<(), StreamError> {
        let state = self.get_active(name)?;
        {
            let mut current = state.tags.lock().unwrap_or_else(|p| p.into_inner());
            let mut merged = current.clone();
            merged.extend(tags);
            if merged.len() > MAX_TAGS {
                return Err(StreamError::LimitExceeded(format!(
                    "Failed to add tags to stream {name} under account {} because a given stream cannot have more than 50 tags.",
                    self.account_id
                )));
            }
            *current = merged;
        }
        Ok(self.store.put_stream(&state.catalog_entry())?)
    }

    /// Removes tags; absent keys are ignored.
    pub fn remove_tags(&self, name: &str, keys: &[String]) -> Result<(), StreamError> {
        let state = self.get_active(name)?;
        {
            let mut current = state.tags.lock().unwrap_or_else(|p| p.into_inner());
            for k in keys {
                current.remove(k);
            }
        }
        Ok(self.store.put_stream(&state.catalog_entry())?)
    }

    /// Sets the retention period, in hours (24 to 8760), as Increase/DecreaseStreamRetentionPeriod.
    pub fn set_retention_hours(
        &self,
        name: &str,
        hours: u64,
        increase: bool,
    ) -> Result<(), StreamError> {
        let state = self.get_active(name)?;
        let current = state.retention_ms() / 3_600_000;
        if increase && hours < current {
            return Err(StreamError::InvalidArgument(format!(
                "Requested retention period ({hours} hours) for stream {name} can not be shorter than existing retention period ({current} hours). Use DecreaseRetentionPeriod API."
            )));
        }
        if !increase && hours > current {
            return Err(StreamError::InvalidArgument(format!(
                "Requested retention period ({hours} hours) for stream {name} can not be longer than existing retention period ({current} hours). Use IncreaseRetentionPeriod API."
            )));
        }
        state
            .retention_ms
            .store(hours * 3_600_000, Ordering::Relaxed);
        Ok(self.store.put_stream(&state.catalog_entry())?)
    }
}

/// Runs `f` after `delay` (at once when the delay is zero or there is no runtime).
fn after(delay: Duration, f: impl FnOnce() + Send + 'static) {
    if delay.is_zero() {
        f();
        return;
    }
    match tokio::runtime::Handle::try_current() {
        Ok(h) => {
            h.spawn(async move {
                tokio::time::sleep(delay).await;
                f();
            });
        }
        Err(_) => f(),
    }
}
