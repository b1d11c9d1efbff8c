//! The embedded engine's table writes: group commit. One thread takes the write batches
//! of every concurrent request, writes them as one atomic batch and makes it durable with
//! one fdatasync. It lives in the engine, beside the shard logs' group commit
//! (`super::group_commit`), because batching writes into one durability point is how
//! this engine makes writes durable cheaply; another engine batches its own way.
//!
//! A request decides its writes under the table write lock (reading the current items
//! for conditions), hands them here and releases the lock before they are on disk. So
//! that the next request's conditions see them, queued writes sit in an overlay that
//! item reads consult first, until the batch holding them is written.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use bytes::Bytes;

use super::{StorageError, Store, SyncMode, WriteOp};

/// A queued item write: the item bytes, or None for a delete; and which job wrote it.
type Pending = HashMap<(u32, Vec<u8>), (u64, Option<Bytes>)>;

struct Job {
    ops: Vec<WriteOp>,
    durable: bool,
    version: u64,
    reply: mpsc::Sender<Result<(), String>>,
}

/// The table writer thread and its overlay.
pub struct TableWriter {
    tx: Mutex<mpsc::Sender<Job>>,
    pending: Arc<Mutex<Pending>>,
    next_version: std::sync::atomic::AtomicU64,
    stop: Arc<AtomicBool>,
    /// Item writes (puts and deletes) made durable, by table id (`/metrics`).
    written: Arc<Mutex<HashMap<u32, u64>>>,
}

impl std::fmt::Debug for TableWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableWriter").finish_non_exhaustive()
    }
}

/// Most jobs written by one batch.
const MAX_JOBS: usize = 1024;

impl TableWriter {
    /// Starts the writer; `fsync` says whether durable writes wait for fdatasync.
    pub fn start(store: Arc<dyn Store>, fsync: bool) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let pending: Arc<Mutex<Pending>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let written: Arc<Mutex<HashMap<u32, u64>>> = Arc::default();
        let (p, s, w) = (
            Arc::clone(&pending),
            Arc::clone(&stop),
            Arc::clone(&written),
        );
        std::thread::Builder::new()
            .name("spillway-table-writer".into())
            .spawn(move || run(&*store, &rx, &p, fsync, &s, &w))
            .expect("spawn table writer");
        Self {
            tx: Mutex::new(tx),
            pending,
            next_version: std::sync::atomic::AtomicU64::new(1),
            stop,
            written,
        }
    }

    /// Item writes made durable so far, by table id.
    pub fn written(&self) -> HashMap<u32, u64> {
        self.written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The queued write of an item, if any: Some(Some(bytes)) put, Some(None) deleted.
    pub fn pending(&self, table_id: u32, key: &[u8]) -> Option<Option<Bytes>> {
        let p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.get(&(table_id, key.to_vec())).map(|(_, v)| v.clone())
    }

    /// Queues writes (call with the table write lock held, so the overlay and the
    /// decisions stay in order); returns a receiver answered once they are written (and
    /// fsynced, when `durable`).
    pub fn submit(&self, ops: Vec<WriteOp>, durable: bool) -> mpsc::Receiver<Result<(), String>> {
        let version = self.next_version.fetch_add(1, Ordering::Relaxed);
        {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            for op in &ops {
                match op {
                    WriteOp::PutItem {
                        table_id,
                        key,
                        item,
                    } => {
                        p.insert(
                            (*table_id, key.clone()),
                            (version, Some(Bytes::copy_from_slice(item))),
                        );
                    }
                    WriteOp::DeleteItem { table_id, key } => {
                        p.insert((*table_id, key.clone()), (version, None));
                    }
                    _ => {}
                }
            }
        }
        let (reply, answer) = mpsc::channel();
        let job = Job {
            ops,
            durable,
            version,
            reply,
        };
        let sent = self.tx.lock().unwrap_or_else(|e| e.into_inner()).send(job);
        if let Err(mpsc::SendError(job)) = sent {
            let _ = job.reply.send(Err("the table writer has stopped".into()));
        }
        answer
    }
}

impl Drop for TableWriter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn run(
    store: &dyn Store,
    rx: &mpsc::Receiver<Job>,
    pending: &Mutex<Pending>,
    fsync: bool,
    stop: &AtomicBool,
    written: &Mutex<HashMap<u32, u64>>,
) {
    while !stop.load(Ordering::Acquire) {
        let first = match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(j) => j,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let mut jobs = vec![first];
        while jobs.len() < MAX_JOBS {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let ops: Vec<WriteOp> = jobs.iter().flat_map(|j| j.ops.iter().cloned()).collect();
        let durable = fsync && jobs.iter().any(|j| j.durable);
        let result = store.apply(
            &ops,
            if durable {
                SyncMode::SyncData
            } else {
                SyncMode::Os
            },
        );
        {
            // Written (or failed, and so never to be): out of the overlay, unless a later
            // job queued the same item meanwhile.
            let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
            for job in &jobs {
                for op in &job.ops {
                    let key = match op {
                        WriteOp::PutItem { table_id, key, .. }
                        | WriteOp::DeleteItem { table_id, key } => (*table_id, key.clone()),
                        _ => continue,
                    };
                    if p.get(&key).is_some_and(|(v, _)| *v == job.version) {
                        p.remove(&key);
                    }
                }
            }
        }
        if result.is_ok() {
            let mut w = written.lock().unwrap_or_else(|e| e.into_inner());
            for op in &ops {
                if let WriteOp::PutItem { table_id, .. } | WriteOp::DeleteItem { table_id, .. } = op
                {
                    *w.entry(*table_id).or_default() += 1;
                }
            }
        }
        let answer = result.map_err(|e: StorageError| e.to_string());
        for job in jobs {
            let _ = job.reply.send(answer.clone());
        }
    }
}
