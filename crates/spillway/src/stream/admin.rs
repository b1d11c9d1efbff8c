//! Managing streams at run time, as the Kinesis control plane does: create and delete
//! (with the CREATING and DELETING states), tags, retention. Configured streams are
//! created at start by [`Streams::open`]; these serve the Kinesis API.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{HashKeyRange, StreamError, StreamState, StreamStatus, Streams, hash};
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
        self.all()
            .iter()
            .map(|s| s.shards.iter().filter(|sh| sh.is_open()).count() as u32)
            .sum()
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
        on_demand: bool,
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
                "This request would exceed the shard limit for the account {} in {}. Current shard count for the account: {open}. Limit: {}. Number of additional shards that would have resulted from this request: {shard_count}. Refer to the AWS Service Limits page (http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current limits and how to request higher limits.",
                self.account_id, self.region, self.lifecycle.shard_limit
            )));
        }
        let entry = StreamCatalogEntry {
            stream_id: self.store.allocate_stream_id()?,
            name: name.to_owned(),
            created_ms: self.clock.now_ms(),
            retention_ms: 24 * 3_600_000,
            shards: super::fresh_shards(shard_count),
            tags,
            settings: crate::storage::StreamSettings {
                on_demand,
                ..Default::default()
            },
        };
        self.store.put_stream(&entry)?;
        let state = Arc::new(Self::state_from_catalog(
            &self.log,
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
        // A stream deleted while CREATING stays DELETING.
        after(delay, move || {
            if state.status() == StreamStatus::Creating {
                state.set_status(StreamStatus::Active);
            }
        });
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
        // Kinesis lets a stream be deleted while it is still CREATING.
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
            this.log.forget_stream(entry.stream_id);
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
                return Err(StreamError::InvalidArgument(format!(
                    "Failed to add tags to stream {name} under account {} because a given stream cannot have more than 50 tags associated with it.",
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
        if hours < 24 {
            return Err(StreamError::InvalidArgument(format!(
                "Minimum allowed retention period is 24 hours. Requested retention period ({hours} hours) is too short."
            )));
        }
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

/// A child shard a reshard creates: its hash range and the shards it comes from.
struct Child {
    range: HashKeyRange,
    parents: Vec<u32>,
}

impl Streams {
    /// SplitShard: `shard` becomes two children split at `new_starting_hash_key`.
    pub async fn split_shard(
        self: &Arc<Self>,
        name: &str,
        shard: &str,
        new_starting_hash_key: u128,
    ) -> Result<(), StreamError> {
        let stream = self.get_active(name)?;
        let parent = self.open_shard(&stream, shard)?;
        let r = parent.range;
        // Both children must hold at least two keys' worth of range, as Kinesis requires.
        if new_starting_hash_key <= r.start.saturating_add(1) || new_starting_hash_key >= r.end {
            return Err(StreamError::InvalidArgument(format!(
                "NewStartingHashKey {new_starting_hash_key} used in SplitShard() on shard {shard} in stream {name} under account {} is not both greater than one plus the shard's StartingHashKey {} and less than the shard's EndingHashKey {}.",
                self.account_id, r.start, r.end
            )));
        }
        let parents = vec![parent.key.shard_index];
        self.reshard(
            &stream,
            &parents,
            vec![
                Child {
                    range: HashKeyRange {
                        start: r.start,
                        end: new_starting_hash_key - 1,
                    },
                    parents: parents.clone(),
                },
                Child {
                    range: HashKeyRange {
                        start: new_starting_hash_key,
                        end: r.end,
                    },
                    parents: parents.clone(),
                },
            ],
        )
        .await
    }

    /// MergeShards: two adjacent open shards become one child.
    pub async fn merge_shards(
        self: &Arc<Self>,
        name: &str,
        shard: &str,
        adjacent: &str,
    ) -> Result<(), StreamError> {
        let stream = self.get_active(name)?;
        let a = self.open_shard(&stream, shard)?;
        let b = self.open_shard(&stream, adjacent)?;
        // ShardToMerge must be the lower of the pair, as Kinesis requires.
        let (lo, hi) = (&a, &b);
        if lo.range.end.checked_add(1) != Some(hi.range.start) {
            return Err(StreamError::InvalidArgument(format!(
                "Shards {shard} and {adjacent} in stream {name} under account {} are not an adjacent pair of shards eligible for merging",
                self.account_id
            )));
        }
        let parents = vec![a.key.shard_index, b.key.shard_index];
        self.reshard(
            &stream,
            &parents,
            vec![Child {
                range: HashKeyRange {
                    start: lo.range.start,
                    end: hi.range.end,
                },
                parents: parents.clone(),
            }],
        )
        .await
    }

    /// UpdateShardCount (UNIFORM_SCALING): every open shard closes and `target` evenly
    /// split children replace them; each child lists the shards it overlaps as parents.
    pub async fn update_shard_count(
        self: &Arc<Self>,
        name: &str,
        target: u32,
    ) -> Result<u32, StreamError> {
        let stream = self.get_active(name)?;
        let open: Vec<_> = stream
            .shards
            .iter()
            .filter(|s| s.is_open())
            .cloned()
            .collect();
        let current = open.len() as u32;
        if target > current * 2 || target * 2 < current {
            return Err(StreamError::InvalidArgument(format!(
                "UpdateShardCount with target {target} for stream {name} under account {} must be between half and double the current open shard count {current}.",
                self.account_id
            )));
        }
        let children = hash::even_ranges(target)
            .into_iter()
            .map(|range| Child {
                range,
                parents: open
                    .iter()
                    .filter(|s| s.range.start <= range.end && range.start <= s.range.end)
                    .map(|s| s.key.shard_index)
                    .collect(),
            })
            .collect();
        let closing: Vec<u32> = open.iter().map(|s| s.key.shard_index).collect();
        self.reshard(&stream, &closing, children).await?;
        Ok(current)
    }

    fn open_shard(
        &self,
        stream: &StreamState,
        shard: &str,
    ) -> Result<Arc<super::ShardState>, StreamError> {
        let s = self.shard(stream, shard)?;
        if !s.is_open() {
            return Err(StreamError::ResourceInUse(format!(
                "Shard {shard} in stream {} under account {} has already been merged or split, and thus is not eligible for merging or splitting.",
                stream.name, self.account_id
            )));
        }
        Ok(s)
    }

    /// Closes `closing` and opens `children`, durably and without losing an append:
    /// 1. the catalog gains the children and marks the parents closed (so a crash at any
    ///    later point restarts with the new layout);
    /// 2. under the routing lock, the parents close and the new shard list is published;
    /// 3. once the parents' queued appends are answered, their ends are recorded.
    async fn reshard(
        self: &Arc<Self>,
        stream: &Arc<StreamState>,
        closing: &[u32],
        children: Vec<Child>,
    ) -> Result<(), StreamError> {
        let open_after =
            stream.shards.iter().filter(|s| s.is_open()).count() - closing.len() + children.len();
        let others =
            self.open_shard_count() as usize - stream.shards.iter().filter(|s| s.is_open()).count();
        if open_after + others > self.lifecycle.shard_limit as usize {
            return Err(StreamError::LimitExceeded(format!(
                "This request would exceed the shard limit for the account {}. Limit: {}.",
                self.account_id, self.lifecycle.shard_limit
            )));
        }
        stream.set_status(StreamStatus::Updating);
        let mut entry = stream.catalog_entry();
        let first = entry.shards.iter().map(|s| s.index + 1).max().unwrap_or(0);
        for s in &mut entry.shards {
            if closing.contains(&s.index) {
                s.closed = true;
            }
        }
        for (i, c) in children.iter().enumerate() {
            entry.shards.push(ShardCatalogEntry {
                index: first + i as u32,
                starting_hash_key: c.range.start.to_string(),
                ending_hash_key: c.range.end.to_string(),
                parents: c.parents.clone(),
                closed: false,
                ending_counter: None,
            });
        }
        self.store.put_stream(&entry)?;
        let enforce = stream.shards.iter().any(|s| s.limiter.is_some());
        let mut next =
            Self::state_from_catalog(&self.log, &entry, &self.region, &self.account_id, enforce)?;
        // Keep the live shard objects (tips, pending counts, watchers) for existing shards.
        for (i, s) in stream.shards.iter().enumerate() {
            next.shards[i] = Arc::clone(s);
        }
        next.routing = Arc::clone(&stream.routing);
        next.set_status(StreamStatus::Updating);
        let next = Arc::new(next);
        {
            let _exclusive = stream.routing.write().unwrap_or_else(|p| p.into_inner());
            for s in &stream.shards {
                if closing.contains(&s.key.shard_index) {
                    s.closed.store(true, Ordering::Release);
                }
            }
            self.by_name
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(stream.name.clone(), Arc::clone(&next));
        }
        // Appends already queued for the parents finish there; then their ends are final.
        for s in stream
            .shards
            .iter()
            .filter(|s| closing.contains(&s.key.shard_index))
        {
            while s.log.pending() > 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let end = s.tip().next_counter;
            s.ending.store(end, Ordering::Release);
            s.log.wake();
            if let Some(e) = entry
                .shards
                .iter_mut()
                .find(|e| e.index == s.key.shard_index)
            {
                e.ending_counter = Some(end);
            }
        }
        self.store.put_stream(&entry)?;
        tracing::info!(stream = %stream.name, closed = closing.len(), opened = children.len(), "resharded");
        let delay = Duration::from_millis(self.lifecycle.update_delay_ms);
        after(delay, move || next.set_status(StreamStatus::Active));
        Ok(())
    }
}

/// Runs `f` after `delay` (at once when the delay is zero or there is no runtime).
pub(crate) fn after(delay: Duration, f: impl FnOnce() + Send + 'static) {
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
