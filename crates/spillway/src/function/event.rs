//! Lambda's Kinesis event and the partial-batch response, as our own serde types.
//!
//! Field names, order and value shapes follow what Lambda sends: `approximateArrivalTimestamp`
//! is epoch seconds as a JSON number (with milliseconds as the fraction), and there is no
//! `encryptionType` for unencrypted streams.

use serde::{Deserialize, Serialize};

/// The event a function receives: `{"Records": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KinesisEvent {
    #[serde(rename = "Records")]
    pub records: Vec<KinesisEventRecord>,
}

/// One record of the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KinesisEventRecord {
    pub kinesis: KinesisRecordData,
    /// `aws:kinesis`.
    pub event_source: String,
    /// `1.0`.
    pub event_version: String,
    /// `shardId-...:sequenceNumber`.
    #[serde(rename = "eventID")]
    pub event_id: String,
    /// `aws:kinesis:record`.
    pub event_name: String,
    pub invoke_identity_arn: String,
    pub aws_region: String,
    #[serde(rename = "eventSourceARN")]
    pub event_source_arn: String,
}

/// The `kinesis` part of a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KinesisRecordData {
    /// `1.0`.
    pub kinesis_schema_version: String,
    pub partition_key: String,
    pub sequence_number: String,
    /// The record's data, base64.
    pub data: String,
    /// Epoch seconds, fraction for milliseconds.
    pub approximate_arrival_timestamp: f64,
}

/// `{"batchItemFailures": [{"itemIdentifier": "<sequence number>"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    pub batch_item_failures: Vec<BatchItemFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchItemFailure {
    pub item_identifier: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_lambda_does() {
        let e = KinesisEvent {
            records: vec![KinesisEventRecord {
                kinesis: KinesisRecordData {
                    kinesis_schema_version: "1.0".into(),
                    partition_key: "1".into(),
                    sequence_number: "49590338271490256608559692538361571095921575989136588898"
                        .into(),
                    data: "SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==".into(),
                    approximate_arrival_timestamp: 1545084650.987,
                },
                event_source: "aws:kinesis".into(),
                event_version: "1.0".into(),
                event_id:
                    "shardId-000000000006:49590338271490256608559692538361571095921575989136588898"
                        .into(),
                event_name: "aws:kinesis:record".into(),
                invoke_identity_arn: "arn:aws:iam::123456789012:role/lambda-role".into(),
                aws_region: "us-east-2".into(),
                event_source_arn: "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream"
                    .into(),
            }],
        };
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(
            text,
            r#"{"Records":[{"kinesis":{"kinesisSchemaVersion":"1.0","partitionKey":"1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","data":"SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==","approximateArrivalTimestamp":1545084650.987},"eventSource":"aws:kinesis","eventVersion":"1.0","eventID":"shardId-000000000006:49590338271490256608559692538361571095921575989136588898","eventName":"aws:kinesis:record","invokeIdentityArn":"arn:aws:iam::123456789012:role/lambda-role","awsRegion":"us-east-2","eventSourceARN":"arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream"}]}"#
        );
    }
}
