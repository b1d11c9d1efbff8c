//! aws-sdk-kinesis (the Rust SDK) against a real `spillway serve`: a put/get round trip
//! and a reshard.

#![allow(clippy::unwrap_used)] // tests fail loudly on any surprise

mod common;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::{Credentials, Region};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::ShardIteratorType;
use common::*;

fn sdk(endpoint: &str) -> Client {
    let config = aws_sdk_kinesis::Config::builder()
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "test",
            "test",
            None,
            None,
            "spillway-tests",
        ))
        .build();
    Client::from_conf(config)
}

#[tokio::test]
async fn the_rust_sdk_puts_gets_and_reshards() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), None);
    let k = sdk(&s.base);

    k.create_stream()
        .stream_name("rust")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    let put = k
        .put_record()
        .stream_name("rust")
        .partition_key("p")
        .data(Blob::new(b"from rust".to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(put.shard_id(), "shardId-000000000000");
    let it = k
        .get_shard_iterator()
        .stream_name("rust")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap();
    let got = k
        .get_records()
        .shard_iterator(it.shard_iterator().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(got.records().len(), 1);
    assert_eq!(got.records()[0].data().as_ref(), b"from rust");
    assert_eq!(got.records()[0].sequence_number(), put.sequence_number());
    assert!(got.records()[0].approximate_arrival_timestamp().is_some());

    k.split_shard()
        .stream_name("rust")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key("170141183460469231731687303715884105728")
        .send()
        .await
        .unwrap();
    let shards = k.list_shards().stream_name("rust").send().await.unwrap();
    let ids: Vec<&str> = shards.shards().iter().map(|s| s.shard_id()).collect();
    assert_eq!(
        ids,
        [
            "shardId-000000000000",
            "shardId-000000000001",
            "shardId-000000000002"
        ]
    );
    assert!(
        shards.shards()[0]
            .sequence_number_range()
            .unwrap()
            .ending_sequence_number()
            .is_some()
    );
    assert_eq!(
        shards.shards()[2].parent_shard_id(),
        Some("shardId-000000000000")
    );
    // The closed parent, read to its end, points at its children.
    let got = k
        .get_records()
        .shard_iterator(got.next_shard_iterator().unwrap())
        .send()
        .await
        .unwrap();
    assert!(got.next_shard_iterator().is_none());
    assert_eq!(got.child_shards().len(), 2);

    let err = k
        .describe_stream()
        .stream_name("missing")
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_resource_not_found_exception());
}

/// Enhanced fan-out through the Rust SDK: a consumer subscribes and the SDK's own
/// event-stream decoder reads the records pushed to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_sdk_subscribes_to_a_shard() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), None);
    let k = sdk(&s.base);
    k.create_stream()
        .stream_name("fanout")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    let consumer = active_consumer(&k, "fanout", "rust-app").await;
    for i in 0..3 {
        k.put_record()
            .stream_name("fanout")
            .partition_key("p")
            .data(Blob::new(format!("pushed {i}").into_bytes()))
            .send()
            .await
            .unwrap();
    }
    let mut sub = common::subscribe_from_start(&k, &consumer).await;
    let got = subscribed_records(&mut sub, 3).await;
    assert_eq!(got, ["pushed 0", "pushed 1", "pushed 2"]);

    // A subscription holds its response open for five minutes; stopping the server ends
    // it instead of waiting for it.
    let mut s = s;
    let stopping = std::time::Instant::now();
    let status = tokio::task::block_in_place(|| s.terminate());
    assert!(status.success(), "{}", s.stderr());
    assert!(
        stopping.elapsed() < std::time::Duration::from_secs(60),
        "SIGTERM waited {:?} for the subscription",
        stopping.elapsed()
    );
    assert!(matches!(sub.event_stream.recv().await, Ok(None) | Err(_)));
}
