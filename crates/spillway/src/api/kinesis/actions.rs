//! The Kinesis actions: the request has already passed the model layer
//! ([`crate::api::model`]: types and constraints), so each action reads its members
//! directly, makes the checks the model cannot express, calls the stream domain and
//! shapes the answer as Kinesis does.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};

use super::iterator::{IteratorError, IteratorPosition};
use super::{KinesisError, KinesisService};
use crate::stream::settings::Consumer;
use crate::stream::{ShardState, StartPosition, StreamError, StreamState, now_ms, shard_id};

type R = Result<Value, KinesisError>;

/// Kinesis reads a shard id as the number after its last `-` (`shardId-7`, `shard-7`
/// and `7` all name shard 7) and answers in the canonical form, `shardId-000000000007`.
/// `None`: not a shard number at all (or past a 32-bit int).
fn shard_index_of(raw: &str) -> Option<u32> {
    let digits = raw.rsplit('-').next().unwrap_or(raw);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.trim_start_matches('0').parse().unwrap_or(0);
    if digits.trim_start_matches('0').len() > 10 || n > i32::MAX as u64 {
        return None;
    }
    u32::try_from(n).ok()
}

/// The canonical form of a shard id a client sent, or Kinesis' refusal of it.
pub(super) fn normalized_shard_id(
    s: &KinesisService,
    raw: &str,
    stream: &str,
) -> Result<String, KinesisError> {
    shard_index_of(raw).map(shard_id).ok_or_else(|| {
        KinesisError::ResourceNotFound(format!(
            "Could not find shard {raw} in stream {stream} under account {}.",
            s.streams.account_id()
        ))
    })
}

/// Kinesis' check of tag characters: letters, digits, spaces and `_ . / = + - % @`;
/// `%` passes the first check and fails a second one, with its own message.
fn check_tag_characters(
    s: &KinesisService,
    stream: &str,
    tags: &BTreeMap<String, String>,
    adding: bool,
) -> Result<(), KinesisError> {
    let allowed = |c: char| c.is_alphanumeric() || c == ' ' || "_./=+-%@".contains(c);
    let texts = || tags.iter().flat_map(|(k, v)| [k, v]);
    if texts().any(|t| !t.chars().all(allowed)) {
        return Err(KinesisError::InvalidArgument(
            "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @."
                .into(),
        ));
    }
    if texts().any(|t| t.contains('%')) {
        return Err(KinesisError::InvalidArgument(format!(
            "Failed to {} tags {} stream {stream} under account {} because some tags contained illegal characters. The allowed characters are Unicode letters, white-spaces, '_',',','/','=','+','-','@'.",
            if adding { "add" } else { "remove" },
            if adding { "to" } else { "from" },
            s.streams.account_id()
        )));
    }
    Ok(())
}

/// A string member (the model layer has checked its type).
fn text<'a>(req: &'a Value, key: &str) -> Option<&'a str> {
    req.get(key).and_then(Value::as_str)
}

/// An integer member, truncated and clamped as AWS's decoder reads it.
fn integer(req: &Value, key: &str) -> Option<i64> {
    let n = req.get(key)?.as_number()?;
    Some(match n.as_i64() {
        Some(i) => i.clamp(i32::MIN.into(), i32::MAX.into()),
        None => n.as_f64().map_or(0, |f| {
            f.trunc().clamp(i32::MIN as f64, i32::MAX as f64) as i64
        }),
    })
}

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
        "UpdateStreamMode" => update_stream_mode(s, req),
        "StartStreamEncryption" => encryption(s, req, true),
        "StopStreamEncryption" => encryption(s, req, false),
        "EnableEnhancedMonitoring" => monitoring(s, req, true),
        "DisableEnhancedMonitoring" => monitoring(s, req, false),
        "RegisterStreamConsumer" => register_consumer(s, req),
        "DescribeStreamConsumer" => describe_consumer(s, req),
        "ListStreamConsumers" => list_consumers(s, req),
        "DeregisterStreamConsumer" => deregister_consumer(s, req),
        _ => Err(KinesisError::UnknownOperation),
    }
}

/// The stream a request names by StreamName or StreamARN (the model layer has made sure
/// one of them is there and well-formed).
fn stream_name(req: &Value) -> Result<String, KinesisError> {
    if let Some(n) = text(req, "StreamName") {
        return Ok(n.to_owned());
    }
    text(req, "StreamARN")
        .and_then(|a| a.split_once(":stream/"))
        .map(|(_, n)| n.to_owned())
        .ok_or_else(|| {
            KinesisError::InvalidArgument(
                "Either StreamName or StreamARN should be provided.".into(),
            )
        })
}

/// A time as Java's `Date.toString` writes it (`Tue Dec 01 02:58:21 UTC 2026`), which
/// Kinesis' iterator-expiry message uses.
fn java_date(ms: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = crate::mapping::dead_letter::civil_from_days(days);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {y}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1).clamp(0, 11) as usize],
        d,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Records as GetRecords and SubscribeToShard answer them.
pub(super) fn records_json(records: &[crate::stream::Record]) -> Vec<Value> {
    records
        .iter()
        .map(|r| {
            json!({
                "SequenceNumber": r.sequence_number,
                "ApproximateArrivalTimestamp": seconds(r.arrival_ms),
                "Data": base64::engine::general_purpose::STANDARD.encode(&r.data),
                "PartitionKey": r.partition_key,
            })
        })
        .collect()
}

pub(super) fn seconds(ms: u64) -> Value {
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

/// The children of a closed shard, as GetRecords' and SubscribeToShard's ChildShards.
pub(super) fn child_shards(children: &[Arc<ShardState>]) -> Vec<Value> {
    children
        .iter()
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

fn mode(stream: &StreamState) -> Value {
    let on_demand = stream.settings().on_demand;
    json!({"StreamMode": if on_demand { "ON_DEMAND" } else { "PROVISIONED" }})
}

/// The settings members DescribeStream and DescribeStreamSummary share: monitoring and
/// encryption, as Kinesis reports them.
fn add_settings(out: &mut Value, stream: &StreamState) {
    let settings = stream.settings();
    out["EnhancedMonitoring"] = json!([{"ShardLevelMetrics": settings.shard_level_metrics}]);
    match settings.encryption_key {
        Some(key) => {
            out["EncryptionType"] = json!("KMS");
            out["KeyId"] = json!(key);
        }
        None => out["EncryptionType"] = json!("NONE"),
    }
}

fn create_stream(s: &KinesisService, req: &Value) -> R {
    let name = text(req, "StreamName").unwrap_or_default();
    let count = integer(req, "ShardCount");
    let tags = tags_from(req.get("Tags"));
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
    s.streams.create_stream(name, count, tags, on_demand)?;
    Ok(json!({}))
}

fn tags_from(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

fn delete_stream(s: &KinesisService, req: &Value) -> R {
    s.streams.delete_stream(&stream_name(req)?)?;
    Ok(json!({}))
}

fn describe_stream(s: &KinesisService, req: &Value) -> R {
    let limit = integer(req, "Limit").unwrap_or(100).clamp(1, 10_000) as usize;
    let start = text(req, "ExclusiveStartShardId");
    let stream = s.streams.get(&stream_name(req)?)?;
    // A stream still CREATING has no shards to show yet.
    let creating = stream.status() == crate::stream::StreamStatus::Creating;
    let shards: Vec<&Arc<ShardState>> = stream
        .shards
        .iter()
        .filter(|sh| !creating && start.is_none_or(|st| sh.shard_id.as_str() > st))
        .collect();
    let more = shards.len() > limit;
    let mut d = json!({
        "StreamName": stream.name,
        "StreamARN": stream.arn,
        "StreamStatus": stream.status().as_str(),
        "StreamModeDetails": mode(&stream),
        "Shards": shards.iter().take(limit).map(|sh| shard_json(sh)).collect::<Vec<_>>(),
        "HasMoreShards": more,
        "RetentionPeriodHours": stream.retention_ms() / 3_600_000,
        "StreamCreationTimestamp": seconds(stream.created_ms),
    });
    add_settings(&mut d, &stream);
    Ok(json!({ "StreamDescription": d }))
}

fn describe_stream_summary(s: &KinesisService, req: &Value) -> R {
    let stream = s.streams.get(&stream_name(req)?)?;
    let mut d = json!({
        "StreamName": stream.name,
        "StreamARN": stream.arn,
        "StreamStatus": stream.status().as_str(),
        "StreamModeDetails": mode(&stream),
        "RetentionPeriodHours": stream.retention_ms() / 3_600_000,
        "StreamCreationTimestamp": seconds(stream.created_ms),
        "OpenShardCount": stream.shards.iter().filter(|sh| sh.is_open()).count(),
        "ConsumerCount": stream.settings().consumers.len(),
    });
    add_settings(&mut d, &stream);
    Ok(json!({ "StreamDescriptionSummary": d }))
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
    let limit = integer(req, "Limit").unwrap_or(100).clamp(1, 10_000) as usize;
    let start = text(req, "ExclusiveStartStreamName").map(str::to_owned);
    let after = match text(req, "NextToken") {
        Some(t) => untoken(t)?["after"].as_str().map(str::to_owned),
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
            "StreamModeDetails": mode(st),
            "StreamCreationTimestamp": seconds(st.created_ms),
        })).collect::<Vec<_>>(),
    });
    if more && let Some(last) = page.last() {
        out["NextToken"] = json!(token(&json!({"after": last.name})));
    }
    Ok(out)
}

fn list_shards(s: &KinesisService, req: &Value) -> R {
    let name = text(req, "StreamName").map(str::to_owned);
    let next = text(req, "NextToken");
    let max = integer(req, "MaxResults").unwrap_or(1000).clamp(1, 10_000) as usize;
    let start = text(req, "ExclusiveStartShardId").map(str::to_owned);
    let filter = req.get("ShardFilter").cloned();
    let (stream_name, after) = match next {
        Some(t) => {
            if name.is_some() {
                return Err(KinesisError::InvalidArgument(
                    "NextToken and StreamName cannot be provided together.".into(),
                ));
            }
            let v = untoken(t)?;
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
            let stream = stream_name(req).map_err(|_| {
                KinesisError::InvalidArgument(
                    "Either NextToken or StreamName should be provided.".into(),
                )
            })?;
            (stream, after)
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

/// One record's members: (data, partition key, explicit hash key).
fn record_fields(r: &Value) -> Result<(Bytes, String, Option<String>), KinesisError> {
    let pk = text(r, "PartitionKey").unwrap_or_default().to_owned();
    let ehk = text(r, "ExplicitHashKey").map(str::to_owned);
    let data = base64::engine::general_purpose::STANDARD
        .decode(text(r, "Data").unwrap_or_default())
        .map(Bytes::from)
        .map_err(|_| KinesisError::Serialization("Data: invalid base64".into()))?;
    Ok((data, pk, ehk))
}

async fn put_record(s: &KinesisService, req: &Value) -> R {
    let name = stream_name(req)?;
    let (data, pk, ehk) = record_fields(req)?;
    // Records are ordered by arrival anyway; the value must still be a sequence number.
    if let Some(seq) = text(req, "SequenceNumberForOrdering")
        && crate::stream::SequenceNumber::parse(seq).is_err()
    {
        return Err(KinesisError::InvalidArgument(format!(
            "ExclusiveMinimumSequenceNumber {seq} used in PutRecord on stream {name} under account {} is invalid.",
            s.streams.account_id()
        )));
    }
    let a = s.streams.append(&name, pk, ehk.as_deref(), data).await?;
    Ok(json!({"ShardId": a.shard_id, "SequenceNumber": a.sequence_number}))
}

async fn put_records(s: &KinesisService, req: &Value) -> R {
    let name = stream_name(req)?;
    let parsed = req
        .get("Records")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(record_fields).collect::<Result<Vec<_>, _>>())
        .transpose()?
        .unwrap_or_default();
    // An out-of-range ExplicitHashKey fails the whole request, before any append.
    for (_, _, ehk) in &parsed {
        if let Some(k) = ehk {
            crate::stream::hash::parse_explicit_hash_key(k)?;
        }
    }
    let total: usize = parsed.iter().map(|(d, pk, _)| d.len() + pk.len()).sum();
    if total > 5 * 1024 * 1024 {
        return Err(KinesisError::InvalidArgument(format!(
            "Records size exceeds 5 MB limit (request size {total} bytes)."
        )));
    }
    // Fail the whole request for a missing stream, as Kinesis does, before any append.
    s.streams.get_readable(&name)?;
    let appends = parsed.into_iter().map(|(data, pk, ehk)| {
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

/// An AT_TIMESTAMP position, refused as Kinesis refuses it when it lies in the future.
pub(super) fn not_in_the_future(ts: u64) -> Result<u64, KinesisError> {
    let now = now_ms();
    if ts > now {
        return Err(KinesisError::InvalidArgument(format!(
            "The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: {ts}, currentTimestampInMillis: {now}"
        )));
    }
    Ok(ts)
}

/// A timestamp as the SDKs send it: epoch seconds (number) or an ISO 8601 string.
pub(super) fn timestamp_ms(v: &Value) -> Option<u64> {
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
    let name = stream_name(req)?;
    let shard_id_text = text(req, "ShardId").unwrap_or_default().to_owned();
    let kind = text(req, "ShardIteratorType")
        .unwrap_or_default()
        .to_owned();
    let seq = text(req, "StartingSequenceNumber").map(str::to_owned);
    let needs_seq = matches!(
        kind.as_str(),
        "AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER"
    );
    let wrong_seq = match (needs_seq, seq.is_some()) {
        (true, false) => Some("no StartingSequenceNumber"),
        (false, true) if kind != "AT_TIMESTAMP" => Some("also a StartingSequenceNumber"),
        _ => None,
    };
    if let Some(what) = wrong_seq {
        return Err(KinesisError::InvalidArgument(format!(
            "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified {kind} and {what}."
        )));
    }
    let position = match kind.as_str() {
        "TRIM_HORIZON" => StartPosition::TrimHorizon,
        "LATEST" => StartPosition::Latest,
        "AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER" => {
            let seq = seq.unwrap_or_default();
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
            StartPosition::AtTimestamp(not_in_the_future(ts)?)
        }
    };
    let shard_id_text = normalized_shard_id(s, &shard_id_text, &name)?;
    // An unknown stream is reported as the shard not existing in it, as Kinesis does.
    let stream = s.streams.get_readable(&name).map_err(|e| match e {
        StreamError::StreamNotFound { .. } => KinesisError::ResourceNotFound(format!(
            "Shard {shard_id_text} in stream {name} under account {} does not exist",
            s.streams.account_id()
        )),
        e => e.into(),
    })?;
    let shard = s.streams.shard(&stream, &shard_id_text)?;
    if let Some(seq) = text(req, "StartingSequenceNumber")
        && crate::stream::SequenceNumber::parse(seq).is_err()
    {
        return Err(KinesisError::InvalidArgument(format!(
            "StartingSequenceNumber {seq} used in GetShardIterator on shard {shard_id_text} in stream {name} under account {} is invalid.",
            s.streams.account_id()
        )));
    }
    let counter = s.streams.resolve_in_shard(&shard, &position)?;
    Ok(
        json!({"ShardIterator": s.iterators.encode(IteratorPosition {
            stream_id: stream.stream_id,
            shard_index: shard.key.shard_index,
            counter,
            issued_ms: now_ms(),
        }, &stream.name)}),
    )
}

async fn get_records(s: &KinesisService, req: &Value) -> R {
    let it = text(req, "ShardIterator").unwrap_or_default();
    let limit = integer(req, "Limit").unwrap_or(10_000).clamp(1, 10_000) as usize;
    let now = now_ms();
    let (p, iterator_stream) = s.iterators.decode(it, now).map_err(|e| match e {
        IteratorError::Invalid => KinesisError::InvalidArgument("Invalid ShardIterator.".into()),
        IteratorError::Expired { issued_ms, now_ms } => KinesisError::ExpiredIterator(format!(
            "Iterator expired. The iterator was created at time {} while right now it is {} which is further in the future than the tolerated delay of 300000 milliseconds.",
            java_date(issued_ms),
            java_date(now_ms)
        )),
    })?;
    let stream = s
        .streams
        .all()
        .into_iter()
        .find(|st| st.stream_id == p.stream_id)
        .ok_or_else(|| {
            KinesisError::ResourceNotFound(format!(
                "Shard {} in stream {iterator_stream} under account {} does not exist",
                shard_id(p.shard_index),
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
    let (reading, of) = (Arc::clone(&shard), Arc::clone(&stream));
    let page =
        tokio::task::spawn_blocking(move || streams.read_page(&of, &reading, p.counter, limit))
            .await
            // A panic: logged with its backtrace by the panic hook; not on the wire.
            .map_err(|_| KinesisError::InternalFailure("Internal service failure.".into()))??;
    let batch = &page.batch;
    shard.charge_read(
        batch
            .records
            .iter()
            .map(|r| r.data.len() + r.partition_key.len())
            .sum(),
    );
    // A closed shard read to its end has no next iterator: its children take over.
    let next = if page.finished {
        Value::Null
    } else {
        json!(s.iterators.encode(
            IteratorPosition {
                counter: batch.next_counter,
                issued_ms: now,
                ..p
            },
            &stream.name
        ))
    };
    let mut out = json!({
        "Records": records_json(&batch.records),
        "NextShardIterator": next,
        "MillisBehindLatest": batch.millis_behind_latest,
    });
    if page.finished {
        out["ChildShards"] = json!(child_shards(&page.children));
    }
    Ok(out)
}

async fn split_shard(s: &KinesisService, req: &Value) -> R {
    let name = stream_name(req)?;
    let shard = normalized_shard_id(s, text(req, "ShardToSplit").unwrap_or_default(), &name)?;
    let key_text = text(req, "NewStartingHashKey").unwrap_or_default();
    // Past 2^128-1 no shard can hold it: the same refusal as any key out of the range.
    let key = match key_text.parse::<u128>() {
        Ok(k) => k,
        Err(_) => {
            let stream = s.streams.get_active(&name)?;
            let parent = s.streams.shard(&stream, &shard)?;
            return Err(KinesisError::InvalidArgument(format!(
                "NewStartingHashKey {key_text} used in SplitShard() on shard {shard} in stream {name} under account {} is not both greater than one plus the shard's StartingHashKey {} and less than the shard's EndingHashKey {}.",
                s.streams.account_id(),
                parent.range.start,
                parent.range.end
            )));
        }
    };
    s.streams
        .split_shard(&name, &shard, key)
        .await
        .map_err(|e| match e {
            StreamError::ShardNotFound { shard_id, .. } => KinesisError::ResourceNotFound(format!(
                "Could not find shard {shard_id} in stream {name} under account {}.",
                s.streams.account_id()
            )),
            e => e.into(),
        })?;
    Ok(json!({}))
}

async fn merge_shards(s: &KinesisService, req: &Value) -> R {
    let name = stream_name(req)?;
    let a = normalized_shard_id(s, text(req, "ShardToMerge").unwrap_or_default(), &name)?;
    let b = normalized_shard_id(
        s,
        text(req, "AdjacentShardToMerge").unwrap_or_default(),
        &name,
    )?;
    s.streams
        .merge_shards(&name, &a, &b)
        .await
        .map_err(|e| match e {
            StreamError::ShardNotFound { shard_id, .. } => KinesisError::ResourceNotFound(format!(
                "Could not find shard {shard_id} in stream {name} under account {}.",
                s.streams.account_id()
            )),
            e => e.into(),
        })?;
    Ok(json!({}))
}

async fn update_shard_count(s: &KinesisService, req: &Value) -> R {
    let name = stream_name(req)?;
    let target = integer(req, "TargetShardCount").unwrap_or_default().max(1) as u32;
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
    let name = stream_name(req)?;
    let tags = tags_from(req.get("Tags"));
    s.streams.get_active(&name)?;
    check_tag_characters(s, &name, &tags, true)?;
    s.streams.add_tags(&name, tags)?;
    Ok(json!({}))
}

/// The strings of a list member (the model has checked its type and contents).
fn string_list(req: &Value, field: &str) -> Vec<String> {
    req.get(field)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn remove_tags(s: &KinesisService, req: &Value) -> R {
    let name = stream_name(req)?;
    let keys = string_list(req, "TagKeys");
    s.streams.get_active(&name)?;
    let as_tags = keys.iter().map(|k| (k.clone(), String::new())).collect();
    check_tag_characters(s, &name, &as_tags, false)?;
    s.streams.remove_tags(&name, &keys)?;
    Ok(json!({}))
}

fn list_tags(s: &KinesisService, req: &Value) -> R {
    let start = text(req, "ExclusiveStartTagKey");
    let limit = integer(req, "Limit").unwrap_or(50).clamp(1, 50) as usize;
    let stream = s.streams.get(&stream_name(req)?)?;
    let tags: Vec<(String, String)> = stream
        .tags()
        .into_iter()
        .filter(|(k, _)| start.is_none_or(|st| k.as_str() > st))
        .collect();
    Ok(json!({
        "Tags": tags.iter().take(limit).map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>(),
        "HasMoreTags": tags.len() > limit,
    }))
}

fn retention(s: &KinesisService, req: &Value, increase: bool) -> R {
    let name = stream_name(req)?;
    let hours = integer(req, "RetentionPeriodHours").unwrap_or_default();
    s.streams
        .set_retention_hours(&name, hours.max(0) as u64, increase)?;
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

fn update_stream_mode(s: &KinesisService, req: &Value) -> R {
    let name = stream_name(req)?;
    let on_demand = req.pointer("/StreamModeDetails/StreamMode") == Some(&json!("ON_DEMAND"));
    s.streams.set_stream_mode(&name, on_demand)?;
    Ok(json!({}))
}

fn encryption(s: &KinesisService, req: &Value, start: bool) -> R {
    let name = stream_name(req)?;
    let key = start.then(|| text(req, "KeyId").unwrap_or_default().to_owned());
    s.streams.set_encryption(&name, key)?;
    Ok(json!({}))
}

fn monitoring(s: &KinesisService, req: &Value, enable: bool) -> R {
    let name = stream_name(req)?;
    let metrics = string_list(req, "ShardLevelMetrics");
    let (current, desired) = s.streams.set_shard_level_metrics(&name, &metrics, enable)?;
    let stream = s.streams.get(&name)?;
    Ok(json!({
        "StreamName": stream.name,
        "StreamARN": stream.arn,
        "CurrentShardLevelMetrics": current,
        "DesiredShardLevelMetrics": desired,
    }))
}

fn consumer_json(c: &Consumer) -> Value {
    json!({
        "ConsumerName": c.name,
        "ConsumerARN": c.arn,
        "ConsumerStatus": c.status,
        "ConsumerCreationTimestamp": seconds(c.created_ms),
    })
}

fn register_consumer(s: &KinesisService, req: &Value) -> R {
    let name = stream_name(req)?;
    let consumer = text(req, "ConsumerName").unwrap_or_default();
    let c = s.streams.register_consumer(&name, consumer)?;
    Ok(json!({ "Consumer": consumer_json(&c) }))
}

/// The stream a consumer request names by StreamARN, if it does.
fn consumer_stream(req: &Value) -> Option<String> {
    text(req, "StreamARN")
        .and_then(|a| a.split_once(":stream/"))
        .map(|(_, n)| n.to_owned())
}

fn describe_consumer(s: &KinesisService, req: &Value) -> R {
    let stream = consumer_stream(req);
    let (state, c) = s.streams.find_consumer(
        stream.as_deref(),
        text(req, "ConsumerName"),
        text(req, "ConsumerARN"),
    )?;
    let mut d = consumer_json(&c);
    d["StreamARN"] = json!(state.arn);
    Ok(json!({ "ConsumerDescription": d }))
}

fn list_consumers(s: &KinesisService, req: &Value) -> R {
    let stream = consumer_stream(req).unwrap_or_default();
    let max = integer(req, "MaxResults").unwrap_or(100).clamp(1, 10_000) as usize;
    let after = match text(req, "NextToken") {
        Some(t) => untoken(t)?["after"].as_str().map(str::to_owned),
        None => None,
    };
    let (_, list) = s.streams.consumers(&stream)?;
    let rest: Vec<&Consumer> = list
        .iter()
        .skip_while(|c| after.as_ref().is_some_and(|a| c.name != *a))
        .skip(usize::from(after.is_some()))
        .collect();
    let page = &rest[..rest.len().min(max)];
    let mut out = json!({"Consumers": page.iter().map(|c| consumer_json(c)).collect::<Vec<_>>()});
    if rest.len() > max
        && let Some(last) = page.last()
    {
        out["NextToken"] = json!(token(&json!({"after": last.name})));
    }
    Ok(out)
}

fn deregister_consumer(s: &KinesisService, req: &Value) -> R {
    let stream = consumer_stream(req);
    s.streams.deregister_consumer(
        stream.as_deref(),
        text(req, "ConsumerName"),
        text(req, "ConsumerARN"),
    )?;
    Ok(json!({}))
}
