//! Kinesis' wire fidelity, in our own words: the order of AWS's checks (protocol, body,
//! operation, signature, model), the model layer's messages, shard-id forms, and the
//! control-plane actions beyond streams and shards (stream mode, encryption, enhanced
//! monitoring, enhanced fan-out consumers), against a real spillway process.

#![allow(clippy::unwrap_used)] // tests fail loudly on any surprise

mod common;

use common::*;
use serde_json::{Value, json};

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=test/20261125/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=0";

/// A signed-looking JSON 1.1 request; returns (status, headers, body text).
async fn raw(
    c: &reqwest::Client,
    s: &Server,
    target: &str,
    content_type: Option<&str>,
    body: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut r = c
        .post(s.url("/"))
        .header("x-amz-target", target)
        .header("x-amz-date", "20261125T120000Z")
        .header("authorization", AUTH)
        .body(body.to_owned());
    if let Some(ct) = content_type {
        r = r.header("content-type", ct);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

async fn call(c: &reqwest::Client, s: &Server, action: &str, body: Value) -> (u16, Value) {
    let (status, _, text) = raw(
        c,
        s,
        &format!("Kinesis_20131202.{action}"),
        Some("application/x-amz-json-1.1"),
        &body.to_string(),
    )
    .await;
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, v)
}

async fn wait_active(c: &reqwest::Client, s: &Server, name: &str) {
    wait_until(10, "stream ACTIVE", || async {
        let (_, v) = call(c, s, "DescribeStreamSummary", json!({"StreamName": name})).await;
        v["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_front_door_checks_in_aws_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), None);
    let c = client();

    // A body that is not JSON: the type alone, before the operation is looked at.
    let (st, h, body) = raw(
        &c,
        &s,
        "Nope.Nope",
        Some("application/x-amz-json-1.1"),
        "{x",
    )
    .await;
    assert_eq!(
        (st, body.as_str()),
        (400, r#"{"__type":"SerializationException"}"#)
    );
    assert!(h.contains_key("x-amzn-requestid") && h.contains_key("x-amz-id-2"));
    // An unknown operation, then an empty body.
    let (st, _, body) = raw(
        &c,
        &s,
        "Kinesis_20131202.Nope",
        Some("application/x-amz-json-1.1"),
        "{}",
    )
    .await;
    assert_eq!(
        (st, body.as_str()),
        (400, r#"{"__type":"UnknownOperationException"}"#)
    );
    let (st, _, body) = raw(
        &c,
        &s,
        "Kinesis_20131202.ListStreams",
        Some("application/x-amz-json-1.1"),
        "",
    )
    .await;
    assert_eq!(
        (st, body.as_str()),
        (400, r#"{"__type":"SerializationException"}"#)
    );
    // No Content-Type: answered in CBOR.
    let (_, h, _) = raw(&c, &s, "Kinesis_20131202.Nope", None, "").await;
    assert_eq!(h["content-type"], "application/x-amz-cbor-1.1");
    // A form post names no operation: 403 in XML.
    let (st, _, body) = raw(&c, &s, "", Some("application/x-www-form-urlencoded"), "a=b").await;
    assert_eq!(st, 403);
    assert!(body.starts_with("<AccessDeniedException>"), "{body}");
    // CORS preflight.
    let r = c
        .request(reqwest::Method::OPTIONS, s.url("/"))
        .header("origin", "http://app.example")
        .header("access-control-request-headers", "x-amz-target")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(r.headers()["access-control-allow-headers"], "x-amz-target");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_model_layer_answers_with_aws_messages() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), None);
    let c = client();

    // A wrong type: SerializationException, message under "Message".
    let (st, v) = call(&c, &s, "DescribeStream", json!({"StreamName": 7})).await;
    assert_eq!(st, 400);
    assert_eq!(
        v,
        json!({"__type": "SerializationException", "Message": "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String"})
    );
    let (_, v) = call(
        &c,
        &s,
        "PutRecord",
        json!({"StreamName": "s", "PartitionKey": "k", "Data": "abc"}),
    )
    .await;
    assert_eq!(
        v["Message"],
        "'abc' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 3"
    );
    // Every constraint, in member order, before the stream is looked up.
    let (_, v) = call(
        &c,
        &s,
        "RemoveTagsFromStream",
        json!({"StreamName": "no such!", "TagKeys": []}),
    )
    .await;
    assert_eq!(v["__type"], "ValidationException");
    assert_eq!(
        v["message"],
        "2 validation errors detected: Value 'no such!' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value '[]' at 'tagKeys' failed to satisfy constraint: Member must have length greater than or equal to 1"
    );
    // Neither StreamName nor StreamARN: the name is reported missing.
    let (_, v) = call(&c, &s, "DescribeStreamSummary", json!({})).await;
    assert_eq!(
        v["message"],
        "1 validation error detected: Value null at 'streamName' failed to satisfy constraint: Member must not be null"
    );
    // Out-of-range values the model cannot see are refused by the action.
    let (_, v) = call(
        &c,
        &s,
        "PutRecord",
        json!({"StreamName": "example-stream", "PartitionKey": "k", "Data": "", "ExplicitHashKey": "340282366920938463463374607431768211456"}),
    )
    .await;
    assert_eq!(v["__type"], "InvalidArgumentException");
    let tags: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("t{i}"), json!("v"))).collect();
    let (_, v) = call(
        &c,
        &s,
        "AddTagsToStream",
        json!({"StreamName": "example-stream", "Tags": tags}),
    )
    .await;
    assert_eq!(v["__type"], "InvalidArgumentException");
    let (_, v) = call(
        &c,
        &s,
        "AddTagsToStream",
        json!({"StreamName": "example-stream", "Tags": {"a;b": "1"}}),
    )
    .await;
    assert_eq!(v["__type"], "InvalidArgumentException");
}

#[tokio::test(flavor = "multi_thread")]
async fn shard_ids_are_read_in_any_form_and_normalised() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), None);
    let c = client();
    for form in ["shardId-000000000000", "shardId-0", "shard-0", "x-0", "0"] {
        let (st, v) = call(
            &c,
            &s,
            "GetShardIterator",
            json!({"StreamName": "example-stream", "ShardId": form, "ShardIteratorType": "LATEST"}),
        )
        .await;
        assert_eq!(st, 200, "{form}: {v}");
    }
    let (_, v) = call(
        &c,
        &s,
        "GetShardIterator",
        json!({"StreamName": "example-stream", "ShardId": "x-7", "ShardIteratorType": "LATEST"}),
    )
    .await;
    assert_eq!(
        v["message"],
        "Shard shardId-000000000007 in stream example-stream under account 000000000000 does not exist"
    );
    let (_, v) = call(
        &c,
        &s,
        "GetShardIterator",
        json!({"StreamName": "example-stream", "ShardId": "abc", "ShardIteratorType": "LATEST"}),
    )
    .await;
    assert_eq!(
        v["message"],
        "Could not find shard abc in stream example-stream under account 000000000000."
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_settings_and_consumers_are_kept_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/example-stream";
    {
        let s = Server::start(&data, None);
        let c = client();
        // Void operations answer an empty body.
        let (st, v) = call(&c, &s, "StartStreamEncryption", json!({"StreamName": "example-stream", "EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"})).await;
        assert_eq!((st, v), (200, Value::Null));
        let (_, v) = call(&c, &s, "EnableEnhancedMonitoring", json!({"StreamName": "example-stream", "ShardLevelMetrics": ["IncomingBytes", "OutgoingRecords"]})).await;
        assert_eq!(v["CurrentShardLevelMetrics"], json!([]));
        assert_eq!(
            v["DesiredShardLevelMetrics"],
            json!(["IncomingBytes", "OutgoingRecords"])
        );
        let (_, v) = call(
            &c,
            &s,
            "RegisterStreamConsumer",
            json!({"StreamARN": arn, "ConsumerName": "app"}),
        )
        .await;
        assert_eq!(v["Consumer"]["ConsumerName"], "app");
        let consumer_arn = v["Consumer"]["ConsumerARN"].as_str().unwrap().to_owned();
        assert!(
            consumer_arn.starts_with(&format!("{arn}/consumer/app:")),
            "{consumer_arn}"
        );
        let (_, v) = call(
            &c,
            &s,
            "RegisterStreamConsumer",
            json!({"StreamARN": arn, "ConsumerName": "app"}),
        )
        .await;
        assert_eq!(v["__type"], "ResourceInUseException");
        call(
            &c,
            &s,
            "RegisterStreamConsumer",
            json!({"StreamARN": arn, "ConsumerName": "gone"}),
        )
        .await;
        let (st, _) = call(
            &c,
            &s,
            "DeregisterStreamConsumer",
            json!({"ConsumerARN": format!("{arn}/consumer/nope:1")}),
        )
        .await;
        assert_eq!(st, 400);
        let (st, _) = call(
            &c,
            &s,
            "DeregisterStreamConsumer",
            json!({"StreamARN": arn, "ConsumerName": "gone"}),
        )
        .await;
        assert_eq!(st, 200);
        let (_, v) = call(
            &c,
            &s,
            "UpdateStreamMode",
            json!({"StreamARN": arn, "StreamModeDetails": {"StreamMode": "ON_DEMAND"}}),
        )
        .await;
        assert_eq!(v, Value::Null);
        wait_active(&c, &s, "example-stream").await;
        let (_, v) = call(
            &c,
            &s,
            "DescribeStreamConsumer",
            json!({"ConsumerARN": consumer_arn}),
        )
        .await;
        assert_eq!(v["ConsumerDescription"]["ConsumerStatus"], "ACTIVE");
        assert_eq!(v["ConsumerDescription"]["StreamARN"], arn);
    }
    let s = Server::start(&data, None);
    let c = client();
    let (_, v) = call(
        &c,
        &s,
        "DescribeStreamSummary",
        json!({"StreamName": "example-stream"}),
    )
    .await;
    let d = &v["StreamDescriptionSummary"];
    assert_eq!(d["StreamModeDetails"]["StreamMode"], "ON_DEMAND");
    assert_eq!(d["EncryptionType"], "KMS");
    assert_eq!(d["KeyId"], "alias/aws/kinesis");
    assert_eq!(
        d["EnhancedMonitoring"][0]["ShardLevelMetrics"],
        json!(["IncomingBytes", "OutgoingRecords"])
    );
    assert_eq!(d["ConsumerCount"], 1);
    let (_, v) = call(&c, &s, "ListStreamConsumers", json!({"StreamARN": arn})).await;
    let names: Vec<&str> = v["Consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["ConsumerName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app"]);
    let (_, v) = call(&c, &s, "ListStreams", json!({})).await;
    assert_eq!(
        v["StreamSummaries"][0]["StreamModeDetails"]["StreamMode"],
        "ON_DEMAND"
    );
    call(&c, &s, "StopStreamEncryption", json!({"StreamName": "example-stream", "EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"})).await;
    let (_, v) = call(
        &c,
        &s,
        "DisableEnhancedMonitoring",
        json!({"StreamName": "example-stream", "ShardLevelMetrics": ["ALL"]}),
    )
    .await;
    assert_eq!(v["DesiredShardLevelMetrics"], json!([]));
    let (_, v) = call(
        &c,
        &s,
        "DescribeStream",
        json!({"StreamName": "example-stream"}),
    )
    .await;
    assert_eq!(v["StreamDescription"]["EncryptionType"], "NONE");
}
