//! Arbitrary requests to a real spillway get a well-formed answer: a success, or an
//! AWS-shaped error (`__type` and `message`) that is never a 500, and the server stays
//! up. The requests are generated (proptest): every Kinesis and DynamoDB action the
//! server knows, bodies built from the parameter names those actions read with values
//! of any JSON shape, and raw bytes.

#![allow(clippy::unwrap_used)]
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use proptest::prelude::*;
use serde_json::Value;

const DYNAMODB: &[&str] = &[
    "PutItem",
    "GetItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchWriteItem",
    "BatchGetItem",
    "TransactWriteItems",
    "TransactGetItems",
    "CreateTable",
    "DescribeTable",
    "ListTables",
    "UpdateTable",
];
const KINESIS: &[&str] = &[
    "PutRecord",
    "PutRecords",
    "GetShardIterator",
    "GetRecords",
    "DescribeStream",
    "DescribeStreamSummary",
    "ListShards",
    "ListStreams",
    "CreateStream",
    "SplitShard",
    "MergeShards",
    "AddTagsToStream",
    "IncreaseStreamRetentionPeriod",
];
const KEYS: &[&str] = &[
    "TableName",
    "Item",
    "Key",
    "Keys",
    "ConditionExpression",
    "FilterExpression",
    "KeyConditionExpression",
    "UpdateExpression",
    "ProjectionExpression",
    "ExpressionAttributeNames",
    "ExpressionAttributeValues",
    "RequestItems",
    "TransactItems",
    "KeySchema",
    "AttributeDefinitions",
    "Limit",
    "ExclusiveStartKey",
    "ReturnValues",
    "StreamName",
    "Data",
    "PartitionKey",
    "ExplicitHashKey",
    "Records",
    "ShardId",
    "ShardIteratorType",
    "ShardIterator",
    "StartingSequenceNumber",
    "ShardCount",
    "ShardToSplit",
    "NewStartingHashKey",
    "Tags",
];

/// JSON values of any shape, with DynamoDB's type tags among the keys.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,40}".prop_map(Value::String),
        prop::sample::select(vec![
            "#a = :v",
            "attribute_exists(ID)",
            "SET a = :v",
            "ID = :v AND b > :w",
            "a.b[1]",
            "size(a) > :v",
            "begins_with(a, :v)",
            "a IN (:v, :w)",
            "shardId-000000000000",
            "TRIM_HORIZON",
            "AT_SEQUENCE_NUMBER",
            "example-table",
            "example-stream",
            "ID",
            "HASH",
            "RANGE",
            "S",
            "aGVsbG8=",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "S",
                        "N",
                        "B",
                        "SS",
                        "NS",
                        "BS",
                        "M",
                        "L",
                        "NULL",
                        "BOOL",
                        "ID",
                        "Message",
                        ":v",
                        ":w",
                        "#a",
                        "AttributeName",
                        "KeyType",
                        "AttributeType",
                        "Put",
                        "Update",
                        "Delete",
                        "PutRequest",
                        "Item",
                        "Data",
                        "PartitionKey",
                    ]),
                    inner
                ),
                0..5
            )
            .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

fn request_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop::collection::vec((prop::sample::select(KEYS), json_value()), 0..6).prop_map(
            |kv| {
                let map: serde_json::Map<String, Value> =
                    kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                serde_json::to_vec(&Value::Object(map)).unwrap()
            }
        ),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ]
}

/// Sends one request on a fresh connection; returns status and body.
fn send(addr: &str, target: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let content_type = if target.starts_with("Kinesis") {
        "application/x-amz-json-1.1"
    } else {
        "application/x-amz-json-1.0"
    };
    let head = format!(
        "POST / HTTP/1.1\r\nhost: {addr}\r\nx-amz-target: {target}\r\ncontent-type: {content_type}\r\n\
         authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/x/aws4_request, SignedHeaders=host, Signature=00\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(body).unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let at = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    (status, out[at..].to_vec())
}

#[test]
fn arbitrary_aws_requests_get_well_formed_answers() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), None);
    let addr = s.base.trim_start_matches("http://").to_owned();
    let actions: Vec<String> = DYNAMODB
        .iter()
        .map(|a| format!("DynamoDB_20120810.{a}"))
        .chain(KINESIS.iter().map(|a| format!("Kinesis_20131202.{a}")))
        .collect();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let result = runner.run(
        &(prop::sample::select(actions), request_body()),
        |(target, body)| {
            let (status, answer) = send(&addr, &target, &body);
            prop_assert!(
                status < 500 || status == 503,
                "{target} {} -> {status} {}",
                String::from_utf8_lossy(&body),
                String::from_utf8_lossy(&answer)
            );
            if status >= 400 {
                let v: Value = serde_json::from_slice(&answer).map_err(|e| {
                    TestCaseError::fail(format!(
                        "{target}: error body is not JSON ({e}): {}",
                        String::from_utf8_lossy(&answer)
                    ))
                })?;
                prop_assert!(v["__type"].is_string(), "{target}: no __type in {v}");
            }
            Ok(())
        },
    );
    if let Err(e) = result {
        panic!("{e}\n--- server log ---\n{}", s.stderr());
    }
    // Still serving.
    let (status, _) = send(&addr, "DynamoDB_20120810.ListTables", b"{}");
    assert_eq!(status, 200);
}
