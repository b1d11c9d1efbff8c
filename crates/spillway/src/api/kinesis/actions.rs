//! The Kinesis actions: decode and check the request, call the stream domain, shape the
//! answer as Kinesis does.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};

use super::iterator::{IteratorError, IteratorPosition};
use super::validate::{Checks, Pattern, is_hash_key, is_name, is_sequence_number};
use super::{KinesisError, KinesisService};
use crate::stream::{
    MAX_RECORD_BYTES, ShardState, StartPosition, StreamError, StreamState, now_ms, shard_id,
};

type R = Result<Value, KinesisError>;

const NAME: Pattern = Some((is_name, "[a-zA-Z0-9_.-]+"));
const ARN_PATTERN: &str = "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+";

pub async fn dispatch(s: &KinesisService, action: &str, req: &Value) -> R {
    match action {
        "CreateStream" => create_stream(s, req),
        "DeleteStream" => delete_stream(s, req),
        "DescribeStream" => describe_stream(s, req),
        "DescribeStreamSummary" => describe_stream_summary(s, req),
        "ListStreams" => list_streams(s, req),
        "ListShards" => list_shards(s, req),
        "PutRecord" => put_record(s, req).await,
        "PutRecords" => put_records(s, req).await,
        "GetShardIterator" => get_shard_iterator(s, req),
        "GetRecords" => get_records(s, req).await,
        "AddTagsToStream" => add_tags(s, req),
        "RemoveTagsFromStream" => remove_tags(s, req),
        "ListTagsForStream" => list_tags(s, req),
        "IncreaseStreamRetentionPeriod" => retention(s, req, true),
        "DecreaseStreamRetentionPeriod" => retention(s, req, false),
        "DescribeLimits" => describe_limits(s),
        "SplitShard" => split_shard(s, req).await,
        "MergeShards" => merge_shards(s, req).await,
        "UpdateShardCount" => update_shard_count(s, req).await,
        _ => Err(KinesisError::UnknownOperation),
    }
}

/// The stream a request names by StreamName or StreamARN.
fn stream_name(c: &mut Checks, req: &Value) -> Result<Option<String>, KinesisError> {
    let name = c.string(req, "StreamName", "streamName", false, (1, 128), NAME)?;
    let arn = c.string(req, "StreamARN", "streamARN", false, (1, 2048), None)?;
    Ok(match (name, arn) {
        (Some(n), _) => Some(n),
        (None, Some(a)) => match a.split_once(":stream/") {
            Some((prefix, n)) if prefix.starts_with("arn:aws") && prefix.contains(":kinesis:") => {
                Some(n.to_owned())
            }
            _ => {
                c.constraint(
                    &Value::String(a.clone()),
                    "streamARN",
                    &format!("Member must satisfy regular expression pattern: {ARN_PATTERN}"),
                );
                None
            }
        },
        (None, None) => None,
    })
}

fn require_stream(name: Option<String>) -> Result<String, KinesisError> {
    name.ok_or_else(|| {
        KinesisError::InvalidArgument("Either StreamName or StreamARN should be provided.".into())
    })
}

fn seconds(ms: u64) -> Value {
    json!(ms as f64 / 1000.0)
}

fn shard_json(shard: &ShardState) -> Value {
    let mut range = json!({"StartingSequenceNumber": shard.sequence_number(0).to_string()});
    if !shard.is_open() {
        let end = shard.ending().unwrap_or_else(|| shard.tip().next_counter);
        range["EndingSequenceNumber"] =
            json!(shard.sequence_number(end.saturating_sub(1)).to_string());
    }
    let mut v = json!({
        "ShardId": shard.shard_id,
        "HashKeyRange": {
            "StartingHashKey": shard.range.start.to_string(),
            "EndingHashKey": shard.range.end.to_string(),
        },
        "SequenceNumberRange": range,
    });
    if let Some(p) = shard.parents.first() {
        v["ParentShardId"] = json!(shard_id(*p));
    }
    if let Some(p) = shard.parents.get(1) {
        v["AdjacentParentShardId"] = json!(shard_id(*p));
    }
    v
}

/// The children of a closed shard, as GetRecords' ChildShards.
fn child_shards(stream: &StreamState, parent: u32) -> Vec<Value> {
    stream
        .shards
        .iter()
        .filter(|s| s.parents.contains(&parent))
        .map(|s| {
            json!({
                "ShardId": s.shard_id,
                "ParentShards": s.parents.iter().map(|p| shard_id(*p)).collect::<Vec<_>>(),
                "HashKeyRange": {
                    "StartingHashKey": s.range.start.to_string(),
                    "EndingHashKey": s.range.end.to_string(),
                },
            })
        })
        .collect()
}

fn mode() -> Value {
    json!({"StreamMode": "PROVISIONED"})
}

fn create_stream(s: &KinesisService, req: &Value) -> R {
    let mut c = Checks::default();
    let name = c.string(req, "StreamName", "streamName", true, (1, 128), NAME)?;
    let count = c.integer(req, "ShardCount", "shardCount", false, (1, 100_000))?;
    if let Some(m) = req.pointer("/StreamModeDetails/StreamMode")
        && m != "PROVISIONED"
        && m != "ON_DEMAND"
    {
        c.constraint(
            m,
            "streamModeDetails.streamMode",
            "Member must satisfy enum value set: [ON_DEMAND, PROVISIONED]",
        );
    }
    let tags = tags_from(req.get("Tags"))?;
    c.finish()?;
    let name = name.expect("checked");
    // ON_DEMAND streams start with 4 shards, as Kinesis does.
    let on_demand = req.pointer("/StreamModeDetails/StreamMode") == Some(&json!("ON_DEMAND"));
    let count = match count {
        Some(n) => n as u32,
        None if on_demand => 4,
        None => {
            return Err(KinesisError::InvalidArgument(
                "ShardCount is required for a PROVISIONED stream.".into(),
            ));
        }
    };
    s.streams.create_stream(&name, count, tags)?;
    Ok(json!({}))
}

fn tags_from(v: Option<&Value>) -> Result<BTreeMap<String, String>, KinesisError> {
    match v {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(KinesisError::Serialization(format!(
                    "tag {k}: not a string"
                ))),
            })
            .collect(),
        Some(_) => Err(KinesisError::Serialization("Tags: expected a map".into())),
    }
}

fn delete_stream(s: &KinesisService, req: &Value) -> R {
    let mut c = Checks::default();
    let name = stream_name(&mut c, req)?;
    c.finish()?;
    s.streams.delete_stream(&require_stream(name)?)?;
    Ok(json!({}))
}

fn describe_stream(s: &KinesisService, req: &Value) -> R {
    let mut c = Checks::default();
    let name = stream_name(&mut c, req)?;
    let limit = c
        .integer(req, "Limit", "limit", false, (1, 10_000))?
        .unwrap_or(100) as usize;
    let start = c.string(
        req,
        "ExclusiveStartShardId",
        "exclusiveStartShardId",
        false,
        (1, 128),
        NAME,
    )?;
    c.finish()?;
    let stream = s.streams.get(&require_stream(name)?)?;
    let shards: Vec<&Arc<ShardState>> = stream
        .shards
        .iter()
        .filter(|sh| {
            start
                .as_ref()
                .is_none_or(|st| sh.shard_id.as_str() > st.as_str())
        })
        .collect();
    let more = shards.len() > limit;
    Ok(json!({
        "StreamDescription": {
            "StreamName": stream.name,
            "StreamARN": stream.arn,
            "StreamStatus": stream.status().as_str(),
            "StreamModeDetails": mode(),
            "Shards": shards.iter().take(limit).map(|sh| shard_json(sh)).collect::<Vec<_>>(),
            "HasMoreShards": more,
            "RetentionPeriodHours": stream.retention_ms() / 3_600_000,
            "StreamCreationTimestamp": seconds(stream.created_ms),
            "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
            "EncryptionType": "NONE",
        }
    }))
}

fn describe_stream_summary(s: &KinesisService, req: &Value) -> R {
    let mut c = Checks::default();
    let name = stream_name(&mut c, req)?;
    c.finish()?;
    let stream = s.streams.get(&require_stream(name)?)?;
    Ok(json!({
        "StreamDescriptionSummary": {
            "StreamName": stream.name,
            "StreamARN": stream.arn,
            "StreamStatus": stream.status().as_str(),
            "StreamModeDetails": mode(),
            "RetentionPeriodHours": stream.retention_ms() / 3_600_000,
            "StreamCreationTimestamp": seconds(stream.created_ms),
            "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
            "EncryptionType": "NONE",
            "OpenShardCount": stream.shards.iter().filter(|sh| sh.is_open()).count(),
            "ConsumerCount": 0,
        }
    }))
}

/// Opaque pagination tokens: base64 of JSON.
fn token(v: &Value) -> String {
    base64::engine::general_purpose::STANDARD.encode(v.to_string())
}

fn untoken(t: &str) -> Result<Value, KinesisError> {
    base64::engine::general_purpose::STANDARD
        .decode(t)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| KinesisError::InvalidArgument(format!("Invalid NextToken: {t}")))
}

fn list_streams(s: &KinesisService, req: &Value) -> R {
    let mut c = Checks::default();
    let limit = c
        .integer(req, "Limit", "limit", false, (1, 10_000))?
        .unwrap_or(100) as usize;
    let start = c.string(
        req,
        "ExclusiveStartStreamName",
        "exclusiveStartStreamName",
        false,
        (1, 128),
        NAME,
    )?;
    let next = c.string(req, "NextToken", "nextToken", false, (1, 1_048_576), None)?;
    c.finish()?;
    let after = match next {
        Some(t) => untoken(&t)?["after"].as_str().map(str::to_owned),
        None => start,
    };
    let all: Vec<Arc<StreamState>> = s
        .streams
        .all()
        .into_iter()
        .filter(|st| after.as_ref().is_none_or(|a| st.name.as_str() > a.as_str()))
        .collect();
    let more = all.len() > limit;
    let page = &all[..all.len().min(limit)];
    let mut out = json!({
        "StreamNames": page.iter().map(|st| st.name.clone()).collect::<Vec<_>>(),
        "HasMoreStreams": more,
        "StreamSummaries": page.iter().map(|st| json!({
            "StreamName": st.name,
            "StreamARN": st.arn,
            "StreamStatus": st.status().as_str(),
            "StreamModeDetails": mode(),
            "StreamCreationTimestamp": seconds(st.created_ms),
        })).collect::<Vec<_>>(),
    });
    if more && let Some(last) = page.last() {
        out["NextToken"] = json!(token(&json!({"after": last.name})));
    }
    Ok(out)
}

fn list_shards(s: &KinesisService, req: &Value) -> R {
    let mut c = Checks::default();
    let name = stream_name(&mut c, req)?;
    let next = c.string(req, "NextToken", "nextToken", false, (1, 1_048_576), None)?;
    let max = c
        .integer(req, "MaxResults", "maxResults", false, (1, 10_000))?
        .unwrap_or(1000) as usize;
    let start = c.string(
        req,
        "ExclusiveStartShardId",
        "exclusiveStartShardId",
        false,
        (1, 128),
        NAME,
    )?;
    let filter = req.get("ShardFilter").cloned();
    if let Some(f) = &filter {
        c.one_of(
            f,
            "Type",
            "shardFilter.type",
            true,
            &[
                "AFTER_SHARD_ID",
                "AT_TRIM_HORIZON",
                "FROM_TRIM_HORIZON",
                "AT_LATEST",
                "AT_TIMESTAMP",
                "FROM_TIMESTAMP",
            ],
        )?;
    }
    c.finish()?;
    let (stream_name, after) = match next {
        Some(t) => {
            if name.is_some() {
                return Err(KinesisError::InvalidArgument(
                    "NextToken and StreamName cannot be provided together.".into(),
                ));
            }
            let v = untoken(&t)?;
            (
                v["stream"].as_str().map(str::to_owned).ok_or_else(|| {
                    KinesisError::InvalidArgument(format!("Invalid NextToken: {t}"))
                })?,
                v["after"].as_str().map(str::to_owned),
            )
        }
        None => {
            let after = match filter
                .as_ref()
                .and_then(|f| f.get("Type"))
                .and_then(Value::as_str)
            {
                Some("AFTER_SHARD_ID") => Some(
                    filter
                        .as_ref()
                        .and_then(|f| f.get("ShardId"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            KinesisError::InvalidArgument(
                                "ShardId must be specified for ShardFilter type AFTER_SHARD_ID."
                                    .into(),
                            )
                        })?,
                ),
                _ => start,
            };
            (require_stream(name)?, after)
        }
    };
    let stream = s.streams.get(&stream_name)?;
    // AT_LATEST lists the open shards; the other filters list every shard still kept.
    let open_only = filter.as_ref().and_then(|f| f.get("Type")) == Some(&json!("AT_LATEST"));
    let shards: Vec<&Arc<ShardState>> = stream
        .shards
        .iter()
        .filter(|sh| {
            after
                .as_ref()
                .is_none_or(|a| sh.shard_id.as_str() > a.as_str())
        })
        .filter(|sh| !open_only || sh.is_open())
        .collect();
    let page = &shards[..shards.len().min(max)];
    let mut out = json!({"Shards": page.iter().map(|sh| shard_json(sh)).collect::<Vec<_>>()});
    if shards.len() > max
        && let Some(last) = page.last()
    {
        out["NextToken"] = json!(token(
            &json!({"stream": stream.name, "after": last.shard_id})
        ));
    }
    Ok(out)
}

/// Checks one record's fields; returns (data, partition key, explicit hash key).
fn record_fields(
    c: &mut Checks,
    r: &Value,
    prefix: &str,
) -> Result<Option<(Bytes, String, Option<String>)>, KinesisError> {
    let pk = c.string(
        r,
        "PartitionKey",
        &format!("{prefix}partitionKey"),
        true,
        (1, 256),
        None,
    )?;
    let ehk = c.string(
        r,
        "ExplicitHashKey",
        &format!("{prefix}explicitHashKey"),
        false,
        (0, usize::MAX),
        Some((is_hash_key, "0|([1-9]\\d{0,38})")),
    )?;
    let data = match r.get("Data") {
        Some(Value::String(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map(Bytes::from)
            .map_err(|_| KinesisError::Serialization("Data: invalid base64".into()))?,
        None | Some(Value::Null) => {
            c.constraint(
                &Value::Null,
                &format!("{prefix}data"),
                "Member must not be null",
            );
            return Ok(None);
        }
        Some(_) => {
            return Err(KinesisError::Serialization(
                "Data: expected a base64 string".into(),
            ));
        }
    };
    if data.len() > MAX_RECORD_BYTES {
        c.constraint(
            &Value::String(
                "java.nio.HeapByteBuffer[pos=0 lim=".to_owned() + &data.len().to_string() + "]",
            ),
            &format!("{prefix}data"),
            "Member must have length less than or equal to 1048576",
        );
    }
    Ok(pk.map(|pk| (data, pk, ehk)))
}

async fn put_record(s: &KinesisService, req: &Value) -> R {
    let mut c = Checks::default();
    let name = stream_name(&mut c, req)?;
    let fields = record_fields(&mut c, req, "")?;
    c.string(
        req,
        "SequenceNumberForOrdering",
        "sequenceNumberForOrdering",
        false,
        (0, 128),
        Some((is_sequence_number, "0|([1-9]\\d{0,128})")),
    )?;
    c.finish()?;
    let name = require_stream(name)?;
    let (data, pk, ehk) = fields.expect("checked");
    let a = s.streams.append(&name, pk, ehk.as_deref(), data).await?;
    Ok(json!({"ShardId": a.shard_id, "SequenceNumber": a.sequence_number}))
}

async fn put_records(s: &KinesisService, req: &Value) -> R {
    let mut c = Checks::default();
    let name = stream_name(&mut c, req)?;
    let records = match req.get("Records") {
        Some(Value::Array(a)) => a.clone(),
        None | Some(Value::Null) => {
            c.constraint(&Value::Null, "records", "Member must not be null");
            Vec::new()
        }
        Some(_) => {
            return Err(KinesisError::Serialization(
                "Records: expected a list".into(),
            ));
        }
    };
    if req.get("Records").is_some_and(Value::is_array) {
        if records.is_empty() {
            c.constraint(
                &json!("[]"),
                "records",
                "Member must have length greater than or equal to 1",
            );
        }
        if records.len() > 500 {
            c.constraint(
                &json!("[...]"),
                "records",
                "Member must have length less than or equal to 500",
            );
        }
    }
    let mut parsed = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        parsed.push(record_fields(
            &mut c,
            r,
            &format!("records.{}.member.", i + 1),
        )?);
    }
    c.finish()?;
    let name = require_stream(name)?;
    let total: usize = parsed
        .iter()
        .flatten()
        .map(|(d, pk, _)| d.len() + pk.len())
        .sum();
    if total > 5 * 1024 * 1024 {
        return Err(KinesisError::InvalidArgument(format!(
            "Records size exceeds 5 MB limit (request size {total} bytes)."
        )));
    }
    // Fail the whole request for a missing stream, as Kinesis does, before any append.
    s.streams.get_readable(&name)?;
    let appends = parsed.into_iter().flatten().map(|(data, pk, ehk)| {
        let streams = Arc::clone(&s.streams);
        let name = name.clone();
        async move { streams.append(&name, pk, ehk.as_deref(), data).await }
    });
    let results = futures_util::future::join_all(appends).await;
    let mut failed = 0;
    let out: Vec<Value> = results
        .into_iter()
        .map(|r| match r {
            Ok(a) => json!({"SequenceNumber": a.sequence_number, "ShardId": a.shard_id}),
            Err(e) => {
                failed += 1;
                match e {
                    StreamError::ThroughputExceeded { .. } => json!({
                        "ErrorCode": "ProvisionedThroughputExceededException",
                        "ErrorMessage": e.to_string(),
                    }),
                    _ => json!({"ErrorCode": "InternalFailure", "ErrorMessage": "Internal service failure."}),
                }
            }
        })
        .collect();
    Ok(json!({"FailedRecordCount": failed, "Records": out}))
}

const ITERATOR_TYPES: [&str; 5] = [
    "AFTER_SEQUENCE_NUMBER",
    "AT_SEQUENCE_NUMBER",
    "AT_TIMESTAMP",
    "TRIM_HORIZON",
    "LATEST",
];

/// A timestamp as the SDKs send it: epoch seconds (number) or an ISO 8601 string.
fn timestamp_ms(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .filter(|f| *f >= 0.0)
            .map(|f| (f * 1000.0).round() as u64),
        Value::String(s) => s.parse::<f64>().ok().map(|f| (f * 1000.0).round() as u64),
        _ => None,
    }
}

fn get_shard_iterator(s: &KinesisService, req: &Value) -> R {
    let mut c = Checks::default();
    let name = stream_name(&mut c, req)?;
    let shard = c.string(req, "ShardId", "shardId", true, (1, 128), NAME)?;
    let kind = c.one_of(
        req,
        "ShardIteratorType",
        "shardIteratorType",
        true,
        &ITERATOR_TYPES,
    )?;
    let seq = c.string(
        req,
        "StartingSequenceNumber",
        "startingSequenceNumber",
        false,
        (0, usize::MAX),
        Some((is_sequence_number, "0|([1-9]\\d{0,128})")),
    )?;
    c.finish()?;
    let name = require_stream(name)?;
    let (shard_id_text, kind) = (shard.expect("checked"), kind.expect("checked"));
    let position = match kind.as_str() {
        "TRIM_HORIZON" => StartPosition::TrimHorizon,
        "LATEST" => StartPosition::Latest,
        "AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER" => {
            let seq = seq.ok_or_else(|| {
                KinesisError::InvalidArgument(format!(
                    "Must specify StartingSequenceNumber for {kind} ShardIteratorType"
                ))
            })?;
            if kind == "AT_SEQUENCE_NUMBER" {
                StartPosition::AtSequenceNumber(seq)
            } else {
                StartPosition::AfterSequenceNumber(seq)
            }
        }
        _ => {
            let ts = req.get("Timestamp").and_then(timestamp_ms).ok_or_else(|| {
                KinesisError::InvalidArgument(
                    "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter."
                        .into(),
                )
            })?;
            StartPosition::AtTimestamp(ts)
        }
    };
    let stream = s.streams.get_readable(&name)?;
    let shard = s.streams.shard(&stream, &shard_id_text)?;
    let counter = s.streams.resolve_in_shard(&shard, &position)?;
    Ok(
        json!({"ShardIterator": s.iterators.encode(IteratorPosition {
            stream_id: stream.stream_id,
            shard_index: shard.key.shard_index,
            counter,
            issued_ms: now_ms(),
        })}),
    )
}

async fn get_records(s: &KinesisService, req: &Value) -> R {
    let mut c = Checks::default();
    let it = c.string(req, "ShardIterator", "shardIterator", true, (1, 512), None)?;
    let limit = c
        .integer(req, "Limit", "limit", false, (1, 10_000))?
        .unwrap_or(10_000) as usize;
    c.finish()?;
    let now = now_ms();
    let p = s.iterators.decode(&it.expect("checked"), now).map_err(|e| match e {
        IteratorError::Invalid => KinesisError::InvalidArgument("Invalid ShardIterator.".into()),
        IteratorError::Expired { issued_ms, now_ms } => KinesisError::ExpiredIterator(format!(
            "Iterator expired. The iterator was created at time {} while right now it is {} which is further in the future than the tolerated delay of 300000 milliseconds.",
            crate::mapping::dead_letter::iso8601(issued_ms),
            crate::mapping::dead_letter::iso8601(now_ms)
        )),
    })?;
    let stream = s
        .streams
        .all()
        .into_iter()
        .find(|st| st.stream_id == p.stream_id)
        .ok_or_else(|| {
            KinesisError::ResourceNotFound(format!(
                "Shard {} in stream with id {} under account {} does not exist",
                shard_id(p.shard_index),
                p.stream_id,
                s.streams.account_id()
            ))
        })?;
    let stream = s.streams.get_readable(&stream.name)?;
    let shard = stream
        .shards
        .iter()
        .find(|sh| sh.key.shard_index == p.shard_index)
        .cloned()
        .ok_or_else(|| {
            KinesisError::ResourceNotFound(format!(
                "Shard {} does not exist",
                shard_id(p.shard_index)
            ))
        })?;
    if !shard.try_begin_read() {
        return Err(KinesisError::ProvisionedThroughputExceeded(format!(
            "Rate exceeded for Shard - {}/{}/{}",
            s.streams.account_id(),
            stream.name,
            shard.shard_id
        )));
    }
    let streams = Arc::clone(&s.streams);
    let reading = Arc::clone(&shard);
    let batch = tokio::task::spawn_blocking(move || streams.read_shard(&reading, p.counter, limit))
        .await
        // A panic: logged with its backtrace by the panic hook; not on the wire.
        .map_err(|_| KinesisError::InternalFailure("Internal service failure.".into()))??;
    shard.charge_read(
        batch
            .records
            .iter()
            .map(|r| r.data.len() + r.partition_key.len())
            .sum(),
    );
    // A closed shard read to its end has no next iterator: its children take over.
    let finished = shard.ending().is_some_and(|end| batch.next_counter >= end);
    let next = if finished {
        Value::Null
    } else {
        json!(s.iterators.encode(IteratorPosition {
            counter: batch.next_counter,
            issued_ms: now,
            ..p
        }))
    };
    let mut out = json!({
        "Records": batch.records.iter().map(|r| json!({
            "SequenceNumber": r.sequence_number,
            "ApproximateArrivalTimestamp": seconds(r.arrival_ms),
            "Data": base64::engine::general_purpose::STANDARD.encode(&r.data),
            "PartitionKey": r.partition_key,
        })).collect::<Vec<_>>(),
        "NextShardIterator": next,
        "MillisBehindLatest": batch.millis_behind_latest,
    });
    if finished {
        out["ChildShards"] = json!(child_shards(&stream, p.shard_index));
    }
    Ok(out)
}

async fn split_shard(s: &KinesisService, req: &Value) -> R {
    let mut c = Checks::default();
    let name = stream_name(&mut c, req)?;
    let shard = c.string(req, "ShardToSplit", "shardToSplit", true, (1, 128), NAME)?;
    let key = c.string(
        req,
        "NewStartingHashKey",
        "newStartingHashKey",
        true,
        (0, usize::MAX),
        Some((is_hash_key, "0|([1-9]\\d{0,38})")),
    )?;
    c.finish()?;
    let key = crate::stream::hash::parse_explicit_hash_key(&key.expect("checked"))?;
    s.streams
        .split_shard(&require_stream(name)?, &shard.expect("checked"), key)
        .await?;
    Ok(json!({}))
}

async fn merge_shards(s: &KinesisService, req: &Value) -> R {
    let mut c = Checks::default();
    let name = stream_name(&mut c, req)?;
    let a = c.string(req, "ShardToMerge", "shardToMerge", true, (1, 128), NAME)?;
    let b = c.string(
        req,
        "AdjacentShardToMerge",
        "adjacentShardToMerge",
        true,
        (1, 128),
        NAME,
    )?;
    c.finish()?;
    s.streams
        .merge_shards(
            &require_stream(name)?,
            &a.expect("checked"),
            &b.expect("checked"),
        )
        .await?;
    Ok(json!({}))
}

async fn update_shard_count(s: &KinesisService, req: &Value) -> R {
    let mut c = Checks::default();
    let name = stream_name(&mut c, req)?;
    let target = c.integer(
        req,
        "TargetShardCount",
        "targetShardCount",
        true,
        (1, 100_000),
    )?;
    c.one_of(
        req,
        "ScalingType",
        "scalingType",
        true,
        &["UNIFORM_SCALING"],
    )?;
    c.finish()?;
    let name = require_stream(name)?;
    let target = target.expect("checked") as u32;
    let current = s.streams.update_shard_count(&name, target).await?;
    let stream = s.streams.get(&name)?;
    Ok(json!({
        "StreamName": name,
        "StreamARN": stream.arn,
        "CurrentShardCount": current,
        "TargetShardCount": target,
    }))
}

fn add_tags(s: &KinesisService, req: &Value) -> R {
    let mut c = Checks::default();
    let name = stream_name(&mut c, req)?;
    let tags = tags_from(req.get("Tags"))?;
    if req.get("Tags").is_none() {
        c.constraint(&Value::Null, "tags", "Member must not be null");
    } else if tags.is_empty() || tags.len() > 10 {
        c.constraint(
            &json!("{...}"),
            "tags",
            if tags.is_empty() {
                "Member must have length greater than or equal to 1"
            } else {
                "Member must have length less than or equal to 10"
            },
        );
    }
    for (k, v) in &tags {
        if k.is_empty() || k.chars().count() > 128 {
            c.constraint(
                &json!(k),
                "tags",
                "Member must have length less than or equal to 128",
            );
        }
        if v.chars().count() > 256 {
            c.constraint(
                &json!(v),
                "tags",
                "Member must have length less than or equal to 256",
            );
        }
    }
    c.finish()?;
    s.streams.add_tags(&require_stream(name)?, tags)?;
    Ok(json!({}))
}

fn remove_tags(s: &KinesisService, req: &Value) -> R {
    let mut c = Checks::default();
    let name = stream_name(&mut c, req)?;
    let keys: Vec<String> = match req.get("TagKeys") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect(),
        None | Some(Value::Null) => {
            c.constraint(&Value::Null, "tagKeys", "Member must not be null");
            Vec::new()
        }
        Some(_) => {
            return Err(KinesisError::Serialization(
                "TagKeys: expected a list".into(),
            ));
        }
    };
    if req.get("TagKeys").is_some_and(Value::is_array) && (keys.is_empty() || keys.len() > 50) {
        c.constraint(
            &json!("[...]"),
            "tagKeys",
            if keys.is_empty() {
                "Member must have length greater than or equal to 1"
            } else {
                "Member must have length less than or equal to 50"
            },
        );
    }
    c.finish()?;
    s.streams.remove_tags(&require_stream(name)?, &keys)?;
    Ok(json!({}))
}

fn list_tags(s: &KinesisService, req: &Value) -> R {
    let mut c = Checks::default();
    let name = stream_name(&mut c, req)?;
    let start = c.string(
        req,
        "ExclusiveStartTagKey",
        "exclusiveStartTagKey",
        false,
        (1, 128),
        None,
    )?;
    let limit = c
        .integer(req, "Limit", "limit", false, (1, 50))?
        .unwrap_or(50) as usize;
    c.finish()?;
    let stream = s.streams.get(&require_stream(name)?)?;
    let tags: Vec<(String, String)> = stream
        .tags()
        .into_iter()
        .filter(|(k, _)| start.as_ref().is_none_or(|st| k.as_str() > st.as_str()))
        .collect();
    Ok(json!({
        "Tags": tags.iter().take(limit).map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>(),
        "HasMoreTags": tags.len() > limit,
    }))
}

fn retention(s: &KinesisService, req: &Value, increase: bool) -> R {
    let mut c = Checks::default();
    let name = stream_name(&mut c, req)?;
    let hours = c.integer(
        req,
        "RetentionPeriodHours",
        "retentionPeriodHours",
        true,
        (24, 8760),
    )?;
    c.finish()?;
    s.streams.set_retention_hours(
        &require_stream(name)?,
        hours.expect("checked") as u64,
        increase,
    )?;
    Ok(json!({}))
}

fn describe_limits(s: &KinesisService) -> R {
    Ok(json!({
        "ShardLimit": s.streams.shard_limit(),
        "OpenShardCount": s.streams.open_shard_count(),
        "OnDemandStreamCount": 0,
        "OnDemandStreamCountLimit": 50,
    }))
}
