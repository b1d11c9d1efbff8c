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
use std::time::Duration;

use aws_lambda_events::event::kinesis::KinesisEventRecord;
use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};

/// DynamoDB's most write requests in one BatchWriteItem.
pub const BATCH_WRITE_LIMIT: usize = 25;

/// The namespace of item IDs: UUID v5(namespace, eventID). Equal to spillway's built-in
/// function's, so the two functions write the same item for the same record.
pub const ITEM_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x5b1a_7e0c_8f0d_4a7e_9c53_2f6b_d1e4_a9c7);

/// The ID of the item written for the record with this eventID.
pub fn item_id(event_id: &str) -> String {
    uuid::Uuid::new_v5(&ITEM_ID_NAMESPACE, event_id.as_bytes()).to_string()
}

/// The `Message` attribute for a record's data, by the reference's rules: JSON with a
/// `message` field gives that field (text as is, anything else as JSON); JSON without
/// one gives "NoMessage"; data that is not JSON is the message itself.
pub fn message_of(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(parsed) => match parsed.get("message") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) if !other.is_null() => other.to_string(),
            _ => "NoMessage".to_owned(),
        },
        Err(_) => text.into_owned(),
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
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 8,
            first_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_secs(2),
        }
    }
}

/// Writes one chunk (at most 25 records), retrying what DynamoDB leaves unprocessed or
/// what fails outright. Returns the records that could not be written.
async fn write_chunk(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    mut pending: Vec<RecordWrite>,
    policy: RetryPolicy,
) -> Vec<RecordWrite> {
    let mut backoff = policy.first_backoff;
    for attempt in 1..=policy.attempts {
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
            Err(e) => {
                eprintln!(
                    "BatchWriteItem of {} items failed (attempt {attempt}): {}",
                    pending.len(),
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                );
            }
        }
        if attempt < policy.attempts {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(policy.max_backoff);
        }
    }
    pending
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
    for chunk in writes.chunks(BATCH_WRITE_LIMIT) {
        let (client, table, chunk) = (client.clone(), table.to_owned(), chunk.to_vec());
        chunks.spawn(async move { write_chunk(&client, &table, chunk, policy).await });
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
        assert_eq!(message_of(br#"{"other":1}"#), "NoMessage");
        assert_eq!(message_of(b"plain text"), "plain text");
        assert_eq!(message_of(b"5"), "NoMessage");
    }

    #[test]
    fn item_ids_are_stable_per_event_id() {
        let a = item_id("shardId-000000000000:49");
        assert_eq!(a, item_id("shardId-000000000000:49"));
        assert_ne!(a, item_id("shardId-000000000000:50"));
        // Pinned: changing the namespace would silently duplicate every replayed item.
        assert_eq!(
            item_id("shardId-000000000000:1"),
            uuid::Uuid::new_v5(&ITEM_ID_NAMESPACE, b"shardId-000000000000:1").to_string()
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
}
