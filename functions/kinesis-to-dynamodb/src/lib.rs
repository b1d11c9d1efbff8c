//! The reference function, in Rust: Kinesis records in, DynamoDB items out.
//!
//! The reference write-up's Python function decodes each record, takes its `message`
//! field and calls `Table.put_item` with a random `uuid4` per record. This one keeps the
//! item shape (`{ID, Message}`) and fixes what breaks at scale:
//! - the item ID is a UUID v5 of the record's `eventID`, so a retried or replayed batch
//!   rewrites the same items instead of adding duplicates (the same namespace as
//!   spillway's built-in function, so both produce identical tables);
//! - writes go out as `BatchWriteItem` in chunks of 25 (DynamoDB's limit), and
//!   `UnprocessedItems` are retried with exponential backoff;
//! - records that still could not be written are reported in `batchItemFailures`
//!   (ReportBatchItemFailures), so Lambda retries from the first of them instead of
//!   failing, or silently dropping, the whole batch.
//!
//! The same binary runs on AWS Lambda (`provided.al2023`) and under spillway's Runtime
//! API host, where `AWS_ENDPOINT_URL` points the SDK at spillway's DynamoDB API.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::kinesis::KinesisEventRecord;
use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};

/// DynamoDB's most write requests in one BatchWriteItem.
pub const BATCH_WRITE_LIMIT: usize = 25;
/// BatchWriteItem calls one invocation has in flight at once.
pub const CONCURRENT_CALLS: usize = 8;

/// The namespace of item IDs: UUID v5(namespace, eventID). Equal to spillway's built-in
/// function's, so the two functions write the same item for the same record.
pub const ITEM_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x5b1a_7e0c_8f0d_4a7e_9c53_2f6b_d1e4_a9c7);

/// The ID of the item written for the record with this eventID.
pub fn item_id(event_id: &str) -> String {
    uuid::Uuid::new_v5(&ITEM_ID_NAMESPACE, event_id.as_bytes()).to_string()
}

/// The `Message` attribute for a record's data, by the reference's rules, exactly as
/// spillway's built-in function applies them: a JSON object's `message` field gives
/// the message (text as is, a number as written, anything else as compact JSON); JSON
/// without one, or with null, gives "NoMessage"; data that is not JSON is the message
/// itself. Numbers are read as raw text so that none is reformatted through an `f64`.
pub fn message_of(data: &[u8]) -> String {
    use serde_json::value::RawValue;
    let text = String::from_utf8_lossy(data);
    let Ok(raw) = serde_json::from_str::<Box<RawValue>>(&text) else {
        return text.into_owned();
    };
    let fields: HashMap<String, Box<RawValue>> =
        serde_json::from_str(raw.get()).unwrap_or_default();
    let Some(message) = fields.get("message") else {
        return "NoMessage".to_owned();
    };
    let message = message.get();
    match message.as_bytes().first() {
        Some(b'"') => serde_json::from_str(message).unwrap_or_default(),
        Some(b'n') | None => "NoMessage".to_owned(),
        Some(b'{' | b'[') => serde_json::from_str::<serde_json::Value>(message)
            .map_or_else(|_| message.to_owned(), |v| v.to_string()),
        Some(_) => message.to_owned(),
    }
}

/// One record's write: its item, and the sequence number to report if it fails.
#[derive(Debug, Clone)]
pub struct RecordWrite {
    pub sequence_number: String,
    pub item_id: String,
    pub request: WriteRequest,
}

/// The write for one record of the event.
pub fn record_write(record: &KinesisEventRecord) -> RecordWrite {
    let sequence_number = record.kinesis.sequence_number.clone();
    // eventID is `shardId-...:sequenceNumber`; Lambda always sends it, but fall back to
    // the same shape if a hand-made event lacks it.
    let event_id = record.event_id.clone().unwrap_or_else(|| {
        format!(
            "{}:{sequence_number}",
            record.kinesis.partition_key.as_str()
        )
    });
    let id = item_id(&event_id);
    let item = HashMap::from([
        ("ID".to_owned(), AttributeValue::S(id.clone())),
        (
            "Message".to_owned(),
            AttributeValue::S(message_of(&record.kinesis.data.0)),
        ),
    ]);
    let put = PutRequest::builder()
        .set_item(Some(item))
        .build()
        .expect("item is set");
    RecordWrite {
        sequence_number,
        item_id: id,
        request: WriteRequest::builder().put_request(put).build(),
    }
}

/// How hard to try before reporting a record as failed.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// BatchWriteItem calls per chunk, the first included.
    pub attempts: u32,
    /// Backoff before the first retry; doubles each time, up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// The invocation's deadline: no retry is started that could end after it (less a
    /// margin), so what is still unwritten is reported in time instead of the whole
    /// batch timing out.
    pub deadline: Option<SystemTime>,
}

/// Time kept in hand before the deadline for answering.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

impl RetryPolicy {
    /// Waits `backoff` before a retry, or returns false if the deadline does not allow
    /// the wait plus the margin.
    async fn wait_to_retry(&self, backoff: Duration) -> bool {
        if let Some(deadline) = self.deadline {
            let left = deadline
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            if left < backoff + DEADLINE_MARGIN {
                return false;
            }
        }
        tokio::time::sleep(backoff).await;
        true
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 8,
            first_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_secs(2),
            deadline: None,
        }
    }
}

/// Writes one chunk (at most 25 records), retrying what DynamoDB leaves unprocessed or
/// what fails for a passing reason (throttling, a server error, the network). A chunk
/// DynamoDB rejects as invalid (an item over 400 KB fails its whole batch) is written
/// record by record, so that only the records that are invalid themselves fail.
/// Returns the records that could not be written.
async fn write_chunk(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    mut pending: Vec<RecordWrite>,
    policy: RetryPolicy,
) -> Vec<RecordWrite> {
    let mut backoff = policy.first_backoff;
    for attempt in 1..=policy.attempts.max(1) {
        let requests = pending.iter().map(|w| w.request.clone()).collect();
        match client
            .batch_write_item()
            .request_items(table, requests)
            .send()
            .await
        {
            Ok(out) => {
                let unprocessed: Vec<String> = out
                    .unprocessed_items()
                    .and_then(|u| u.get(table))
                    .map(|reqs| reqs.iter().filter_map(unprocessed_id).collect())
                    .unwrap_or_default();
                pending.retain(|w| unprocessed.contains(&w.item_id));
                if pending.is_empty() {
                    return pending;
                }
            }
            Err(e) if is_invalid(&e) => {
                eprintln!(
                    "BatchWriteItem of {} items refused ({}); writing them one by one",
                    pending.len(),
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                );
                let mut failed = Vec::new();
                for w in pending {
                    if !write_one(client, table, &w, policy).await {
                        failed.push(w);
                    }
                }
                return failed;
            }
            Err(e) => {
                eprintln!(
                    "BatchWriteItem of {} items failed (attempt {attempt}): {}",
                    pending.len(),
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                );
            }
        }
        if attempt < policy.attempts {
            if !policy.wait_to_retry(backoff).await {
                break;
            }
            backoff = (backoff * 2).min(policy.max_backoff);
        }
    }
    pending
}

/// True for errors that no retry can fix: DynamoDB refused the request itself.
fn is_invalid<E: ProvideErrorMetadata, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool {
    e.as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|code| code == "ValidationException")
}

/// Writes one record's item with PutItem; false if it cannot be written.
async fn write_one(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    w: &RecordWrite,
    policy: RetryPolicy,
) -> bool {
    let Some(item) = w.request.put_request().map(|p| p.item().clone()) else {
        return false;
    };
    let mut backoff = policy.first_backoff;
    for attempt in 1..=policy.attempts.max(1) {
        match client
            .put_item()
            .table_name(table)
            .set_item(Some(item.clone()))
            .send()
            .await
        {
            Ok(_) => return true,
            Err(e) => {
                eprintln!(
                    "PutItem of record {} failed (attempt {attempt}): {}",
                    w.sequence_number,
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                );
                if is_invalid(&e) {
                    return false;
                }
            }
        }
        if attempt < policy.attempts {
            if !policy.wait_to_retry(backoff).await {
                break;
            }
            backoff = (backoff * 2).min(policy.max_backoff);
        }
    }
    false
}

/// The `ID` of an unprocessed put request.
fn unprocessed_id(request: &WriteRequest) -> Option<String> {
    match request.put_request()?.item().get("ID")? {
        AttributeValue::S(s) => Some(s.clone()),
        _ => None,
    }
}

/// Writes every record's item; the response lists the records that could not be
/// written (Lambda retries from the lowest of them).
pub async fn write_records(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    records: &[KinesisEventRecord],
    policy: RetryPolicy,
) -> KinesisEventResponse {
    let writes: Vec<RecordWrite> = records.iter().map(record_write).collect();
    let mut chunks = tokio::task::JoinSet::new();
    // A batch of 10,000 records is 400 chunks; a few calls at a time are plenty.
    let calls = std::sync::Arc::new(tokio::sync::Semaphore::new(CONCURRENT_CALLS));
    for chunk in writes.chunks(BATCH_WRITE_LIMIT) {
        let (client, table, chunk) = (client.clone(), table.to_owned(), chunk.to_vec());
        let calls = std::sync::Arc::clone(&calls);
        chunks.spawn(async move {
            let _call = calls.acquire_owned().await;
            write_chunk(&client, &table, chunk, policy).await
        });
    }
    let mut failed = Vec::new();
    while let Some(done) = chunks.join_next().await {
        match done {
            Ok(left) => failed.extend(left.into_iter().map(|w| w.sequence_number)),
            // A chunk's task cannot fail short of a panic; report nothing written then
            // would be wrong, so fail every record of the event instead.
            Err(e) => {
                eprintln!("a write task panicked: {e}");
                failed = writes.iter().map(|w| w.sequence_number.clone()).collect();
                break;
            }
        }
    }
    failed.sort();
    failed.dedup();
    let mut response = KinesisEventResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|seq| {
            let mut f = KinesisBatchItemFailure::default();
            f.item_identifier = Some(seq);
            f
        })
        .collect();
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_the_reference_rules() {
        assert_eq!(message_of(br#"{"message":"hi"}"#), "hi");
        assert_eq!(message_of(br#"{"message":7}"#), "7");
        assert_eq!(message_of(br#"{"message": 1e2}"#), "1e2");
        assert_eq!(
            message_of(br#"{"message": 12345678901234567890123.5}"#),
            "12345678901234567890123.5"
        );
        assert_eq!(message_of(br#"{"message": {"a": 1}}"#), r#"{"a":1}"#);
        assert_eq!(message_of(br#"{"message": null}"#), "NoMessage");
        assert_eq!(message_of(br#"{"other":1}"#), "NoMessage");
        assert_eq!(message_of(b"plain text"), "plain text");
        assert_eq!(message_of(b"5"), "NoMessage");
    }

    #[test]
    fn item_ids_are_stable_per_event_id() {
        let a = item_id("shardId-000000000000:49");
        assert_eq!(a, item_id("shardId-000000000000:49"));
        assert_ne!(a, item_id("shardId-000000000000:50"));
        // Pinned as a literal (computed once, by Python's uuid.uuid5): changing the
        // namespace or the derivation would silently duplicate every replayed item, and
        // spillway's built-in function pins the same value.
        assert_eq!(
            item_id("shardId-000000000000:1"),
            "a644a297-ed93-5cae-9107-771641702931"
        );
    }

    #[test]
    fn record_writes_carry_id_and_message() {
        let event: aws_lambda_events::event::kinesis::KinesisEvent =
            serde_json::from_value(serde_json::json!({"Records": [{
                "eventID": "shardId-000000000000:4955",
                "eventSource": "aws:kinesis",
                "eventName": "aws:kinesis:record",
                "eventVersion": "1.0",
                "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:000000000000:stream/s",
                "invokeIdentityArn": "arn:aws:iam::000000000000:role/r",
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": "pk",
                    "sequenceNumber": "4955",
                    "data": "eyJtZXNzYWdlIjoiaGVsbG8ifQ==",
                    "approximateArrivalTimestamp": 1700000000.5
                }
            }]}))
            .expect("a Lambda Kinesis event");
        let w = record_write(&event.records[0]);
        assert_eq!(w.sequence_number, "4955");
        assert_eq!(w.item_id, item_id("shardId-000000000000:4955"));
        let item = w.request.put_request().expect("a put").item();
        assert_eq!(item["Message"], AttributeValue::S("hello".into()));
        assert_eq!(item["ID"], AttributeValue::S(w.item_id.clone()));
    }

    #[tokio::test]
    async fn retries_stop_short_of_the_deadline() {
        let soon = RetryPolicy {
            deadline: Some(SystemTime::now() + Duration::from_millis(300)),
            ..RetryPolicy::default()
        };
        // 300 ms left is less than any wait plus the 500 ms margin: give up now.
        let started = std::time::Instant::now();
        assert!(!soon.wait_to_retry(Duration::from_millis(25)).await);
        assert!(started.elapsed() < Duration::from_millis(25));
        let later = RetryPolicy {
            deadline: Some(SystemTime::now() + Duration::from_secs(60)),
            ..RetryPolicy::default()
        };
        assert!(later.wait_to_retry(Duration::from_millis(10)).await);
        assert!(
            RetryPolicy::default()
                .wait_to_retry(Duration::from_millis(1))
                .await
        );
    }
}
