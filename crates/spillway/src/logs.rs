//! CloudWatch Logs: log groups, log streams and events, and the functions' output.
//!
//! Log groups are durable: one [`ResourceStore`] document each (kind `logs.group`).
//! Streams and events are kept in memory only, in this process, and are lost at
//! restart: each group keeps its last [`MAX_GROUP_EVENTS`] events (and at most
//! [`MAX_GROUP_BYTES`] of messages), the oldest dropped first.
//!
//! Every line a function prints (`function::runtime_api`, `function::process`) is
//! appended to group `/aws/lambda/{function}`, stream `YYYY/MM/DD/[$LATEST]{instance}`,
//! as Lambda writes it. Functions know no store, so such a group first exists in memory;
//! the Logs API makes it durable ([`LogGroups::adopt_function_groups`]) before it
//! answers anything.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::storage::{ResourceStore, StorageError};
use crate::stream::now_ms;

pub const GROUP_KIND: &str = "logs.group";
/// Events kept per group.
pub const MAX_GROUP_EVENTS: usize = 10_000;
/// Message bytes kept per group.
pub const MAX_GROUP_BYTES: usize = 16 * 1024 * 1024;
/// Groups that hold events in memory.
pub const MAX_GROUPS_IN_MEMORY: usize = 1_000;
/// Streams per group.
pub const MAX_STREAMS: usize = 10_000;
/// Durable log groups.
pub const MAX_GROUPS: usize = 10_000;
/// Largest event message kept (longer ones are cut).
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// Why a Logs operation failed; `api::logs` maps each to the service's error.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error("The specified log group does not exist.")]
    GroupNotFound,
    #[error("The specified log stream does not exist.")]
    StreamNotFound,
    #[error("The specified log group already exists")]
    GroupExists,
    #[error("The specified log stream already exists")]
    StreamExists,
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A log group as kept in the resource store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogGroupDoc {
    pub name: String,
    pub creation_ms: u64,
    #[serde(default)]
    pub retention_days: Option<u32>,
    #[serde(default)]
    pub kms_key_id: Option<String>,
    #[serde(default)]
    pub class: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// One stream, as DescribeLogStreams tells it.
#[derive(Debug, Clone, Default)]
pub struct StreamInfo {
    pub creation_ms: u64,
    pub first_event_ms: Option<i64>,
    pub last_event_ms: Option<i64>,
    pub last_ingestion_ms: Option<u64>,
    pub stored_bytes: u64,
}

/// One event.
#[derive(Debug, Clone)]
pub struct Event {
    /// Increases in arrival order within the process.
    pub id: u64,
    pub stream: Arc<str>,
    pub timestamp: i64,
    pub ingestion_ms: u64,
    pub message: String,
}

#[derive(Debug, Default)]
struct GroupEvents {
    streams: BTreeMap<String, StreamInfo>,
    events: VecDeque<Event>,
    bytes: usize,
    /// Made by a function's output (to be made durable by the API).
    from_function: bool,
}

#[derive(Debug, Default)]
struct Memory {
    groups: BTreeMap<String, GroupEvents>,
    next_id: u64,
    /// Function lines dropped because the in-memory group limit was reached.
    dropped: u64,
}

static MEMORY: Mutex<Memory> = Mutex::new(Memory {
    groups: BTreeMap::new(),
    next_id: 1,
    dropped: 0,
});

fn memory() -> std::sync::MutexGuard<'static, Memory> {
    MEMORY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A message cut to [`MAX_EVENT_BYTES`] at a character boundary.
fn bounded(message: &str) -> String {
    if message.len() <= MAX_EVENT_BYTES {
        return message.to_owned();
    }
    let mut end = MAX_EVENT_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end].to_owned()
}

impl Memory {
    fn append(&mut self, group: &str, stream: &str, timestamp: i64, message: &str) {
        let id = self.next_id;
        self.next_id += 1;
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        let now = now_ms();
        let info = g
            .streams
            .entry(stream.to_owned())
            .or_insert_with(|| StreamInfo {
                creation_ms: now,
                ..StreamInfo::default()
            });
        info.first_event_ms = Some(info.first_event_ms.map_or(timestamp, |f| f.min(timestamp)));
        info.last_event_ms = Some(info.last_event_ms.map_or(timestamp, |l| l.max(timestamp)));
        info.last_ingestion_ms = Some(now);
        let message = bounded(message);
        info.stored_bytes += message.len() as u64;
        g.bytes += message.len();
        g.events.push_back(Event {
            id,
            stream: Arc::from(stream),
            timestamp,
            ingestion_ms: now,
            message,
        });
        while g.events.len() > MAX_GROUP_EVENTS || g.bytes > MAX_GROUP_BYTES {
            match g.events.pop_front() {
                Some(e) => g.bytes -= e.message.len(),
                None => break,
            }
        }
    }
}

/// The stream a function instance's output goes to: `YYYY/MM/DD/[$LATEST]{instance}`.
pub fn function_stream_name(instance: &str) -> String {
    let days = (now_ms() / 86_400_000) as i64;
    let (y, m, d) = crate::mapping::dead_letter::civil_from_days(days);
    format!("{y:04}/{m:02}/{d:02}/[$LATEST]{instance}")
}

/// Appends one line a function printed to `/aws/lambda/{function}`.
pub fn function_output(function: &str, instance: &str, line: &str) {
    let group = format!("/aws/lambda/{function}");
    let stream = function_stream_name(instance);
    let mut mem = memory();
    if !mem.groups.contains_key(&group) {
        if mem.groups.len() >= MAX_GROUPS_IN_MEMORY {
            mem.dropped += 1;
            return;
        }
        mem.groups.insert(
            group.clone(),
            GroupEvents {
                from_function: true,
                ..GroupEvents::default()
            },
        );
    }
    if let Some(g) = mem.groups.get_mut(&group)
        && !g.streams.contains_key(&stream)
        && g.streams.len() >= MAX_STREAMS
    {
        // Streams without events left make room first.
        let live: std::collections::BTreeSet<&str> = g.events.iter().map(|e| &*e.stream).collect();
        let empty: Vec<String> = g
            .streams
            .keys()
            .filter(|s| !live.contains(s.as_str()))
            .cloned()
            .collect();
        for s in empty {
            g.streams.remove(&s);
        }
        if g.streams.len() >= MAX_STREAMS {
            mem.dropped += 1;
            return;
        }
    }
    mem.append(&group, &stream, now_ms() as i64, line);
}

/// A simple filter pattern: terms that must all appear (`"quoted phrases"` allowed),
/// `?term`s of which one must appear, `-term`s that must not.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FilterPattern {
    all: Vec<String>,
    any: Vec<String>,
    none: Vec<String>,
}

impl FilterPattern {
    pub fn parse(pattern: &str) -> Result<Self, LogsError> {
        let pattern = pattern.trim();
        if pattern.starts_with('{') || pattern.starts_with('[') {
            return Err(LogsError::InvalidParameter(
                "spillway supports term filter patterns only, not JSON or space-delimited ones"
                    .into(),
            ));
        }
        let mut out = Self::default();
        let mut chars = pattern.chars().peekable();
        loop {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let Some(&first) = chars.peek() else {
                break;
            };
            let sign = if first == '?' || first == '-' {
                chars.next();
                Some(first)
            } else {
                None
            };
            let mut term = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => term.extend(chars.next()),
                        c => term.push(c),
                    }
                }
            } else {
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    term.push(c);
                }
            }
            if term.is_empty() {
                continue;
            }
            match sign {
                Some('?') => out.any.push(term),
                Some(_) => out.none.push(term),
                None => out.all.push(term),
            }
        }
        Ok(out)
    }

    pub fn matches(&self, message: &str) -> bool {
        self.all.iter().all(|t| message.contains(t.as_str()))
            && (self.any.is_empty() || self.any.iter().any(|t| message.contains(t.as_str())))
            && !self.none.iter().any(|t| message.contains(t.as_str()))
    }
}

/// The log groups of one server, over its resource store.
pub struct LogGroups {
    resources: Arc<dyn ResourceStore>,
    pub region: String,
    pub account_id: String,
}

impl std::fmt::Debug for LogGroups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogGroups")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// Whether a log group name is valid: 1-512 of letters, digits, `_-./#`.
pub fn valid_group_name(name: &str) -> bool {
    (1..=512).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/' | b'#'))
}

/// Whether a log stream name is valid: 1-512 characters, no `:` or `*`.
pub fn valid_stream_name(name: &str) -> bool {
    (1..=512).contains(&name.len()) && !name.contains([':', '*'])
}

impl LogGroups {
    pub fn new(resources: Arc<dyn ResourceStore>, region: &str, account_id: &str) -> Self {
        Self {
            resources,
            region: region.to_owned(),
            account_id: account_id.to_owned(),
        }
    }

    /// `arn:aws:logs:REGION:ACCOUNT:log-group:NAME`.
    pub fn arn(&self, name: &str) -> String {
        format!(
            "arn:aws:logs:{}:{}:log-group:{name}",
            self.region, self.account_id
        )
    }

    /// Groups that functions' output made in memory, made durable if they are not.
    pub fn adopt_function_groups(&self) -> Result<(), LogsError> {
        let names: Vec<String> = memory()
            .groups
            .iter()
            .filter(|(_, g)| g.from_function)
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            if self.resources.get_resource(GROUP_KIND, &name)?.is_none() {
                let doc = LogGroupDoc {
                    name: name.clone(),
                    creation_ms: now_ms(),
                    retention_days: None,
                    kms_key_id: None,
                    class: None,
                    tags: BTreeMap::new(),
                };
                self.put(&doc)?;
            }
            if let Some(g) = memory().groups.get_mut(&name) {
                g.from_function = false;
            }
        }
        Ok(())
    }

    fn put(&self, doc: &LogGroupDoc) -> Result<(), LogsError> {
        let bytes = serde_json::to_vec(doc).expect("log groups serialize");
        self.resources.put_resource(GROUP_KIND, &doc.name, &bytes)?;
        Ok(())
    }

    pub fn get(&self, name: &str) -> Result<LogGroupDoc, LogsError> {
        let doc = self
            .resources
            .get_resource(GROUP_KIND, name)?
            .ok_or(LogsError::GroupNotFound)?;
        serde_json::from_slice(&doc)
            .map_err(|_| LogsError::Storage(StorageError::Corrupt(format!("log group {name}"))))
    }

    /// Every group, by name.
    pub fn list(&self) -> Result<Vec<LogGroupDoc>, LogsError> {
        Ok(self
            .resources
            .list_resources(GROUP_KIND)?
            .into_iter()
            .filter_map(|(_, d)| serde_json::from_slice(&d).ok())
            .collect())
    }

    pub fn create(&self, doc: LogGroupDoc) -> Result<(), LogsError> {
        if !valid_group_name(&doc.name) {
            return Err(LogsError::InvalidParameter(format!(
                "1 validation error detected: Value '{}' at 'logGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+",
                doc.name
            )));
        }
        if self
            .resources
            .get_resource(GROUP_KIND, &doc.name)?
            .is_some()
        {
            return Err(LogsError::GroupExists);
        }
        if self.resources.list_resources(GROUP_KIND)?.len() >= MAX_GROUPS {
            return Err(LogsError::LimitExceeded(format!(
                "spillway keeps at most {MAX_GROUPS} log groups"
            )));
        }
        self.put(&doc)?;
        let mut mem = memory();
        if mem.groups.len() < MAX_GROUPS_IN_MEMORY {
            mem.groups.entry(doc.name).or_default();
        }
        Ok(())
    }

    /// Changes a group's document (retention, tags).
    pub fn update(&self, name: &str, f: impl FnOnce(&mut LogGroupDoc)) -> Result<(), LogsError> {
        let mut doc = self.get(name)?;
        f(&mut doc);
        if doc.tags.len() > 50 {
            return Err(LogsError::InvalidParameter(
                "A log group takes at most 50 tags".into(),
            ));
        }
        self.put(&doc)
    }

    pub fn delete(&self, name: &str) -> Result<(), LogsError> {
        self.get(name)?;
        self.resources.delete_resource(GROUP_KIND, name)?;
        memory().groups.remove(name);
        Ok(())
    }

    /// Runs `f` over a durable group's events (created empty in memory if needed).
    fn with_events<R>(
        &self,
        group: &str,
        f: impl FnOnce(&mut GroupEvents) -> Result<R, LogsError>,
    ) -> Result<R, LogsError> {
        self.get(group)?;
        let mut mem = memory();
        if !mem.groups.contains_key(group) && mem.groups.len() >= MAX_GROUPS_IN_MEMORY {
            return Err(LogsError::LimitExceeded(format!(
                "spillway keeps events of at most {MAX_GROUPS_IN_MEMORY} log groups"
            )));
        }
        f(mem.groups.entry(group.to_owned()).or_default())
    }

    pub fn create_stream(&self, group: &str, stream: &str) -> Result<(), LogsError> {
        if !valid_stream_name(stream) {
            return Err(LogsError::InvalidParameter(format!(
                "Invalid log stream name: {stream:?}"
            )));
        }
        self.with_events(group, |g| {
            if g.streams.contains_key(stream) {
                return Err(LogsError::StreamExists);
            }
            if g.streams.len() >= MAX_STREAMS {
                return Err(LogsError::LimitExceeded(format!(
                    "spillway keeps at most {MAX_STREAMS} streams a log group"
                )));
            }
            g.streams.insert(
                stream.to_owned(),
                StreamInfo {
                    creation_ms: now_ms(),
                    ..StreamInfo::default()
                },
            );
            Ok(())
        })
    }

    /// Streams of a group, by name.
    pub fn streams(&self, group: &str) -> Result<Vec<(String, StreamInfo)>, LogsError> {
        self.with_events(group, |g| {
            Ok(g.streams
                .iter()
                .map(|(n, s)| (n.clone(), s.clone()))
                .collect())
        })
    }

    /// PutLogEvents into an existing stream.
    pub fn put_events(
        &self,
        group: &str,
        stream: &str,
        events: &[(i64, String)],
    ) -> Result<(), LogsError> {
        self.with_events(group, |g| {
            if !g.streams.contains_key(stream) {
                return Err(LogsError::StreamNotFound);
            }
            Ok(())
        })?;
        let mut mem = memory();
        for (timestamp, message) in events {
            mem.append(group, stream, *timestamp, message);
        }
        Ok(())
    }

    /// The events of a group (of one stream when given) in `[start, end)`, matching
    /// `pattern`, ordered by timestamp then arrival.
    pub fn events(
        &self,
        group: &str,
        stream: Option<&dyn Fn(&str) -> bool>,
        start: Option<i64>,
        end: Option<i64>,
        pattern: &FilterPattern,
    ) -> Result<Vec<Event>, LogsError> {
        let retention_cut = self
            .get(group)?
            .retention_days
            .map(|d| now_ms() as i64 - i64::from(d) * 86_400_000);
        self.with_events(group, |g| {
            let mut out: Vec<Event> = g
                .events
                .iter()
                .filter(|e| stream.is_none_or(|f| f(&e.stream)))
                .filter(|e| start.is_none_or(|s| e.timestamp >= s))
                .filter(|e| end.is_none_or(|t| e.timestamp < t))
                .filter(|e| retention_cut.is_none_or(|c| e.timestamp >= c))
                .filter(|e| pattern.matches(&e.message))
                .cloned()
                .collect();
            out.sort_by_key(|e| (e.timestamp, e.id));
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_patterns_take_terms_phrases_options_and_exclusions() {
        let p = FilterPattern::parse(r#"ERROR "disk full" ?a ?b -ignore"#).unwrap();
        assert!(p.matches("ERROR: disk full on a"));
        assert!(!p.matches("ERROR: disk full on c"));
        assert!(!p.matches("ERROR: disk full on a, ignore"));
        assert!(!p.matches("disk full on a"));
        assert!(FilterPattern::parse("").unwrap().matches("anything"));
        assert!(FilterPattern::parse("{ $.a = 1 }").is_err());
        // Never panics on odd input.
        for s in ["\"", "?", "-", "\"\\", "? - \"", "\u{1F600}\"x"] {
            let _ = FilterPattern::parse(s).map(|p| p.matches("x"));
        }
    }

    #[test]
    fn names_and_messages_are_bounded() {
        assert!(valid_group_name("/aws/lambda/f-1_x.y#z"));
        assert!(!valid_group_name(""));
        assert!(!valid_group_name("a b"));
        assert!(!valid_group_name(&"a".repeat(513)));
        assert!(valid_stream_name("2026/01/01/[$LATEST]abc"));
        assert!(!valid_stream_name("a:b"));
        let long = "é".repeat(MAX_EVENT_BYTES);
        assert!(bounded(&long).len() <= MAX_EVENT_BYTES);
        assert!(function_stream_name("ab").ends_with("/[$LATEST]ab"));
    }
}
