//! The Kinesis API in AWS CBOR 1.1, as the Java SDK v2 sends it (no JVM client is
//! available offline, so the requests are built here byte for byte in that shape:
//! blobs as byte strings, timestamps as tag 1 over epoch milliseconds).

#![allow(clippy::unwrap_used)] // tests fail loudly on any surprise

mod common;

use ciborium::value::Value as Cbor;
use common::*;

fn text(s: &str) -> Cbor {
    Cbor::Text(s.into())
}

fn map(pairs: Vec<(&str, Cbor)>) -> Cbor {
    Cbor::Map(pairs.into_iter().map(|(k, v)| (text(k), v)).collect())
}

fn get<'a>(m: &'a Cbor, key: &str) -> &'a Cbor {
    let Cbor::Map(pairs) = m else {
        panic!("not a map: {m:?}")
    };
    &pairs
        .iter()
        .find(|(k, _)| *k == text(key))
        .unwrap_or_else(|| panic!("no {key} in {m:?}"))
        .1
}

async fn call(c: &reqwest::Client, s: &Server, action: &str, body: Cbor) -> (u16, String, Cbor) {
    let mut bytes = Vec::new();
    ciborium::ser::into_writer(&body, &mut bytes).unwrap();
    let r = c
        .post(s.url("/"))
        .header("content-type", "application/x-amz-cbor-1.1")
        .header("x-amz-target", format!("Kinesis_20131202.{action}"))
        .header("x-amz-date", "20261125T120000Z")
        .header("authorization", "AWS4-HMAC-SHA256 Credential=test/20261125/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=0")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    let body = r.bytes().await.unwrap();
    (
        status,
        ct,
        ciborium::de::from_reader(body.as_ref()).unwrap(),
    )
}

#[tokio::test]
async fn a_java_sdk_shaped_cbor_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), None);
    let c = client();
    let before_ms = spillway::stream::now_ms() - 1;
    let data: Vec<u8> = (0..=255u8).collect();
    let (status, ct, put) = call(
        &c,
        &s,
        "PutRecord",
        map(vec![
            ("StreamName", text("example-stream")),
            ("Data", Cbor::Bytes(data.clone())),
            ("PartitionKey", text("java")),
        ]),
    )
    .await;
    assert_eq!((status, ct.as_str()), (200, "application/x-amz-cbor-1.1"));
    let Cbor::Text(seq) = get(&put, "SequenceNumber") else {
        panic!()
    };
    assert_eq!(seq.len(), 56);

    // AT_TIMESTAMP with the timestamp as the Java SDK writes it.
    let (status, _, it) = call(
        &c,
        &s,
        "GetShardIterator",
        map(vec![
            ("StreamName", text("example-stream")),
            ("ShardId", text("shardId-000000000000")),
            ("ShardIteratorType", text("AT_TIMESTAMP")),
            (
                "Timestamp",
                Cbor::Tag(1, Box::new(Cbor::Integer((before_ms as i64).into()))),
            ),
        ]),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, got) = call(
        &c,
        &s,
        "GetRecords",
        map(vec![("ShardIterator", get(&it, "ShardIterator").clone())]),
    )
    .await;
    assert_eq!(status, 200);
    let Cbor::Array(records) = get(&got, "Records") else {
        panic!()
    };
    assert_eq!(records.len(), 1);
    assert_eq!(get(&records[0], "Data"), &Cbor::Bytes(data));
    assert_eq!(get(&records[0], "PartitionKey"), &text("java"));
    let Cbor::Tag(1, ms) = get(&records[0], "ApproximateArrivalTimestamp") else {
        panic!("timestamp is not tag 1")
    };
    let Cbor::Integer(ms) = **ms else {
        panic!("timestamp is not integer milliseconds")
    };
    let ms: i128 = ms.into();
    assert!(ms as u64 >= before_ms && ms as u64 <= spillway::stream::now_ms());

    // Errors come back in CBOR too.
    let (status, ct, err) = call(
        &c,
        &s,
        "DescribeStream",
        map(vec![("StreamName", text("nope"))]),
    )
    .await;
    assert_eq!((status, ct.as_str()), (400, "application/x-amz-cbor-1.1"));
    assert_eq!(get(&err, "__type"), &text("ResourceNotFoundException"));
}
