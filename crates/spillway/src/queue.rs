//! SQS queues and their messages: the domain behind `api::sqs`, and the on-failure
//! destination of event source mappings (`mapping::dead_letter::FailureDestination`).
//!
//! Durability: each queue is a [`ResourceStore`] document (kind `sqs.queue`: settings,
//! tags, its generation); each message is a document of its own (kind
//! `sqs.message:{queue}:{generation}`, named by a 20-digit sequence number) written
//! before `SendMessage` answers and deleted before `DeleteMessage` answers. Receiving
//! changes only memory: after a restart every message not deleted is visible again, with
//! its receive count back at zero. Purging or deleting a queue moves it to a new
//! generation at once; the old generation's documents are deleted in the background.
//!
//! Memory holds each message's metadata (id, digests, times, counts), not its body,
//! which is read from the store when the message is received. Bounds: 1,000 queues,
//! 100,000 messages a queue, 256 KiB a message (body and attributes).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::storage::{ResourceStore, StorageError};
use crate::stream::now_ms;

pub const QUEUE_KIND: &str = "sqs.queue";
/// Most queues one server keeps.
pub const MAX_QUEUES: usize = 1_000;
/// Most messages one queue holds.
pub const MAX_MESSAGES: usize = 100_000;
/// Largest message (body and attributes), SQS's classic limit.
pub const MAX_MESSAGE_BYTES: usize = 262_144;
/// Most tags on a queue.
const MAX_TAGS: usize = 50;
/// Most message attributes on a message.
const MAX_MESSAGE_ATTRIBUTES: usize = 10;
/// Expired messages removed in one access of a queue (the rest on later accesses).
const EXPIRY_BATCH: usize = 1_000;

/// Why a queue operation failed; `api::sqs` maps each to SQS's error.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("The specified queue does not exist.")]
    NotFound,
    #[error("{0}")]
    AlreadyExists(String),
    #[error("Unknown Attribute {0}.")]
    InvalidAttributeName(String),
    #[error("{0}")]
    InvalidAttributeValue(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    InvalidContents(String),
    #[error("The input receipt handle \"{0}\" is not a valid receipt handle.")]
    ReceiptHandleInvalid(String),
    #[error("Message does not exist or is not available for visibility timeout change.")]
    NotInflight,
    #[error("{0}")]
    OverLimit(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A message attribute as SendMessage takes it (binary values in base64), in SQS's JSON
/// shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageAttribute {
    pub data_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
    /// Base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_value: Option<String>,
}

/// A queue as kept in the resource store.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct QueueDoc {
    name: String,
    /// Names the kind of this queue's message documents; new at purge.
    generation: u64,
    created_s: u64,
    modified_s: u64,
    /// The settable attributes, defaults filled in.
    attributes: BTreeMap<String, String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// A message as kept in the resource store.
#[derive(Debug, Serialize, Deserialize)]
struct MessageDoc {
    id: String,
    body: String,
    #[serde(default)]
    attributes: BTreeMap<String, MessageAttribute>,
    sent_ms: u64,
    #[serde(default)]
    delay_s: u64,
}

/// What memory keeps of a message.
#[derive(Debug, Clone)]
struct MessageMeta {
    id: String,
    md5_body: String,
    md5_attributes: Option<String>,
    sent_ms: u64,
    visible_at_ms: u64,
    receive_count: u64,
    first_receive_ms: u64,
    /// Changes at every receive, so that an old receipt handle can be told apart.
    nonce: u64,
}

#[derive(Debug)]
struct Queue {
    doc: QueueDoc,
    /// By sequence number (the document's name).
    messages: BTreeMap<u64, MessageMeta>,
    next_seq: u64,
}

impl Queue {
    fn message_kind(&self) -> String {
        message_kind(&self.doc.name, self.doc.generation)
    }

    fn attribute_u64(&self, name: &str, default: u64) -> u64 {
        self.doc
            .attributes
            .get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }
}

fn message_kind(queue: &str, generation: u64) -> String {
    format!("sqs.message:{queue}:{generation}")
}

/// A message just sent.
#[derive(Debug, Clone)]
pub struct Sent {
    pub message_id: String,
    pub md5_body: String,
    pub md5_attributes: Option<String>,
}

/// A message received.
#[derive(Debug, Clone)]
pub struct Received {
    pub message_id: String,
    pub receipt_handle: String,
    pub md5_body: String,
    pub body: String,
    /// System attributes (SentTimestamp, ApproximateReceiveCount, ...).
    pub attributes: BTreeMap<String, String>,
    pub message_attributes: BTreeMap<String, MessageAttribute>,
    pub md5_attributes: Option<String>,
}

/// Every queue of one server.
pub struct Queues {
    resources: Arc<dyn ResourceStore>,
    pub region: String,
    pub account_id: String,
    /// None until loaded from the store (at first use).
    state: Mutex<Option<BTreeMap<String, Queue>>>,
    /// Woken when messages may have become receivable (long polling).
    arrivals: tokio::sync::Notify,
}

impl std::fmt::Debug for Queues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queues")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// The queues of each store in this process: the SQS API and the mappings' on-failure
/// delivery share one [`Queues`] per store (per server).
static SHARED: Mutex<Vec<(usize, Weak<Queues>)>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The default of every settable attribute.
const DEFAULTS: [(&str, &str); 6] = [
    ("DelaySeconds", "0"),
    ("MaximumMessageSize", "262144"),
    ("MessageRetentionPeriod", "345600"),
    ("ReceiveMessageWaitTimeSeconds", "0"),
    ("VisibilityTimeout", "30"),
    ("SqsManagedSseEnabled", "true"),
];

/// Whether a queue name is valid: 1-80 characters of letters, digits, `-` and `_`, with
/// `.fifo` at the end of a FIFO queue's.
pub fn valid_name(name: &str) -> bool {
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    (1..=80).contains(&name.len())
        && !base.is_empty()
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The queue name of a queue URL (`http://host/ACCOUNT/NAME`), an ARN
/// (`arn:aws:sqs:REGION:ACCOUNT:NAME`) or a bare name.
pub fn name_of(reference: &str) -> &str {
    let reference = reference.trim_end_matches('/');
    if reference.starts_with("arn:") {
        return reference.rsplit(':').next().unwrap_or(reference);
    }
    reference.rsplit('/').next().unwrap_or(reference)
}

/// Checks one settable attribute's value; the canonical text of it.
fn check_attribute(name: &str, value: &str, fifo: bool) -> Result<String, QueueError> {
    let invalid =
        || QueueError::InvalidAttributeValue(format!("Invalid value for the parameter {name}."));
    let range = |lo: u64, hi: u64| -> Result<String, QueueError> {
        let v: u64 = value.trim().parse().map_err(|_| invalid())?;
        if (lo..=hi).contains(&v) {
            Ok(v.to_string())
        } else {
            Err(invalid())
        }
    };
    let boolean = || match value.to_ascii_lowercase().as_str() {
        "true" => Ok("true".to_owned()),
        "false" => Ok("false".to_owned()),
        _ => Err(invalid()),
    };
    let json = |max: usize| -> Result<String, QueueError> {
        if value.is_empty() {
            return Ok(String::new());
        }
        if value.len() > max || serde_json::from_str::<serde_json::Value>(value).is_err() {
            return Err(invalid());
        }
        Ok(value.to_owned())
    };
    match name {
        "DelaySeconds" => range(0, 900),
        "MaximumMessageSize" => range(1024, MAX_MESSAGE_BYTES as u64),
        "MessageRetentionPeriod" => range(60, 1_209_600),
        "ReceiveMessageWaitTimeSeconds" => range(0, 20),
        "VisibilityTimeout" => range(0, 43_200),
        "KmsDataKeyReusePeriodSeconds" => range(60, 86_400),
        "Policy" => json(20_480),
        "RedrivePolicy" | "RedriveAllowPolicy" => json(4_096),
        "SqsManagedSseEnabled" => boolean(),
        "KmsMasterKeyId" if value.len() <= 2_048 => Ok(value.to_owned()),
        "FifoQueue" if fifo => boolean(),
        "ContentBasedDeduplication" if fifo => boolean(),
        "DeduplicationScope" if fifo && matches!(value, "messageGroup" | "queue") => {
            Ok(value.to_owned())
        }
        "FifoThroughputLimit" if fifo && matches!(value, "perQueue" | "perMessageGroupId") => {
            Ok(value.to_owned())
        }
        "KmsMasterKeyId" | "DeduplicationScope" | "FifoThroughputLimit" => Err(invalid()),
        _ => Err(QueueError::InvalidAttributeName(name.to_owned())),
    }
}

fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), QueueError> {
    for (k, v) in tags {
        if k.is_empty() || k.len() > 128 || v.len() > 256 {
            return Err(QueueError::InvalidParameter(format!(
                "Tag {k:?} is not valid: keys take 1-128 characters, values up to 256."
            )));
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(QueueError::InvalidParameter(format!(
            "Too many tags: a queue takes at most {MAX_TAGS}."
        )));
    }
    Ok(())
}

/// Whether every character is one SQS accepts in a message (XML's characters).
fn valid_message_text(text: &str) -> bool {
    text.chars().all(|c| {
        matches!(c, '\u{9}' | '\u{a}' | '\u{d}' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
            || c >= '\u{10000}'
    })
}

/// MD5 of a text, hex.
fn md5_hex(data: &[u8]) -> String {
    let digest = Md5::digest(data);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// SQS's MD5OfMessageAttributes: over the attributes sorted by name, each as its
/// length-prefixed name and data type, a transport byte (1 string, 2 binary) and its
/// length-prefixed value.
pub fn md5_of_attributes(attributes: &BTreeMap<String, MessageAttribute>) -> Option<String> {
    fn field(md: &mut Md5, bytes: &[u8]) {
        md.update((bytes.len() as u32).to_be_bytes());
        md.update(bytes);
    }
    if attributes.is_empty() {
        return None;
    }
    let mut md = Md5::new();
    for (name, a) in attributes {
        field(&mut md, name.as_bytes());
        field(&mut md, a.data_type.as_bytes());
        if let Some(s) = &a.string_value {
            md.update([1u8]);
            field(&mut md, s.as_bytes());
        } else if let Some(b) = &a.binary_value {
            let raw = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b)
                .unwrap_or_default();
            md.update([2u8]);
            field(&mut md, &raw);
        }
    }
    Some(md.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn check_message_attributes(
    attributes: &BTreeMap<String, MessageAttribute>,
) -> Result<usize, QueueError> {
    if attributes.len() > MAX_MESSAGE_ATTRIBUTES {
        return Err(QueueError::InvalidParameter(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [{MAX_MESSAGE_ATTRIBUTES}].",
            attributes.len()
        )));
    }
    let mut size = 0;
    for (name, a) in attributes {
        let bad = |why: &str| {
            Err(QueueError::InvalidParameter(format!(
                "Message attribute '{name}' {why}"
            )))
        };
        if name.is_empty()
            || name.len() > 256
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return bad("has an invalid name.");
        }
        let base = a.data_type.split('.').next().unwrap_or_default();
        if a.data_type.len() > 256 || !matches!(base, "String" | "Number" | "Binary") {
            return bad("must have a data type of String, Number or Binary.");
        }
        match (base, &a.string_value, &a.binary_value) {
            ("Binary", None, Some(b)) => {
                if base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b).is_err() {
                    return bad("has a binary value that is not base64.");
                }
                size += b.len() * 3 / 4;
            }
            ("String" | "Number", Some(s), None) => {
                if !valid_message_text(s) || s.is_empty() {
                    return bad("has an invalid or empty string value.");
                }
                size += s.len();
            }
            _ => return bad("must contain a non-empty value of its data type."),
        }
        size += name.len() + a.data_type.len();
    }
    Ok(size)
}

/// A receipt handle: base64 of queue, message id and nonce.
fn receipt_handle(queue: &str, id: &str, nonce: u64) -> String {
    base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{queue}\n{id}\n{nonce}"),
    )
}

/// The message id and nonce of a receipt handle for `queue`.
fn parse_receipt(queue: &str, handle: &str) -> Result<(String, u64), QueueError> {
    let invalid = || QueueError::ReceiptHandleInvalid(handle.chars().take(200).collect());
    if handle.len() > 1024 {
        return Err(invalid());
    }
    let raw = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, handle)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    let mut parts = text.split('\n');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(q), Some(id), Some(nonce), None) if q == queue => {
            Ok((id.to_owned(), nonce.parse().map_err(|_| invalid())?))
        }
        _ => Err(invalid()),
    }
}

impl Queues {
    /// The queues of `resources`' server: one instance per store in this process.
    pub fn shared(resources: Arc<dyn ResourceStore>, region: &str, account_id: &str) -> Arc<Self> {
        let key = Arc::as_ptr(&resources).cast::<()>() as usize;
        let mut shared = lock(&SHARED);
        shared.retain(|(_, w)| w.strong_count() > 0);
        if let Some(q) = shared
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, w)| w.upgrade())
        {
            return q;
        }
        let q = Arc::new(Self {
            resources,
            region: region.to_owned(),
            account_id: account_id.to_owned(),
            state: Mutex::new(None),
            arrivals: tokio::sync::Notify::new(),
        });
        shared.push((key, Arc::downgrade(&q)));
        q
    }

    /// `arn:aws:sqs:REGION:ACCOUNT:NAME`.
    pub fn arn(&self, name: &str) -> String {
        format!("arn:aws:sqs:{}:{}:{name}", self.region, self.account_id)
    }

    /// Runs `f` over the loaded queues (loading them at first use).
    fn with<R>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, Queue>) -> Result<R, QueueError>,
    ) -> Result<R, QueueError> {
        let mut state = lock(&self.state);
        if state.is_none() {
            *state = Some(self.load()?);
        }
        f(state.as_mut().expect("loaded"))
    }

    /// Runs `f` over one queue, its expired messages removed first.
    fn with_queue<R>(
        &self,
        name: &str,
        f: impl FnOnce(&mut Queue) -> Result<R, QueueError>,
    ) -> Result<R, QueueError> {
        self.with(|queues| {
            let q = queues.get_mut(name).ok_or(QueueError::NotFound)?;
            self.expire(q)?;
            f(q)
        })
    }

    fn load(&self) -> Result<BTreeMap<String, Queue>, QueueError> {
        let mut queues = BTreeMap::new();
        for (name, doc) in self.resources.list_resources(QUEUE_KIND)? {
            let Ok(doc) = serde_json::from_slice::<QueueDoc>(&doc) else {
                tracing::warn!(queue = %name, "unreadable queue document skipped");
                continue;
            };
            let mut q = Queue {
                doc,
                messages: BTreeMap::new(),
                next_seq: 0,
            };
            for (seq, m) in self.resources.list_resources(&q.message_kind())? {
                let (Ok(seq), Ok(m)) =
                    (seq.parse::<u64>(), serde_json::from_slice::<MessageDoc>(&m))
                else {
                    continue;
                };
                q.next_seq = q.next_seq.max(seq + 1);
                q.messages.insert(
                    seq,
                    MessageMeta {
                        md5_body: md5_hex(m.body.as_bytes()),
                        md5_attributes: md5_of_attributes(&m.attributes),
                        id: m.id,
                        sent_ms: m.sent_ms,
                        visible_at_ms: m.sent_ms + m.delay_s * 1000,
                        receive_count: 0,
                        first_receive_ms: 0,
                        nonce: 0,
                    },
                );
            }
            queues.insert(name, q);
        }
        Ok(queues)
    }

    /// Removes messages older than the queue's retention period.
    fn expire(&self, q: &mut Queue) -> Result<(), QueueError> {
        let retention_ms = q.attribute_u64("MessageRetentionPeriod", 345_600) * 1000;
        let cutoff = now_ms().saturating_sub(retention_ms);
        let expired: Vec<u64> = q
            .messages
            .iter()
            .take_while(|(_, m)| m.sent_ms < cutoff)
            .take(EXPIRY_BATCH)
            .map(|(s, _)| *s)
            .collect();
        let kind = q.message_kind();
        for seq in expired {
            self.resources
                .delete_resource(&kind, &format!("{seq:020}"))?;
            q.messages.remove(&seq);
        }
        Ok(())
    }

    fn put_doc(&self, doc: &QueueDoc) -> Result<(), QueueError> {
        let bytes = serde_json::to_vec(doc).expect("queue documents serialize");
        self.resources.put_resource(QUEUE_KIND, &doc.name, &bytes)?;
        Ok(())
    }

    /// Deletes the documents of an old generation of a queue's messages, in the
    /// background (a crash leaves the rest behind, unreferenced).
    fn forget_generation(&self, kind: String) {
        let resources = Arc::clone(&self.resources);
        std::thread::spawn(move || {
            let Ok(docs) = resources.list_resources(&kind) else {
                return;
            };
            for (name, _) in docs {
                if let Err(e) = resources.delete_resource(&kind, &name) {
                    tracing::warn!(%kind, error = %e, "could not delete a purged message");
                    return;
                }
            }
        });
    }

    /// CreateQueue: a new queue, or the existing one when every given attribute
    /// matches it.
    pub fn create(
        &self,
        name: &str,
        attributes: &BTreeMap<String, String>,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), QueueError> {
        if !valid_name(name) {
            return Err(QueueError::InvalidParameter(
                "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"
                    .into(),
            ));
        }
        let fifo = name.ends_with(".fifo");
        let mut checked = BTreeMap::new();
        for (k, v) in attributes {
            checked.insert(k.clone(), check_attribute(k, v, fifo)?);
        }
        if fifo != (checked.get("FifoQueue").map(String::as_str) == Some("true")) {
            return Err(QueueError::InvalidParameter(if fifo {
                "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and FifoQueue attribute must be set to true".into()
            } else {
                "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length".into()
            }));
        }
        check_tags(tags)?;
        self.with(|queues| {
            if let Some(q) = queues.get(name) {
                for (k, v) in &checked {
                    let current = q
                        .doc
                        .attributes
                        .get(k)
                        .map(String::as_str)
                        .or_else(|| DEFAULTS.iter().find(|(d, _)| d == k).map(|(_, v)| *v))
                        .unwrap_or("");
                    if current != v {
                        return Err(QueueError::AlreadyExists(format!(
                            "A queue already exists with the same name and a different value for attribute {k}"
                        )));
                    }
                }
                return Ok(());
            }
            if queues.len() >= MAX_QUEUES {
                return Err(QueueError::OverLimit(format!(
                    "spillway keeps at most {MAX_QUEUES} queues."
                )));
            }
            let now_s = now_ms() / 1000;
            let mut all: BTreeMap<String, String> = DEFAULTS
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            all.extend(checked);
            all.retain(|_, v| !v.is_empty());
            let doc = QueueDoc {
                name: name.to_owned(),
                generation: generation(),
                created_s: now_s,
                modified_s: now_s,
                attributes: all,
                tags: tags.clone(),
            };
            self.put_doc(&doc)?;
            tracing::info!(queue = name, "created queue");
            queues.insert(
                name.to_owned(),
                Queue {
                    doc,
                    messages: BTreeMap::new(),
                    next_seq: 0,
                },
            );
            Ok(())
        })
    }

    /// Fails with `NotFound` unless the queue exists.
    pub fn exists(&self, name: &str) -> Result<(), QueueError> {
        self.with(|queues| {
            queues
                .contains_key(name)
                .then_some(())
                .ok_or(QueueError::NotFound)
        })
    }

    /// Queue names starting with `prefix`, in order.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, QueueError> {
        self.with(|queues| {
            Ok(queues
                .keys()
                .filter(|n| n.starts_with(prefix))
                .cloned()
                .collect())
        })
    }

    /// GetQueueAttributes: the attributes named (`All` for every one).
    pub fn attributes(
        &self,
        name: &str,
        wanted: &[String],
    ) -> Result<BTreeMap<String, String>, QueueError> {
        let arn = self.arn(name);
        self.with_queue(name, |q| {
            let now = now_ms();
            let mut all = q.doc.attributes.clone();
            let (mut visible, mut in_flight, mut delayed) = (0u64, 0u64, 0u64);
            for m in q.messages.values() {
                if m.visible_at_ms <= now {
                    visible += 1;
                } else if m.receive_count > 0 {
                    in_flight += 1;
                } else {
                    delayed += 1;
                }
            }
            all.insert("QueueArn".into(), arn);
            all.insert("ApproximateNumberOfMessages".into(), visible.to_string());
            all.insert(
                "ApproximateNumberOfMessagesNotVisible".into(),
                in_flight.to_string(),
            );
            all.insert(
                "ApproximateNumberOfMessagesDelayed".into(),
                delayed.to_string(),
            );
            all.insert("CreatedTimestamp".into(), q.doc.created_s.to_string());
            all.insert("LastModifiedTimestamp".into(), q.doc.modified_s.to_string());
            if wanted.iter().any(|w| w == "All") {
                return Ok(all);
            }
            let mut out = BTreeMap::new();
            for w in wanted {
                match all.get(w) {
                    Some(v) => {
                        out.insert(w.clone(), v.clone());
                    }
                    None if is_attribute_name(w) => {}
                    None => return Err(QueueError::InvalidAttributeName(w.clone())),
                }
            }
            Ok(out)
        })
    }

    /// SetQueueAttributes (an empty value removes Policy, RedrivePolicy, ...).
    pub fn set_attributes(
        &self,
        name: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), QueueError> {
        let fifo = name.ends_with(".fifo");
        let mut checked = BTreeMap::new();
        for (k, v) in attributes {
            if k == "FifoQueue" {
                return Err(QueueError::InvalidAttributeName(k.clone()));
            }
            checked.insert(k.clone(), check_attribute(k, v, fifo)?);
        }
        self.with_queue(name, |q| {
            let mut doc = q.doc.clone();
            for (k, v) in checked {
                if v.is_empty() {
                    doc.attributes.remove(&k);
                } else {
                    doc.attributes.insert(k, v);
                }
            }
            doc.modified_s = now_ms() / 1000;
            self.put_doc(&doc)?;
            q.doc = doc;
            Ok(())
        })
    }

    pub fn tags(&self, name: &str) -> Result<BTreeMap<String, String>, QueueError> {
        self.with_queue(name, |q| Ok(q.doc.tags.clone()))
    }

    /// TagQueue (`add`) and UntagQueue (`remove`).
    pub fn retag(
        &self,
        name: &str,
        add: &BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<(), QueueError> {
        self.with_queue(name, |q| {
            let mut doc = q.doc.clone();
            doc.tags
                .extend(add.iter().map(|(k, v)| (k.clone(), v.clone())));
            for k in remove {
                doc.tags.remove(k);
            }
            check_tags(&doc.tags)?;
            self.put_doc(&doc)?;
            q.doc = doc;
            Ok(())
        })
    }

    /// DeleteQueue: the queue and its messages.
    pub fn delete(&self, name: &str) -> Result<(), QueueError> {
        self.with(|queues| {
            let q = queues.get(name).ok_or(QueueError::NotFound)?;
            self.resources.delete_resource(QUEUE_KIND, name)?;
            let kind = q.message_kind();
            queues.remove(name);
            self.forget_generation(kind);
            tracing::info!(queue = name, "deleted queue");
            Ok(())
        })
    }

    /// PurgeQueue: every message gone.
    pub fn purge(&self, name: &str) -> Result<(), QueueError> {
        self.with_queue(name, |q| {
            let old = q.message_kind();
            let mut doc = q.doc.clone();
            doc.generation = generation();
            self.put_doc(&doc)?;
            q.doc = doc;
            q.messages.clear();
            self.forget_generation(old);
            Ok(())
        })
    }

    /// SendMessage: the message durable before this returns.
    pub fn send(
        &self,
        name: &str,
        body: &str,
        delay_seconds: Option<u64>,
        attributes: &BTreeMap<String, MessageAttribute>,
    ) -> Result<Sent, QueueError> {
        if body.is_empty() {
            return Err(QueueError::InvalidParameter(
                "The request must contain the parameter MessageBody.".into(),
            ));
        }
        if !valid_message_text(body) {
            return Err(QueueError::InvalidContents(
                "Invalid binary character in the message body: SQS takes XML characters only."
                    .into(),
            ));
        }
        if let Some(d) = delay_seconds
            && d > 900
        {
            return Err(QueueError::InvalidParameter(format!(
                "Value {d} for parameter DelaySeconds is invalid. Reason: must be between 0 and 900, if provided."
            )));
        }
        let size = body.len() + check_message_attributes(attributes)?;
        let id = uuid::Uuid::new_v4().to_string();
        let sent = Sent {
            message_id: id.clone(),
            md5_body: md5_hex(body.as_bytes()),
            md5_attributes: md5_of_attributes(attributes),
        };
        self.with_queue(name, |q| {
            let max = q.attribute_u64("MaximumMessageSize", MAX_MESSAGE_BYTES as u64) as usize;
            if size > max {
                return Err(QueueError::InvalidParameter(format!(
                    "One or more parameters are invalid. Reason: Message must be shorter than {max} bytes."
                )));
            }
            if q.messages.len() >= MAX_MESSAGES {
                return Err(QueueError::OverLimit(format!(
                    "The queue holds {MAX_MESSAGES} messages, spillway's limit."
                )));
            }
            let delay_s = delay_seconds.unwrap_or_else(|| q.attribute_u64("DelaySeconds", 0));
            let sent_ms = now_ms();
            let doc = MessageDoc {
                id: id.clone(),
                body: body.to_owned(),
                attributes: attributes.clone(),
                sent_ms,
                delay_s,
            };
            let seq = q.next_seq;
            self.resources.put_resource(
                &q.message_kind(),
                &format!("{seq:020}"),
                &serde_json::to_vec(&doc).expect("messages serialize"),
            )?;
            q.next_seq += 1;
            q.messages.insert(
                seq,
                MessageMeta {
                    id,
                    md5_body: sent.md5_body.clone(),
                    md5_attributes: sent.md5_attributes.clone(),
                    sent_ms,
                    visible_at_ms: sent_ms + delay_s * 1000,
                    receive_count: 0,
                    first_receive_ms: 0,
                    nonce: 0,
                },
            );
            Ok(())
        })?;
        self.arrivals.notify_waiters();
        Ok(sent)
    }

    /// ReceiveMessage without waiting: up to `max` visible messages, made invisible for
    /// `visibility` seconds (the queue's VisibilityTimeout when None).
    pub fn receive_now(
        &self,
        name: &str,
        max: usize,
        visibility: Option<u64>,
    ) -> Result<Vec<Received>, QueueError> {
        self.with_queue(name, |q| {
            let now = now_ms();
            let timeout_ms =
                visibility.unwrap_or_else(|| q.attribute_u64("VisibilityTimeout", 30)) * 1000;
            let kind = q.message_kind();
            let mut out = Vec::new();
            for (seq, m) in q.messages.iter_mut() {
                if out.len() >= max {
                    break;
                }
                if m.visible_at_ms > now {
                    continue;
                }
                let Some(doc) = self.resources.get_resource(&kind, &format!("{seq:020}"))? else {
                    continue;
                };
                let Ok(doc) = serde_json::from_slice::<MessageDoc>(&doc) else {
                    continue;
                };
                m.receive_count += 1;
                if m.first_receive_ms == 0 {
                    m.first_receive_ms = now;
                }
                m.visible_at_ms = now + timeout_ms;
                m.nonce = m.nonce.wrapping_add(1).max(now);
                let attributes = BTreeMap::from([
                    ("SenderId".to_owned(), self.account_id.clone()),
                    ("SentTimestamp".to_owned(), m.sent_ms.to_string()),
                    (
                        "ApproximateReceiveCount".to_owned(),
                        m.receive_count.to_string(),
                    ),
                    (
                        "ApproximateFirstReceiveTimestamp".to_owned(),
                        m.first_receive_ms.to_string(),
                    ),
                ]);
                out.push(Received {
                    message_id: m.id.clone(),
                    receipt_handle: receipt_handle(name, &m.id, m.nonce),
                    md5_body: m.md5_body.clone(),
                    body: doc.body,
                    attributes,
                    message_attributes: doc.attributes,
                    md5_attributes: m.md5_attributes.clone(),
                });
            }
            Ok(out)
        })
    }

    /// ReceiveMessage: waits up to `wait` for a first message (long polling).
    pub async fn receive(
        &self,
        name: &str,
        max: usize,
        visibility: Option<u64>,
        wait: Duration,
    ) -> Result<Vec<Received>, QueueError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.arrivals.notified();
            let got = self.receive_now(name, max, visibility)?;
            let now = tokio::time::Instant::now();
            if !got.is_empty() || now >= deadline {
                return Ok(got);
            }
            // Delayed and in-flight messages become visible without a notification.
            let nap = (deadline - now).min(Duration::from_millis(250));
            let _ = tokio::time::timeout(nap, notified).await;
        }
    }

    /// The sequence number of the message a receipt handle names.
    fn find(q: &Queue, handle: &str) -> Result<Option<u64>, QueueError> {
        let (id, _nonce) = parse_receipt(&q.doc.name, handle)?;
        Ok(q.messages.iter().find(|(_, m)| m.id == id).map(|(s, _)| *s))
    }

    /// DeleteMessage: deleting a message already gone is not an error (as SQS).
    pub fn delete_message(&self, name: &str, handle: &str) -> Result<(), QueueError> {
        self.with_queue(name, |q| {
            if let Some(seq) = Self::find(q, handle)? {
                self.resources
                    .delete_resource(&q.message_kind(), &format!("{seq:020}"))?;
                q.messages.remove(&seq);
            }
            Ok(())
        })
    }

    /// ChangeMessageVisibility of a message in flight.
    pub fn change_visibility(
        &self,
        name: &str,
        handle: &str,
        timeout_s: u64,
    ) -> Result<(), QueueError> {
        if timeout_s > 43_200 {
            return Err(QueueError::InvalidParameter(format!(
                "Value {timeout_s} for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200."
            )));
        }
        self.with_queue(name, |q| {
            let seq = Self::find(q, handle)?.ok_or(QueueError::NotInflight)?;
            let m = q.messages.get_mut(&seq).ok_or(QueueError::NotInflight)?;
            let now = now_ms();
            if m.visible_at_ms <= now || m.receive_count == 0 {
                return Err(QueueError::NotInflight);
            }
            m.visible_at_ms = now + timeout_s * 1000;
            Ok(())
        })?;
        if timeout_s == 0 {
            self.arrivals.notify_waiters();
        }
        Ok(())
    }
}

/// Whether `name` is an attribute SQS knows (asked for but not set: left out).
fn is_attribute_name(name: &str) -> bool {
    matches!(
        name,
        "Policy"
            | "RedrivePolicy"
            | "RedriveAllowPolicy"
            | "KmsMasterKeyId"
            | "KmsDataKeyReusePeriodSeconds"
            | "FifoQueue"
            | "ContentBasedDeduplication"
            | "DeduplicationScope"
            | "FifoThroughputLimit"
            | "SqsManagedSseEnabled"
    )
}

/// A new generation number: microseconds since the epoch.
fn generation() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl crate::mapping::dead_letter::FailureDestination for Queues {
    fn deliver(&self, destination: &str, record: &[u8]) -> Result<(), String> {
        let name = name_of(destination);
        let body = String::from_utf8_lossy(record);
        self.send(name, &body, None, &BTreeMap::new())
            .map(|_| ())
            .map_err(|e| format!("queue {name}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_digests_match_sqs() {
        // What SQS answers for {"k": String "v"} (and the SDKs check).
        let attributes = BTreeMap::from([(
            "k".to_owned(),
            MessageAttribute {
                data_type: "String".into(),
                string_value: Some("v".into()),
                binary_value: None,
            },
        )]);
        assert_eq!(
            md5_of_attributes(&attributes).as_deref(),
            Some("0a77b0642718c3d9dd47090567d11e0d")
        );
        assert_eq!(md5_of_attributes(&BTreeMap::new()), None);
        assert_eq!(md5_hex(b"hello"), "5d41402abc4b2a76b9719d911017c592");
    }

    #[test]
    fn receipt_handles_name_their_queue_and_refuse_garbage() {
        let h = receipt_handle("q", "id-1", 7);
        assert_eq!(parse_receipt("q", &h).unwrap(), ("id-1".to_owned(), 7));
        assert!(parse_receipt("other", &h).is_err());
        for bad in ["", "!!!", "cQ==", &"A".repeat(5000)] {
            assert!(parse_receipt("q", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_attributes_and_references_are_checked() {
        assert!(valid_name("orders-1_x"));
        assert!(valid_name("jobs.fifo"));
        assert!(!valid_name(".fifo"));
        assert!(!valid_name("a b"));
        assert!(!valid_name(&"a".repeat(81)));
        assert_eq!(name_of("http://h:1/000000000000/q"), "q");
        assert_eq!(name_of("arn:aws:sqs:us-east-1:000000000000:q"), "q");
        assert_eq!(
            check_attribute("VisibilityTimeout", " 60", false).unwrap(),
            "60"
        );
        assert!(check_attribute("VisibilityTimeout", "43201", false).is_err());
        assert!(check_attribute("Policy", "{not json", false).is_err());
        assert!(matches!(
            check_attribute("Nope", "1", false),
            Err(QueueError::InvalidAttributeName(_))
        ));
        assert!(check_attribute("FifoQueue", "true", false).is_err());
        assert!(!valid_message_text("a\u{0}b"));
        assert!(valid_message_text("tab\tnew\nline é 😀"));
    }
}
