//! A stream engine reached through Kinesis' API: what a worker needs of it (create a
//! stream, list its shards, append, read from a position). The engine assigns sequence
//! numbers; a worker only ever carries them back.

use base64::Engine;
use bytes::Bytes;
use serde_json::json;

use super::{AwsJsonClient, Endpoint, RemoteError};

/// One shard as ListShards describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteShard {
    pub shard_id: String,
    /// The parent and adjacent parent, for shards born of a reshard.
    pub parents: Vec<String>,
    /// Set when the shard is closed: no record comes after this one.
    pub ending_sequence_number: Option<String>,
}

/// One record read back.
#[derive(Debug, Clone)]
pub struct RemoteRecord {
    pub sequence_number: String,
    pub partition_key: String,
    pub data: Bytes,
    pub arrival_ms: u64,
}

/// One GetRecords answer.
#[derive(Debug)]
pub struct RemoteRead {
    pub records: Vec<RemoteRecord>,
    /// None when a closed shard has been read to its end.
    pub next_iterator: Option<String>,
    pub millis_behind_latest: u64,
}

/// Where a read begins, as GetShardIterator's types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IteratorStart {
    TrimHorizon,
    Latest,
    AfterSequenceNumber(String),
    /// Unix epoch milliseconds.
    AtTimestamp(u64),
}

/// A client of one Kinesis-API endpoint.
#[derive(Debug, Clone)]
pub struct KinesisClient {
    api: AwsJsonClient,
}

impl KinesisClient {
    /// A client of the engine at `endpoint`, signing for its region or else `region`.
    pub fn new(endpoint: &Endpoint, region: &str) -> Result<Self, RemoteError> {
        Ok(Self {
            api: AwsJsonClient::new(
                endpoint,
                "kinesis",
                "Kinesis_20131202",
                "application/x-amz-json-1.1",
                region,
            )?,
        })
    }

    /// The raw client, for forwarding clients' requests.
    pub fn api(&self) -> &AwsJsonClient {
        &self.api
    }

    /// Creates the stream unless it exists, and waits until it is ACTIVE (or UPDATING):
    /// workers started together all ask, one creates. Returns the stream's ARN.
    pub async fn ensure_stream(&self, name: &str, shard_count: u32) -> Result<String, RemoteError> {
        self.api
            .create_and_wait(
                &format!("stream {name} ({shard_count} shards)"),
                (
                    "CreateStream",
                    &json!({"StreamName": name, "ShardCount": shard_count}),
                ),
                ("DescribeStreamSummary", &json!({"StreamName": name})),
                |d| {
                    let summary = &d["StreamDescriptionSummary"];
                    matches!(
                        summary["StreamStatus"].as_str(),
                        Some("ACTIVE" | "UPDATING")
                    )
                    .then(|| summary["StreamARN"].as_str().unwrap_or_default().to_owned())
                },
            )
            .await
    }

    /// Every shard of the stream, closed ones included.
    pub async fn list_shards(&self, stream: &str) -> Result<Vec<RemoteShard>, RemoteError> {
        let mut shards = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let body = match &next {
                Some(token) => json!({"NextToken": token}),
                None => json!({"StreamName": stream}),
            };
            let page = self.api.call_retrying("ListShards", &body, 5).await?;
            for s in page["Shards"].as_array().into_iter().flatten() {
                let text = |k: &str| s[k].as_str().map(str::to_owned);
                shards.push(RemoteShard {
                    shard_id: text("ShardId").unwrap_or_default(),
                    parents: ["ParentShardId", "AdjacentParentShardId"]
                        .iter()
                        .filter_map(|k| text(k))
                        .collect(),
                    ending_sequence_number: s["SequenceNumberRange"]["EndingSequenceNumber"]
                        .as_str()
                        .map(str::to_owned),
                });
            }
            next = page["NextToken"].as_str().map(str::to_owned);
            if next.is_none() {
                return Ok(shards);
            }
        }
    }

    /// Appends one record; the engine's answer (shard id, sequence number) is the
    /// acknowledgement. Not retried: a retry after a lost answer would append twice.
    pub async fn put_record(
        &self,
        stream: &str,
        partition_key: &str,
        data: &[u8],
    ) -> Result<(String, String), RemoteError> {
        let answer = self
            .api
            .call(
                "PutRecord",
                &json!({
                    "StreamName": stream,
                    "PartitionKey": partition_key,
                    "Data": base64::engine::general_purpose::STANDARD.encode(data),
                }),
            )
            .await?;
        match (
            answer["ShardId"].as_str(),
            answer["SequenceNumber"].as_str(),
        ) {
            (Some(shard), Some(seq)) => Ok((shard.to_owned(), seq.to_owned())),
            _ => Err(RemoteError::Decode {
                endpoint: self.api.endpoint().to_owned(),
                message: format!("PutRecord answered {answer}"),
            }),
        }
    }

    /// Appends records in one PutRecords call (at most 500); per record, its (shard id,
    /// sequence number) or the engine's refusal of it. Not retried, as PutRecord.
    pub async fn put_records(
        &self,
        stream: &str,
        records: &[(String, Bytes)],
    ) -> Result<Vec<Result<(String, String), RemoteError>>, RemoteError> {
        let body = json!({
            "StreamName": stream,
            "Records": records
                .iter()
                .map(|(pk, data)| json!({
                    "PartitionKey": pk,
                    "Data": base64::engine::general_purpose::STANDARD.encode(data),
                }))
                .collect::<Vec<_>>(),
        });
        let answer = self.api.call("PutRecords", &body).await?;
        let results = answer["Records"].as_array().cloned().unwrap_or_default();
        if results.len() != records.len() {
            return Err(RemoteError::Decode {
                endpoint: self.api.endpoint().to_owned(),
                message: format!(
                    "PutRecords answered {} results for {} records",
                    results.len(),
                    records.len()
                ),
            });
        }
        Ok(results
            .iter()
            .map(
                |r| match (r["ShardId"].as_str(), r["SequenceNumber"].as_str()) {
                    (Some(shard), Some(seq)) => Ok((shard.to_owned(), seq.to_owned())),
                    _ => Err(RemoteError::Service {
                        endpoint: self.api.endpoint().to_owned(),
                        status: 200,
                        kind: r["ErrorCode"]
                            .as_str()
                            .unwrap_or("InternalFailure")
                            .to_owned(),
                        message: r["ErrorMessage"].as_str().unwrap_or_default().to_owned(),
                    }),
                },
            )
            .collect())
    }

    /// A shard iterator at `start`.
    pub async fn shard_iterator(
        &self,
        stream: &str,
        shard_id: &str,
        start: &IteratorStart,
    ) -> Result<String, RemoteError> {
        let mut body = json!({"StreamName": stream, "ShardId": shard_id});
        match start {
            IteratorStart::TrimHorizon => body["ShardIteratorType"] = "TRIM_HORIZON".into(),
            IteratorStart::Latest => body["ShardIteratorType"] = "LATEST".into(),
            IteratorStart::AfterSequenceNumber(seq) => {
                body["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER".into();
                body["StartingSequenceNumber"] = seq.as_str().into();
            }
            IteratorStart::AtTimestamp(ms) => {
                body["ShardIteratorType"] = "AT_TIMESTAMP".into();
                body["Timestamp"] = (*ms as f64 / 1000.0).into();
            }
        }
        let answer = self.api.call_retrying("GetShardIterator", &body, 5).await?;
        answer["ShardIterator"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| RemoteError::Decode {
                endpoint: self.api.endpoint().to_owned(),
                message: format!("GetShardIterator answered {answer}"),
            })
    }

    /// Up to `limit` records from `iterator`.
    pub async fn get_records(&self, iterator: &str, limit: u32) -> Result<RemoteRead, RemoteError> {
        let answer = self
            .api
            .call_retrying(
                "GetRecords",
                &json!({"ShardIterator": iterator, "Limit": limit.clamp(1, 10_000)}),
                3,
            )
            .await?;
        let mut records = Vec::new();
        for r in answer["Records"].as_array().into_iter().flatten() {
            let data = base64::engine::general_purpose::STANDARD
                .decode(r["Data"].as_str().unwrap_or_default())
                .map_err(|e| RemoteError::Decode {
                    endpoint: self.api.endpoint().to_owned(),
                    message: format!("a record's Data is not base64: {e}"),
                })?;
            records.push(RemoteRecord {
                sequence_number: r["SequenceNumber"].as_str().unwrap_or_default().to_owned(),
                partition_key: r["PartitionKey"].as_str().unwrap_or_default().to_owned(),
                data: Bytes::from(data),
                arrival_ms: r["ApproximateArrivalTimestamp"]
                    .as_f64()
                    .map_or(0, |s| (s * 1000.0) as u64),
            });
        }
        Ok(RemoteRead {
            records,
            next_iterator: answer["NextShardIterator"].as_str().map(str::to_owned),
            millis_behind_latest: answer["MillisBehindLatest"].as_u64().unwrap_or(0),
        })
    }
}

/// Reads the scheme-less part of `kinesis+http://HOST:PORT`.
pub fn host_port(rest: &str) -> Option<&str> {
    let rest = rest.trim_end_matches('/');
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}

/// At most this many records in one PutRecords (Kinesis' limit).
const PUT_RECORDS_MAX: usize = 500;
/// At most this many bytes of data and keys in one PutRecords (under Kinesis' 5 MiB).
const PUT_RECORDS_MAX_BYTES: usize = 4 * 1024 * 1024;
/// PutRecords calls in flight at once per stream.
const PUTS_IN_FLIGHT: usize = 4;

/// One append waiting for its PutRecords.
struct PendingPut {
    partition_key: String,
    data: Bytes,
    reply: tokio::sync::oneshot::Sender<Result<(String, String), RemoteError>>,
}

/// Group commit for a worker's ingest route: concurrent appends to one stream share
/// PutRecords calls (up to 500 records), at most [`PUTS_IN_FLIGHT`] calls at once;
/// while they are in flight, new appends gather for the next. Each append still gets
/// its own answer: its sequence number, or the engine's refusal of its record.
#[derive(Debug, Clone)]
pub struct PutBatcher {
    tx: tokio::sync::mpsc::Sender<PendingPut>,
}

impl std::fmt::Debug for PendingPut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingPut").finish_non_exhaustive()
    }
}

impl PutBatcher {
    /// Starts the batcher of `stream` (on the current tokio runtime).
    pub fn start(client: KinesisClient, stream: &str) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<PendingPut>(PUT_RECORDS_MAX * 8);
        let stream = stream.to_owned();
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(PUTS_IN_FLIGHT));
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let Ok(slot) = std::sync::Arc::clone(&slots).acquire_owned().await else {
                    return;
                };
                // Everything that arrived while the calls in flight ran goes now.
                let mut bytes = first.data.len() + first.partition_key.len();
                let mut batch = vec![first];
                while batch.len() < PUT_RECORDS_MAX && bytes < PUT_RECORDS_MAX_BYTES {
                    match rx.try_recv() {
                        Ok(next) => {
                            bytes += next.data.len() + next.partition_key.len();
                            batch.push(next);
                        }
                        Err(_) => break,
                    }
                }
                let (client, stream) = (client.clone(), stream.clone());
                tokio::spawn(async move {
                    let records: Vec<(String, Bytes)> = batch
                        .iter()
                        .map(|p| (p.partition_key.clone(), p.data.clone()))
                        .collect();
                    match client.put_records(&stream, &records).await {
                        Ok(results) => {
                            for (p, r) in batch.into_iter().zip(results) {
                                let _ = p.reply.send(r);
                            }
                        }
                        Err(e) => {
                            for p in batch {
                                let _ = p.reply.send(Err(e.clone()));
                            }
                        }
                    }
                    drop(slot);
                });
            }
        });
        Self { tx }
    }

    /// Appends one record; resolves with the engine's answer for it.
    pub async fn put(
        &self,
        partition_key: String,
        data: Bytes,
    ) -> Result<(String, String), RemoteError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let closed = || RemoteError::Transport {
            endpoint: String::from("put batcher"),
            message: "spillway is stopping".into(),
        };
        self.tx
            .send(PendingPut {
                partition_key,
                data,
                reply,
            })
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}
