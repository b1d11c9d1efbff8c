//! Shard leases: how workers that share engines share the work.
//!
//! One item per (mapping, shard) in the lease table of the table engine, in the layout
//! the Kinesis Client Library uses where it fits:
//!
//! | attribute | type | meaning |
//! |---|---|---|
//! | `leaseKey` | S | `{function}@{stream}/{shardId}` (hash key) |
//! | `leaseOwner` | S | the worker id holding it; `""` when free |
//! | `leaseCounter` | N | raised by every renewal, take-over and checkpoint |
//! | `checkpoint` | S | `TRIM_HORIZON`, `AT_TIMESTAMP:{ms}`, the last processed sequence number, or `SHARD_END` |
//! | `parentShardId` | SS | the shard's parents (absent for an original shard) |
//! | `ownerSwitchesSinceCheckpoint` | N | take-overs since the checkpoint last moved |
//!
//! Every write is conditional on the counter the writer last saw, so of two workers
//! racing for a lease one wins and the other learns it lost. The protocol:
//! - **Renew**: every `renew_interval`, the holder raises the counter (condition:
//!   owner is me and counter is what I wrote last).
//! - **Expire**: a worker that sees a lease's counter stand still for `lease_duration`
//!   (by its own clock: no clocks are compared) takes it as its holder's death.
//! - **Take**: set owner to me and raise the counter (condition: the counter I saw).
//!   Up to this worker's share (`ceil(active leases / live workers)`): expired leases
//!   first; else one lease of the busiest worker when it holds at least two more than
//!   this one, one per cycle (so 4 shards over 3 workers settle at 2/1/1).
//! - **Fence**: a checkpoint is written only with the holder's condition, so a worker
//!   that lost its lease cannot move a checkpoint. It also stops invoking once it has
//!   not renewed for `lease_duration` (measured from before its last successful
//!   write), which is before anyone may take the lease over. Items are keyed by their
//!   record (the built-in function's UUID v5 of the eventID), so a batch run twice by
//!   an old and a new owner writes the same items: the table holds each record once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::remote::TableEngine;
use crate::remote::dynamodb::ConditionalError;
use crate::remote::postgres::LeaseUpdate;

/// The checkpoint of a shard read to its end.
pub const SHARD_END: &str = "SHARD_END";

/// One lease as read from the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub key: String,
    pub owner: String,
    pub counter: u64,
    pub checkpoint: String,
    pub parents: Vec<String>,
}

impl Lease {
    /// Reads a lease item; None for an item that is not one (a dead letter).
    pub fn from_item(item: &Map<String, Value>) -> Option<Self> {
        let s = |k: &str| item.get(k)?.get("S")?.as_str().map(str::to_owned);
        let counter = item.get("leaseCounter")?.get("N")?.as_str()?.parse().ok()?;
        Some(Self {
            key: s("leaseKey")?,
            owner: s("leaseOwner").unwrap_or_default(),
            counter,
            checkpoint: s("checkpoint")?,
            parents: item
                .get("parentShardId")
                .and_then(|v| v.get("SS"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// Whether the shard has been processed to its end.
    pub fn finished(&self) -> bool {
        self.checkpoint == SHARD_END
    }
}

/// The key of a lease.
pub fn lease_key(mapping: &str, shard_id: &str) -> String {
    format!("{mapping}/{shard_id}")
}

/// Why a lease operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("lease {0} is held by another worker now")]
    Lost(String),
    #[error(transparent)]
    Remote(#[from] crate::remote::RemoteError),
}

/// The lease table, as one worker uses it.
#[derive(Debug, Clone)]
pub struct LeaseTable {
    pub engine: TableEngine,
    pub table: String,
    pub worker_id: String,
}

impl LeaseTable {
    /// Every lease.
    pub async fn all(&self) -> Result<Vec<Lease>, LeaseError> {
        Ok(match &self.engine {
            TableEngine::DynamoDb(db) => db
                .scan_all(&self.table)
                .await?
                .iter()
                .filter_map(Lease::from_item)
                .collect(),
            TableEngine::Postgres(pg) => pg
                .leases(&self.table)
                .await?
                .into_iter()
                .map(|r| Lease {
                    key: r.key,
                    owner: r.owner,
                    counter: r.counter,
                    checkpoint: r.checkpoint,
                    parents: r.parents,
                })
                .collect(),
        })
    }

    /// Creates the lease of a shard unless it exists (then nothing changes).
    pub async fn create(
        &self,
        key: &str,
        checkpoint: &str,
        parents: &[String],
    ) -> Result<bool, LeaseError> {
        let db = match &self.engine {
            TableEngine::DynamoDb(db) => db,
            TableEngine::Postgres(pg) => {
                return Ok(pg
                    .create_lease(&self.table, key, checkpoint, parents)
                    .await?);
            }
        };
        let mut item = json!({
            "leaseKey": {"S": key},
            "leaseOwner": {"S": ""},
            "leaseCounter": {"N": "0"},
            "checkpoint": {"S": checkpoint},
            "ownerSwitchesSinceCheckpoint": {"N": "0"},
        });
        if !parents.is_empty() {
            item["parentShardId"] = json!({"SS": parents});
        }
        match db
            .put_if(
                &self.table,
                item,
                "attribute_not_exists(#k)",
                json!({"#k": "leaseKey"}),
                None,
            )
            .await
        {
            Ok(()) => Ok(true),
            Err(ConditionalError::ConditionFailed) => Ok(false),
            Err(ConditionalError::Remote(e)) => Err(e.into()),
        }
    }

    /// Takes `lease` as it was seen (its counter): Ok(new counter), or Lost when
    /// another worker wrote it since.
    pub async fn take(&self, lease: &Lease) -> Result<u64, LeaseError> {
        self.update(
            &lease.key,
            LeaseUpdate {
                expect_owner: None,
                expect_counter: lease.counter,
                owner: Some(&self.worker_id),
                counter: lease.counter + 1,
                checkpoint: None,
            },
        )
        .await
    }

    /// Raises the counter of a lease this worker holds at `counter` (a renewal), and
    /// moves its checkpoint when one is given.
    async fn write_held(
        &self,
        key: &str,
        counter: u64,
        checkpoint: Option<&str>,
    ) -> Result<u64, LeaseError> {
        self.update(
            key,
            LeaseUpdate {
                expect_owner: Some(&self.worker_id),
                expect_counter: counter,
                owner: None,
                counter: counter + 1,
                checkpoint,
            },
        )
        .await
    }

    /// Gives up a lease this worker holds at `counter` (a clean stop): no owner, so
    /// another worker takes it at its next cycle instead of after the lease duration.
    async fn release(&self, key: &str, counter: u64) -> Result<u64, LeaseError> {
        self.update(
            key,
            LeaseUpdate {
                expect_owner: Some(&self.worker_id),
                expect_counter: counter,
                owner: Some(""),
                counter: counter + 1,
                checkpoint: None,
            },
        )
        .await
    }

    /// One conditional write of a lease: Ok(its new counter), or Lost when the lease
    /// was not as expected.
    async fn update(&self, key: &str, u: LeaseUpdate<'_>) -> Result<u64, LeaseError> {
        let won = match &self.engine {
            TableEngine::Postgres(pg) => pg.update_lease(&self.table, key, u).await?,
            TableEngine::DynamoDb(db) => {
                // Only the names and values the expressions use: DynamoDB refuses others.
                let mut sets = vec!["#c = :next"];
                let mut names = json!({"#c": "leaseCounter"});
                let mut values = json!({
                    ":next": {"N": u.counter.to_string()},
                    ":seen": {"N": u.expect_counter.to_string()},
                });
                let mut condition = "#c = :seen".to_owned();
                if let Some(owner) = u.owner {
                    sets.push("#o = :owner");
                    names["#o"] = "leaseOwner".into();
                    values[":owner"] = json!({"S": owner});
                }
                if let Some(me) = u.expect_owner {
                    condition.push_str(" AND #o = :me");
                    names["#o"] = "leaseOwner".into();
                    values[":me"] = json!({"S": me});
                }
                if let Some(cp) = u.checkpoint {
                    sets.push("#p = :cp");
                    sets.push("#s = :zero");
                    names["#p"] = "checkpoint".into();
                    names["#s"] = "ownerSwitchesSinceCheckpoint".into();
                    values[":cp"] = json!({"S": cp});
                    values[":zero"] = json!({"N": "0"});
                } else if u.owner.is_some() {
                    sets.push("#s = if_not_exists(#s, :zero) + :one");
                    names["#s"] = "ownerSwitchesSinceCheckpoint".into();
                    values[":zero"] = json!({"N": "0"});
                    values[":one"] = json!({"N": "1"});
                }
                match db
                    .update_if(
                        &self.table,
                        json!({"leaseKey": {"S": key}}),
                        &format!("SET {}", sets.join(", ")),
                        &condition,
                        names,
                        values,
                    )
                    .await
                {
                    Ok(()) => true,
                    Err(ConditionalError::ConditionFailed) => false,
                    Err(ConditionalError::Remote(e)) => return Err(e.into()),
                }
            }
        };
        if won {
            Ok(u.counter)
        } else {
            Err(LeaseError::Lost(key.to_owned()))
        }
    }

    /// Keeps a dead letter beside the leases (there is no dead-letter store in a
    /// worker): `deadletter/{lease key}/{first sequence number}`, the record as JSON.
    pub async fn put_dead_letter(
        &self,
        lease_key: &str,
        first_sequence_number: &str,
        record: &str,
    ) -> Result<(), LeaseError> {
        let key = format!("deadletter/{lease_key}/{first_sequence_number}");
        match &self.engine {
            TableEngine::DynamoDb(db) => {
                db.put_items(
                    &self.table,
                    vec![json!({"leaseKey": {"S": key}, "record": {"S": record}})],
                )
                .await?;
            }
            TableEngine::Postgres(pg) => pg.put_dead_letter(&self.table, &key, record).await?,
        }
        Ok(())
    }
}

/// A lease this worker holds: its last written counter, shared by the renewals and the
/// poller's checkpoints (one write at a time, so neither invalidates the other's
/// condition).
#[derive(Debug)]
pub struct HeldLease {
    pub key: String,
    pub shard_id: String,
    counter: tokio::sync::Mutex<u64>,
    /// When the last successful write was sent.
    written_at: Mutex<Instant>,
    /// The checkpoint as this worker last wrote or read it.
    checkpoint: Mutex<String>,
    lost: AtomicBool,
    duration: Duration,
}

impl HeldLease {
    pub fn new(
        lease: &Lease,
        shard_id: &str,
        counter: u64,
        sent_at: Instant,
        duration: Duration,
    ) -> Self {
        Self {
            key: lease.key.clone(),
            shard_id: shard_id.to_owned(),
            counter: tokio::sync::Mutex::new(counter),
            written_at: Mutex::new(sent_at),
            checkpoint: Mutex::new(lease.checkpoint.clone()),
            lost: AtomicBool::new(false),
            duration,
        }
    }

    /// Whether this worker may still invoke for the shard: not lost, and renewed
    /// recently enough that nobody may have taken it over.
    pub fn valid(&self) -> bool {
        !self.lost.load(Ordering::Relaxed)
            && self
                .written_at
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .elapsed()
                < self.duration
    }

    /// Whether another worker has it now.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// The checkpoint as last written or read.
    pub fn checkpoint(&self) -> String {
        self.checkpoint
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Renews the lease.
    pub async fn renew(&self, table: &LeaseTable) -> Result<(), LeaseError> {
        let mut counter = self.counter.lock().await;
        let sent = Instant::now();
        match table.write_held(&self.key, *counter, None).await {
            Ok(next) => {
                *counter = next;
                self.written(sent);
                Ok(())
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Moves the checkpoint, fenced by the counter.
    pub async fn set_checkpoint(
        &self,
        table: &LeaseTable,
        checkpoint: &str,
    ) -> Result<(), LeaseError> {
        let mut counter = self.counter.lock().await;
        if self.lost() {
            return Err(LeaseError::Lost(self.key.clone()));
        }
        let sent = Instant::now();
        match table
            .write_held(&self.key, *counter, Some(checkpoint))
            .await
        {
            Ok(next) => {
                *counter = next;
                self.written(sent);
                *self
                    .checkpoint
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = checkpoint.to_owned();
                Ok(())
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Gives the lease up (a clean stop); this worker invokes nothing more for it.
    pub async fn release(&self, table: &LeaseTable) -> Result<(), LeaseError> {
        let mut counter = self.counter.lock().await;
        self.lost.store(true, Ordering::Relaxed);
        *counter = table.release(&self.key, *counter).await?;
        Ok(())
    }

    fn written(&self, sent: Instant) {
        *self
            .written_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = sent;
    }

    fn failed(&self, e: LeaseError) -> LeaseError {
        if matches!(e, LeaseError::Lost(_)) {
            self.lost.store(true, Ordering::Relaxed);
        }
        e
    }
}

/// What a worker has seen of each lease's counter and since when (its own clock), to
/// tell a live holder from a dead one.
#[derive(Debug, Default)]
pub struct Observations {
    seen: HashMap<String, (u64, Instant)>,
}

impl Observations {
    /// Notes the leases as read now.
    pub fn note(&mut self, leases: &[Lease], now: Instant) {
        for l in leases {
            let moved = self.seen.get(&l.key).is_none_or(|(c, _)| *c != l.counter);
            if moved {
                self.seen.insert(l.key.clone(), (l.counter, now));
            }
        }
    }

    /// Free, or its counter has stood still for `duration`.
    pub fn expired(&self, lease: &Lease, now: Instant, duration: Duration) -> bool {
        lease.owner.is_empty()
            || self.seen.get(&lease.key).is_some_and(|(c, since)| {
                *c == lease.counter && now.duration_since(*since) >= duration
            })
    }
}

/// Which leases to take this cycle: every expired one up to this worker's share; when
/// none is expired and the busiest worker holds two more than this one, one of its
/// leases.
pub fn choose(
    leases: &[Lease],
    observations: &Observations,
    me: &str,
    now: Instant,
    duration: Duration,
) -> Vec<Lease> {
    let active: Vec<&Lease> = leases.iter().filter(|l| !l.finished()).collect();
    let mut owners: HashMap<&str, usize> = HashMap::new();
    owners.insert(me, 0);
    for l in &active {
        if !observations.expired(l, now, duration) {
            *owners.entry(l.owner.as_str()).or_default() += 1;
        }
    }
    let share = active.len().div_ceil(owners.len().max(1));
    let mine = owners.get(me).copied().unwrap_or(0);
    if mine >= share {
        return Vec::new();
    }
    let expired: Vec<Lease> = active
        .iter()
        .filter(|l| l.owner != me && observations.expired(l, now, duration))
        .take(share - mine)
        .map(|l| (*l).clone())
        .collect();
    if !expired.is_empty() {
        return expired;
    }
    let busiest = owners
        .iter()
        .filter(|(o, _)| **o != me)
        .max_by_key(|(o, n)| (**n, std::cmp::Reverse(**o)));
    match busiest {
        // One more than this worker would leave a difference of one at worst, so two
        // workers never trade a lease back and forth.
        Some((owner, n)) if *n > mine + 1 => active
            .iter()
            .find(|l| l.owner == *owner)
            .map(|l| vec![(*l).clone()])
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(key: &str, owner: &str, counter: u64) -> Lease {
        Lease {
            key: key.into(),
            owner: owner.into(),
            counter,
            checkpoint: "TRIM_HORIZON".into(),
            parents: vec![],
        }
    }

    #[test]
    fn a_new_worker_takes_free_leases_up_to_its_share_then_steals_one_at_a_time() {
        let d = Duration::from_secs(5);
        let t0 = Instant::now();
        let mut obs = Observations::default();
        let free: Vec<Lease> = (0..4).map(|i| lease(&format!("m/s{i}"), "", 0)).collect();
        obs.note(&free, t0);
        // Alone, a worker's share is every lease.
        assert_eq!(choose(&free, &obs, "a", t0, d).len(), 4);
        // Worker b arrives while a holds all four, renewing: b steals one.
        let held: Vec<Lease> = (0..4).map(|i| lease(&format!("m/s{i}"), "a", 7)).collect();
        let mut obs = Observations::default();
        obs.note(&held, t0);
        let taken = choose(&held, &obs, "b", t0 + Duration::from_secs(1), d);
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].owner, "a");
        // At its share (2 of 4 with two workers) b takes nothing more.
        let mut even = held.clone();
        even[0].owner = "b".into();
        even[1].owner = "b".into();
        assert!(choose(&even, &obs, "b", t0 + Duration::from_secs(1), d).is_empty());
        // Three workers over four shards: from 2/2/0 the idle one takes one; 2/1/1 is
        // where it rests (no one takes a lease back and forth).
        let mut three = held.clone();
        three[2].owner = "b".into();
        three[3].owner = "b".into();
        let taken = choose(&three, &obs, "c", t0, d);
        assert_eq!(taken.len(), 1);
        three[3].owner = "c".into();
        for me in ["a", "b", "c"] {
            assert!(choose(&three, &obs, me, t0, d).is_empty(), "{me} took more");
        }
    }

    #[test]
    fn a_lease_whose_counter_stands_still_expires_and_is_taken() {
        let d = Duration::from_secs(5);
        let t0 = Instant::now();
        let mut obs = Observations::default();
        let leases = vec![lease("m/s0", "dead", 3), lease("m/s1", "b", 9)];
        obs.note(&leases, t0);
        assert!(choose(&leases, &obs, "b", t0 + Duration::from_secs(4), d).is_empty());
        // The dead worker's counter never moves; b's own does.
        let later = vec![lease("m/s0", "dead", 3), lease("m/s1", "b", 12)];
        obs.note(&later, t0 + Duration::from_secs(5));
        let taken = choose(&later, &obs, "b", t0 + Duration::from_secs(5), d);
        assert_eq!(taken, vec![lease("m/s0", "dead", 3)]);
        // Finished shards are no one's work.
        let mut done = later.clone();
        done[0].checkpoint = SHARD_END.into();
        assert!(choose(&done, &obs, "b", t0 + Duration::from_secs(9), d).is_empty());
    }
}
