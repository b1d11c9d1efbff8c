//! aws-sdk-dynamodb (the Rust SDK) against a real `spillway serve`.

#![allow(clippy::unwrap_used)] // tests fail loudly on any surprise

mod common;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::types::AttributeValue;
use common::*;

#[tokio::test]
async fn the_rust_sdk_writes_reads_and_queries() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), None);
    let config = aws_sdk_dynamodb::Config::builder()
        .endpoint_url(&s.base)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "test",
            "test",
            None,
            None,
            "spillway-tests",
        ))
        .build();
    let db = Client::from_conf(config);

    db.put_item()
        .table_name("example-table")
        .item("ID", AttributeValue::S("rust-1".into()))
        .item("Message", AttributeValue::S("from the Rust SDK".into()))
        .item(
            "n",
            AttributeValue::N("12345678901234567890123456789012345678".into()),
        )
        .send()
        .await
        .unwrap();
    let got = db
        .get_item()
        .table_name("example-table")
        .key("ID", AttributeValue::S("rust-1".into()))
        .send()
        .await
        .unwrap();
    let item = got.item().unwrap();
    assert_eq!(
        item["Message"],
        AttributeValue::S("from the Rust SDK".into())
    );
    assert_eq!(
        item["n"],
        AttributeValue::N("12345678901234567890123456789012345678".into())
    );

    let updated = db
        .update_item()
        .table_name("example-table")
        .key("ID", AttributeValue::S("rust-1".into()))
        .update_expression("SET n = n + :one")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
        .send()
        .await
        .unwrap();
    assert_eq!(
        updated.attributes().unwrap()["n"],
        AttributeValue::N("12345678901234567890123456789012345679".into())
    );

    let q = db
        .query()
        .table_name("example-table")
        .key_condition_expression("ID = :id")
        .expression_attribute_values(":id", AttributeValue::S("rust-1".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(q.count(), 1);

    let err = db
        .put_item()
        .table_name("example-table")
        .item("ID", AttributeValue::S("rust-1".into()))
        .condition_expression("attribute_not_exists(ID)")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.into_service_error()
            .is_conditional_check_failed_exception()
    );
}
