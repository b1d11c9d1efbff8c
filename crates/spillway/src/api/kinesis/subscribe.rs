//! SubscribeToShard: enhanced fan-out's push read, answered as an AWS event stream.
//!
//! The response is `200` with `Content-Type: application/vnd.amazon.eventstream` and a
//! body of event-stream messages, sent as they happen over the open response (HTTP/1.1
//! chunked here; botocore reads it so, the SDKs that insist on HTTP/2 do not connect):
//! first an `initial-response` event, then `SubscribeToShardEvent`s with the records
//! that arrive (at most every `IDLE_EVENT_EVERY` an event without records, which keeps
//! `MillisBehindLatest` current and the connection alive), for five minutes, as Kinesis
//! ends a subscription; or until the shard is closed and read to its end, whose last
//! event names the child shards. A failure while streaming is an `exception` message.
//!
//! Message layout (AWS's event-stream encoding): total length and headers length (u32
//! big-endian), the CRC32 of those 8 bytes, the headers (name length u8, name, type 7 =
//! string, value length u16, value), the payload, the CRC32 of everything before it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::actions::{
    child_shards, normalized_shard_id, not_in_the_future, records_json, timestamp_ms,
};
use super::{Encoding, KinesisError, KinesisService, cbor, request_ids};
use crate::stream::{ShardState, StartPosition, StreamState};

/// Kinesis ends a subscription after five minutes; the client subscribes again.
const SUBSCRIPTION: Duration = Duration::from_secs(300);
/// An event goes out at least this often, records or not.
const IDLE_EVENT_EVERY: Duration = Duration::from_secs(5);
/// Records per event, at most (GetRecords' limit).
const EVENT_RECORDS: usize = 10_000;

/// One event-stream message with string headers.
pub fn message(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let mut head = Vec::new();
    for (name, value) in headers {
        head.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        head.extend_from_slice(&name.as_bytes()[..name.len().min(255)]);
        head.push(7);
        let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
        head.extend_from_slice(&len.to_be_bytes());
        head.extend_from_slice(&value.as_bytes()[..usize::from(len)]);
    }
    let total = 12 + head.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&u32::try_from(head.len()).unwrap_or(u32::MAX).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    Bytes::from(out)
}

/// A payload in the request's encoding, with its `:content-type`.
fn payload(encoding: Encoding, v: &Value) -> (Vec<u8>, &'static str) {
    match encoding {
        Encoding::Json => (v.to_string().into_bytes(), "application/json"),
        Encoding::Cbor => (cbor::encode_response(v), "application/x-amz-cbor-1.1"),
    }
}

fn event(encoding: Encoding, event_type: &str, v: &Value) -> Bytes {
    let (body, content_type) = payload(encoding, v);
    message(
        &[
            (":event-type", event_type),
            (":content-type", content_type),
            (":message-type", "event"),
        ],
        &body,
    )
}

fn exception(encoding: Encoding, kind: &str, text: &str) -> Bytes {
    let (body, content_type) = payload(encoding, &json!({ "message": text }));
    message(
        &[
            (":exception-type", kind),
            (":content-type", content_type),
            (":message-type", "exception"),
        ],
        &body,
    )
}

/// Where a subscription starts, from `StartingPosition`.
fn starting_position(req: &Value) -> Result<StartPosition, KinesisError> {
    let start = req.get("StartingPosition").unwrap_or(&Value::Null);
    let kind = start
        .get("Type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let seq = start.get("SequenceNumber").and_then(Value::as_str);
    match (kind, seq) {
        ("TRIM_HORIZON", _) => Ok(StartPosition::TrimHorizon),
        ("LATEST", _) => Ok(StartPosition::Latest),
        ("AT_SEQUENCE_NUMBER", Some(s)) => Ok(StartPosition::AtSequenceNumber(s.to_owned())),
        ("AFTER_SEQUENCE_NUMBER", Some(s)) => Ok(StartPosition::AfterSequenceNumber(s.to_owned())),
        ("AT_TIMESTAMP", _) => {
            let ts = start
                .get("Timestamp")
                .and_then(timestamp_ms)
                .ok_or_else(|| {
                    KinesisError::InvalidArgument(
                        "StartingPosition of type AT_TIMESTAMP needs a Timestamp.".into(),
                    )
                })?;
            // As GetShardIterator: a position in the future is refused.
            Ok(StartPosition::AtTimestamp(not_in_the_future(ts)?))
        }
        (kind, _) => Err(KinesisError::InvalidArgument(format!(
            "StartingPosition of type {kind} needs a SequenceNumber."
        ))),
    }
}

/// Checks the request, then answers with the event stream of the shard from its
/// starting position.
pub async fn subscribe(
    s: &KinesisService,
    req: &Value,
    encoding: Encoding,
) -> Result<Response, KinesisError> {
    let arn = req
        .get("ConsumerARN")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (stream, consumer) = s.streams.find_consumer(None, None, Some(arn))?;
    if consumer.status != "ACTIVE" {
        return Err(KinesisError::ResourceInUse(format!(
            "Consumer {arn} is not in ACTIVE state (it is {}).",
            consumer.status
        )));
    }
    let shard_id = req
        .get("ShardId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let shard_id = normalized_shard_id(s, shard_id, &stream.name)?;
    let shard = s.streams.shard(&stream, &shard_id)?;
    let position = starting_position(req)?;
    let from = s.streams.resolve_in_shard(&shard, &position)?;

    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let streams = Arc::clone(&s.streams);
    tokio::spawn(async move {
        if tx
            .send(event(encoding, "initial-response", &json!({})))
            .await
            .is_err()
        {
            return;
        }
        push_events(&streams, &stream, &shard, from, encoding, &tx).await;
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    let mut r = (StatusCode::OK, Body::from_stream(body)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    request_ids(r.headers_mut());
    Ok(r)
}

/// Sends the shard's records from `from` as they become durable, until the
/// subscription's time is up, the shard is read to its end, or the client is gone.
async fn push_events(
    streams: &Arc<crate::stream::Streams>,
    stream: &Arc<StreamState>,
    shard: &Arc<ShardState>,
    mut from: u64,
    encoding: Encoding,
    tx: &mpsc::Sender<Bytes>,
) {
    let deadline = tokio::time::Instant::now() + SUBSCRIPTION;
    let mut tips = shard.subscribe();
    let mut draining = streams.draining();
    let mut last_sent: Option<String> = None;
    // The first event goes out at once; later ones when records come, or when the
    // shard has been idle for IDLE_EVENT_EVERY.
    let mut due = true;
    loop {
        if *draining.borrow() {
            // The server is stopping: the client subscribes again, elsewhere or later.
            return;
        }
        let (s, reading, of) = (Arc::clone(streams), Arc::clone(shard), Arc::clone(stream));
        let read =
            tokio::task::spawn_blocking(move || s.read_page(&of, &reading, from, EVENT_RECORDS))
                .await;
        let page = match read {
            Ok(Ok(p)) => p,
            failed => {
                let text = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "Internal service failure.".to_owned(),
                };
                tracing::warn!(error = %text, shard = %shard.shard_id, "SubscribeToShard read failed");
                let _ = tx
                    .send(exception(encoding, "InternalFailureException", &text))
                    .await;
                return;
            }
        };
        let (batch, finished) = (&page.batch, page.finished);
        let had_records = !batch.records.is_empty();
        if had_records || due || finished {
            // The last record sent, else the record before the start. Starting at
            // counter 0 with nothing sent yet, that is record 0 itself (spillway's
            // layout has no number below a shard's first), so a client that resumes
            // AFTER it would skip record 0: a corner left as it is.
            let continuation = batch
                .records
                .last()
                .map(|r| r.sequence_number.clone())
                .or_else(|| last_sent.clone())
                .unwrap_or_else(|| shard.sequence_number(from.saturating_sub(1)).to_string());
            let mut out = json!({
                "Records": records_json(&batch.records),
                "ContinuationSequenceNumber": continuation,
                "MillisBehindLatest": batch.millis_behind_latest,
            });
            if finished {
                out["ChildShards"] = json!(child_shards(&page.children));
            }
            if tx
                .send(event(encoding, "SubscribeToShardEvent", &out))
                .await
                .is_err()
                || finished
            {
                return;
            }
            last_sent = Some(continuation);
            due = false;
        }
        from = batch.next_counter;
        if had_records {
            continue;
        }
        // Nothing new: wait for the shard's durable tip to move; past IDLE_EVENT_EVERY
        // an event goes out without records.
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return;
        }
        let waited = tokio::select! {
            w = tokio::time::timeout(IDLE_EVENT_EVERY.min(left), tips.changed()) => w,
            _ = draining.changed() => return,
        };
        match waited {
            Ok(Ok(())) => due = false,
            // The shard is gone (its stream deleted): the subscription ends.
            Ok(Err(_)) => return,
            Err(_) => due = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_carries_both_checksums_and_its_headers() {
        let m = message(&[(":event-type", "initial-response")], b"{}");
        let total = u32::from_be_bytes(m[0..4].try_into().unwrap()) as usize;
        let head = u32::from_be_bytes(m[4..8].try_into().unwrap()) as usize;
        assert_eq!(total, m.len());
        assert_eq!(head, 1 + 11 + 1 + 2 + 16);
        assert_eq!(
            u32::from_be_bytes(m[8..12].try_into().unwrap()),
            crc32fast::hash(&m[..8])
        );
        assert_eq!(&m[12..13], &[11]);
        assert_eq!(&m[13..24], b":event-type");
        assert_eq!(m[24], 7);
        assert_eq!(&m[12 + head..total - 4], b"{}");
        assert_eq!(
            u32::from_be_bytes(m[total - 4..].try_into().unwrap()),
            crc32fast::hash(&m[..total - 4])
        );
    }
}
