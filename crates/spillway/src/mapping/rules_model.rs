//! Lambda's rules for one batch (`run_batch`) against a model: random batches with
//! random poison records, under every combination of BisectBatchOnFunctionError,
//! ReportBatchItemFailures and a finite MaximumRetryAttempts, through a host that
//! records what was invoked, written, dead-lettered and checkpointed. Time is paused,
//! so the retries' backoff costs nothing.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Mutex;

use bytes::Bytes;
use proptest::prelude::*;

use super::{BatchHost, MappingError, MappingStats, Outcome, run_batch};
use crate::config::MappingConfig;
use crate::function::FunctionError;
use crate::storage::WriteOp;
use crate::stream::Record;

/// What the host saw, in order.
#[derive(Debug, Default)]
struct Seen {
    invocations: Vec<Vec<u64>>,
    written: Vec<u64>,
    dead: Vec<Vec<u64>>,
    checkpoints: Vec<u64>,
}

/// A function that fails on its poison records: the whole invocation, or (reporting)
/// with the lowest poison record as its first failure.
struct ModelHost {
    config: MappingConfig,
    poison: BTreeSet<u64>,
    report: bool,
    stats: MappingStats,
    seen: Mutex<Seen>,
}

fn put(counter: u64) -> WriteOp {
    WriteOp::PutItem {
        table_id: 0,
        key: counter.to_be_bytes().to_vec(),
        item: Vec::new(),
    }
}

fn counter_of(op: &WriteOp) -> u64 {
    match op {
        WriteOp::PutItem { key, .. } => u64::from_be_bytes(key[..8].try_into().unwrap()),
        other => panic!("unexpected write {other:?}"),
    }
}

impl BatchHost for ModelHost {
    fn config(&self) -> &MappingConfig {
        &self.config
    }

    fn now_ms(&self) -> u64 {
        0
    }

    async fn invoke(&self, batch: &[Record]) -> (Outcome, Vec<WriteOp>) {
        let counters: Vec<u64> = batch.iter().map(|r| r.counter).collect();
        self.seen.lock().unwrap().invocations.push(counters.clone());
        let first_poison = counters.iter().position(|c| self.poison.contains(c));
        match (first_poison, self.report) {
            (None, _) => (Outcome::Success, counters.into_iter().map(put).collect()),
            (Some(i), true) => (
                Outcome::Partial(i),
                counters[..i].iter().copied().map(put).collect(),
            ),
            (Some(_), false) => (
                Outcome::Failure(FunctionError::Unhandled {
                    error_type: "Poison".into(),
                    message: "poison".into(),
                }),
                Vec::new(),
            ),
        }
    }

    async fn settle(&self, writes: Vec<WriteOp>, next: Option<u64>) -> Result<(), MappingError> {
        let mut seen = self.seen.lock().unwrap();
        seen.written.extend(writes.iter().map(counter_of));
        seen.checkpoints.extend(next);
        Ok(())
    }

    async fn dead_letter(
        &self,
        batch: &[Record],
        _condition: &str,
        _invokes: u64,
        next: Option<u64>,
    ) -> Result<(), MappingError> {
        let mut seen = self.seen.lock().unwrap();
        seen.dead.push(batch.iter().map(|r| r.counter).collect());
        seen.checkpoints.extend(next);
        Ok(())
    }

    fn log_failure(&self, _e: &FunctionError, _batch: &[Record], _attempts: u32) {}

    fn stats(&self) -> &MappingStats {
        &self.stats
    }
}

fn records(n: u64) -> Vec<Record> {
    (1..=n)
        .map(|c| Record {
            counter: c,
            sequence_number: format!("{c:056}"),
            partition_key: format!("pk{c}"),
            data: Bytes::from_static(b"{}"),
            arrival_ms: 1,
        })
        .collect()
}

fn run(n: u64, poison: BTreeSet<u64>, bisect: bool, report: bool, retries: i64) -> Seen {
    let mut config: MappingConfig = toml::from_str(
        "EventSourceArn = \"arn:aws:kinesis:us-east-1:000000000000:stream/s\"\nFunctionName = \"f\"",
    )
    .unwrap();
    config.bisect_batch_on_function_error = bisect;
    config.maximum_retry_attempts = retries;
    if report {
        config.function_response_types = vec!["ReportBatchItemFailures".into()];
    }
    let host = ModelHost {
        config,
        poison,
        report,
        stats: MappingStats::default(),
        seen: Mutex::default(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime
        .block_on(run_batch(&host, records(n), true))
        .unwrap();
    host.seen.into_inner().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_record_is_written_or_dead_lettered_once_and_the_checkpoint_only_moves_forward(
        n in 1u64..40,
        poison in proptest::collection::btree_set(1u64..40, 0..4),
        bisect in any::<bool>(),
        report in any::<bool>(),
        retries in 0i64..3,
    ) {
        let poison: BTreeSet<u64> = poison.into_iter().filter(|c| *c <= n).collect();
        let seen = run(n, poison.clone(), bisect, report, retries);
        let all: BTreeSet<u64> = (1..=n).collect();
        let written: BTreeSet<u64> = seen.written.iter().copied().collect();
        let dead: BTreeSet<u64> = seen.dead.iter().flatten().copied().collect();
        // Accounted for: each record written or dead-lettered, never both; a poison
        // record never written.
        prop_assert_eq!(written.union(&dead).copied().collect::<BTreeSet<_>>(), all);
        prop_assert!(written.is_disjoint(&dead));
        prop_assert!(written.is_disjoint(&poison));
        // The checkpoint never goes back and ends past the batch.
        prop_assert!(seen.checkpoints.windows(2).all(|w| w[0] <= w[1]), "{:?}", seen.checkpoints);
        prop_assert_eq!(seen.checkpoints.last().copied(), Some(n + 1));
        // An invocation's records are in order and contiguous.
        for inv in &seen.invocations {
            prop_assert!(inv.windows(2).all(|w| w[1] == w[0] + 1));
        }
        let first_poison = poison.iter().next().copied();
        match (first_poison, report, bisect) {
            (None, _, _) => {
                prop_assert_eq!(seen.invocations.len(), 1);
                prop_assert!(dead.is_empty());
            }
            // Reported failures: the prefix before the first poison record is kept, the
            // rest is retried from it and, once the retries are spent, bypassed whole.
            (Some(p), true, _) => {
                prop_assert_eq!(written, (1..p).collect::<BTreeSet<_>>());
                prop_assert_eq!(dead, (p..=n).collect::<BTreeSet<_>>());
                prop_assert_eq!(seen.invocations.len() as i64, retries + 1);
            }
            // Bisection isolates each poison record; everything else is written.
            (Some(_), false, true) => {
                prop_assert_eq!(&dead, &poison);
                prop_assert!(seen.dead.iter().all(|d| d.len() == 1));
            }
            // Neither: the whole batch is retried, then bypassed whole.
            (Some(_), false, false) => {
                prop_assert_eq!(dead, (1..=n).collect::<BTreeSet<_>>());
                prop_assert_eq!(seen.invocations.len() as i64, retries + 1);
            }
        }
    }
}
