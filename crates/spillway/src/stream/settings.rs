//! A stream's settings besides shards and tags: capacity mode (UpdateStreamMode),
//! server-side encryption (Start/StopStreamEncryption), enhanced monitoring
//! (Enable/DisableEnhancedMonitoring) and enhanced fan-out consumers
//! (Register/Deregister/Describe/ListStreamConsumers).
//!
//! spillway does not meter, encrypt or push records differently because of them: they
//! are accepted, kept durably in the stream's catalog entry and reported back as
//! Kinesis reports them, so that tools which set them (Terraform, CDK, KCL 2.x) work.

use std::sync::Arc;
use std::time::Duration;

use super::admin::after;
use super::{StreamError, StreamState, StreamStatus, Streams};
use crate::storage::{ConsumerEntry, StreamSettings};

/// The shard-level metrics Kinesis knows, in the order it reports them.
pub const SHARD_LEVEL_METRICS: [&str; 7] = [
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
];

/// Most consumers registered on one stream (Kinesis' quota).
pub const MAX_CONSUMERS: usize = 20;

/// A consumer as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    pub name: String,
    pub arn: String,
    pub status: &'static str,
    pub created_ms: u64,
}

impl Streams {
    /// Changes the settings of an ACTIVE stream with `f` and stores them.
    fn update_settings<T>(
        &self,
        name: &str,
        f: impl FnOnce(&StreamState, &mut StreamSettings) -> Result<T, StreamError>,
    ) -> Result<T, StreamError> {
        let state = self.get_active(name)?;
        let out = {
            let mut s = state.settings.lock().unwrap_or_else(|p| p.into_inner());
            let mut next = s.clone();
            let out = f(&state, &mut next)?;
            *s = next;
            out
        };
        self.store.put_stream(&state.catalog_entry())?;
        Ok(out)
    }

    /// UpdateStreamMode: PROVISIONED or ON_DEMAND. Like a reshard, the stream is UPDATING
    /// for `update_delay_ms`.
    pub fn set_stream_mode(
        self: &Arc<Self>,
        name: &str,
        on_demand: bool,
    ) -> Result<(), StreamError> {
        let state = self.get_active(name)?;
        self.update_settings(name, |_, s| {
            s.on_demand = on_demand;
            Ok(())
        })?;
        state.set_status(StreamStatus::Updating);
        let delay = Duration::from_millis(self.lifecycle.update_delay_ms);
        after(delay, move || {
            if state.status() == StreamStatus::Updating {
                state.set_status(StreamStatus::Active);
            }
        });
        Ok(())
    }

    /// Start/StopStreamEncryption: `Some(key)` encrypts with that KMS key.
    pub fn set_encryption(&self, name: &str, key: Option<String>) -> Result<(), StreamError> {
        self.update_settings(name, |_, s| {
            s.encryption_key = key;
            Ok(())
        })
    }

    /// Enable/DisableEnhancedMonitoring: returns the metrics before and after, in
    /// Kinesis' order. `ALL` stands for every metric.
    pub fn set_shard_level_metrics(
        &self,
        name: &str,
        metrics: &[String],
        enable: bool,
    ) -> Result<(Vec<String>, Vec<String>), StreamError> {
        let all = metrics.iter().any(|m| m == "ALL");
        self.update_settings(name, |_, s| {
            let before = s.shard_level_metrics.clone();
            let on = |m: &str| {
                let named = all || metrics.iter().any(|x| x == m);
                let was = before.iter().any(|x| x == m);
                if enable { was || named } else { was && !named }
            };
            s.shard_level_metrics = SHARD_LEVEL_METRICS
                .iter()
                .filter(|m| on(m))
                .map(|m| (*m).to_owned())
                .collect();
            Ok((before, s.shard_level_metrics.clone()))
        })
    }

    fn consumer_of(&self, stream: &StreamState, c: &ConsumerEntry) -> Consumer {
        let status = if c.deleting_since_ms.is_some() {
            "DELETING"
        } else if self.clock.now_ms() < c.created_ms + self.lifecycle.create_delay_ms {
            "CREATING"
        } else {
            "ACTIVE"
        };
        Consumer {
            name: c.name.clone(),
            arn: consumer_arn(&stream.arn, &c.name, c.created_ms),
            status,
            created_ms: c.created_ms,
        }
    }

    /// RegisterStreamConsumer: CREATING for `create_delay_ms`, then ACTIVE.
    pub fn register_consumer(&self, stream: &str, consumer: &str) -> Result<Consumer, StreamError> {
        let account = self.account_id.clone();
        let entry = self.update_settings(stream, |_, s| {
            if s.consumers.iter().any(|c| c.name == consumer) {
                return Err(StreamError::ResourceInUse(format!(
                    "Consumer {consumer} under stream {stream} already exists for account {account}."
                )));
            }
            if s.consumers.len() >= MAX_CONSUMERS {
                return Err(StreamError::LimitExceeded(format!(
                    "Consumer limit of {MAX_CONSUMERS} for stream {stream} under account {account} has been reached."
                )));
            }
            let c = ConsumerEntry {
                name: consumer.to_owned(),
                created_ms: self.clock.now_ms(),
                deleting_since_ms: None,
            };
            s.consumers.push(c.clone());
            Ok(c)
        })?;
        let state = self.get(stream)?;
        Ok(self.consumer_of(&state, &entry))
    }

    /// The consumers of a stream (any status but gone).
    pub fn consumers(
        &self,
        stream: &str,
    ) -> Result<(Arc<StreamState>, Vec<Consumer>), StreamError> {
        let state = self.get(stream)?;
        let list = state
            .settings()
            .consumers
            .iter()
            .map(|c| self.consumer_of(&state, c))
            .collect();
        Ok((state, list))
    }

    /// A consumer by its stream and name, or by its ARN.
    pub fn find_consumer(
        &self,
        stream: Option<&str>,
        name: Option<&str>,
        arn: Option<&str>,
    ) -> Result<(Arc<StreamState>, Consumer), StreamError> {
        let stream_name = match (stream, arn) {
            (Some(s), _) => s.to_owned(),
            (None, Some(a)) => a
                .split_once(":stream/")
                .and_then(|(_, rest)| rest.split_once("/consumer/"))
                .map(|(s, _)| s.to_owned())
                .unwrap_or_default(),
            (None, None) => String::new(),
        };
        let not_found = || {
            StreamError::ResourceNotFound(format!(
                "Consumer {} under stream {stream_name} not found for account {}.",
                name.or(arn).unwrap_or_default(),
                self.account_id
            ))
        };
        let (state, list) = self.consumers(&stream_name).map_err(|_| not_found())?;
        let found = list
            .into_iter()
            .find(|c| name.is_none_or(|n| c.name == n) && arn.is_none_or(|a| c.arn == a))
            .ok_or_else(not_found)?;
        Ok((state, found))
    }

    /// DeregisterStreamConsumer: DELETING for `delete_delay_ms`, then gone.
    pub fn deregister_consumer(
        self: &Arc<Self>,
        stream: Option<&str>,
        name: Option<&str>,
        arn: Option<&str>,
    ) -> Result<(), StreamError> {
        let (state, consumer) = self.find_consumer(stream, name, arn)?;
        let stream_name = state.name.clone();
        let consumer_name = consumer.name.clone();
        self.update_settings(&stream_name, |_, s| {
            for c in &mut s.consumers {
                if c.name == consumer_name && c.deleting_since_ms.is_none() {
                    c.deleting_since_ms = Some(self.clock.now_ms());
                }
            }
            Ok(())
        })?;
        let this = Arc::clone(self);
        let delay = Duration::from_millis(self.lifecycle.delete_delay_ms);
        after(delay, move || {
            // The stream may be gone or resharded since: look it up again.
            if let Ok(state) = this.get(&stream_name) {
                {
                    let mut s = state.settings.lock().unwrap_or_else(|p| p.into_inner());
                    s.consumers
                        .retain(|c| !(c.name == consumer_name && c.deleting_since_ms.is_some()));
                }
                if let Err(e) = this.store.put_stream(&state.catalog_entry()) {
                    tracing::warn!(error = %e, "could not store a deregistered consumer");
                }
            }
        });
        Ok(())
    }
}

/// A consumer's ARN, as Kinesis forms it: the stream's ARN, the consumer's name and its
/// registration time in seconds.
pub fn consumer_arn(stream_arn: &str, name: &str, created_ms: u64) -> String {
    format!("{stream_arn}/consumer/{name}:{}", created_ms / 1000)
}
