//! DynamoDB's input bounds over HTTP: requests built to exhaust the parser's stack, to
//! split a multi-byte character, or to pass limits AWS enforces are each answered with a
//! 400 ValidationException carrying AWS's message, and the process keeps serving.

#![allow(clippy::unwrap_used)] // tests fail loudly on any surprise

mod common;

use common::*;
use serde_json::{Value, json};

async fn call(c: &reqwest::Client, s: &Server, action: &str, body: &Value) -> (u16, Value) {
    let r = c
        .post(s.url("/"))
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", format!("DynamoDB_20120810.{action}"))
        .header("x-amz-date", "20261125T120000Z")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20261125/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| json!({"raw": text})),
    )
}

/// Asserts a 400 ValidationException with exactly `message`.
async fn refused(
    c: &reqwest::Client,
    s: &Server,
    what: &str,
    action: &str,
    body: Value,
    message: &str,
) {
    let (status, answer) = call(c, s, action, &body).await;
    assert_eq!(status, 400, "{what}: {answer}");
    assert_eq!(
        answer["__type"], "com.amazon.coral.validate#ValidationException",
        "{what}: {answer}"
    );
    assert_eq!(answer["message"], message, "{what}");
}

fn deep_map(wraps: usize) -> Value {
    let mut v = json!({"S": "leaf"});
    for _ in 0..wraps {
        v = json!({"M": {"n": v}});
    }
    v
}

#[tokio::test]
async fn hostile_requests_are_refused_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), None);
    let c = client();
    let (status, answer) = call(
        &c,
        &s,
        "CreateTable",
        &json!({
            "TableName": "limits",
            "KeySchema": [{"AttributeName": "h", "KeyType": "HASH"}, {"AttributeName": "r", "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": "h", "AttributeType": "S"}, {"AttributeName": "r", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        }),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let key = json!({"h": {"S": "a"}, "r": {"S": "b"}});
    let v = json!({":v": {"S": "x"}});

    // Conditions built to exhaust a recursive parser, on a table that does not even
    // exist: the expression is checked first.
    let parens = format!("{}h = :v{}", "(".repeat(2000), ")".repeat(2000));
    refused(&c, &s, "2,000 nested parentheses", "PutItem",
        json!({"TableName": "no-such-table", "Item": key, "ConditionExpression": parens, "ExpressionAttributeValues": v}),
        "Invalid ConditionExpression: The expression has redundant parentheses;").await;
    let nots = format!("{}h = :v", "NOT ".repeat(20_000));
    refused(&c, &s, "20,000 NOTs", "PutItem",
        json!({"TableName": "limits", "Item": key, "ConditionExpression": nots, "ExpressionAttributeValues": v}),
        "Invalid ConditionExpression: Expression size has exceeded the maximum allowed size; expression size: 80006").await;
    let nots = format!("{}h = :v", "NOT ".repeat(1000));
    refused(&c, &s, "1,000 NOTs in 4 KB", "DeleteItem",
        json!({"TableName": "limits", "Key": key, "ConditionExpression": nots, "ExpressionAttributeValues": v}),
        "Invalid ConditionExpression: The expression contains too many operators; operator count: 1001").await;
    let ands = vec!["h = :v"; 10_001].join(" AND ");
    refused(&c, &s, "10,000 ANDs", "DeleteItem",
        json!({"TableName": "limits", "Key": key, "ConditionExpression": ands, "ExpressionAttributeValues": v}),
        &format!("Invalid ConditionExpression: Expression size has exceeded the maximum allowed size; expression size: {}", 10_001 * 6 + 10_000 * 5)).await;
    let ands = vec!["h = :v"; 151].join(" AND ");
    refused(&c, &s, "301 operators", "DeleteItem",
        json!({"TableName": "limits", "Key": key, "ConditionExpression": ands, "ExpressionAttributeValues": v}),
        "Invalid ConditionExpression: The expression contains too many operators; operator count: 301").await;
    let nested = format!(
        "SET x = {}:v{}",
        "if_not_exists(x,".repeat(240),
        ")".repeat(240)
    );
    let (status, answer) = call(&c, &s, "UpdateItem",
        &json!({"TableName": "limits", "Key": key, "UpdateExpression": nested, "ExpressionAttributeValues": v})).await;
    assert_eq!(
        status, 200,
        "nested if_not_exists within 4 KB is valid: {answer}"
    );
    let nested = format!(
        "SET x = {}:v{}",
        "if_not_exists(x, ".repeat(2000),
        ")".repeat(2000)
    );
    refused(&c, &s, "2,000 nested if_not_exists", "UpdateItem",
        json!({"TableName": "limits", "Key": key, "UpdateExpression": nested, "ExpressionAttributeValues": v}),
        &format!("Invalid UpdateExpression: Expression size has exceeded the maximum allowed size; expression size: {}", 8 + 2000 * 18 + 2)).await;
    let filter = format!("{}x = :v{}", "NOT (".repeat(600), ")".repeat(600));
    refused(
        &c,
        &s,
        "deep Scan filter",
        "Scan",
        json!({"TableName": "limits", "FilterExpression": filter, "ExpressionAttributeValues": v}),
        "Invalid FilterExpression: The expression contains too many operators; operator count: 301",
    )
    .await;
    let filter = format!("{}x = :v{}", "(".repeat(1500), ")".repeat(1500));
    refused(
        &c,
        &s,
        "deep Scan filter in parentheses",
        "Scan",
        json!({"TableName": "limits", "FilterExpression": filter, "ExpressionAttributeValues": v}),
        "Invalid FilterExpression: The expression has redundant parentheses;",
    )
    .await;

    // Multi-byte text where the parser expects ASCII.
    refused(
        &c,
        &s,
        "multi-byte expression",
        "Scan",
        json!({"TableName": "limits", "FilterExpression": "x = 中文字符串很长很长"}),
        "Invalid FilterExpression: Syntax error; token: \"中\", near: \"中文字符串很长很长\"",
    )
    .await;

    // Limits AWS enforces.
    refused(&c, &s, "3,000-byte hash key", "PutItem",
        json!({"TableName": "limits", "Item": {"h": {"S": "k".repeat(3000)}, "r": {"S": "b"}}}),
        "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes").await;
    refused(&c, &s, "1,025-byte range key", "GetItem",
        json!({"TableName": "limits", "Key": {"h": {"S": "a"}, "r": {"S": "é".repeat(513)}}}),
        "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes").await;
    refused(
        &c,
        &s,
        "empty attribute name",
        "PutItem",
        json!({"TableName": "limits", "Item": {"h": {"S": "a"}, "r": {"S": "b"}, "": {"S": "x"}}}),
        "One or more parameter values were invalid: Empty attribute name",
    )
    .await;
    refused(&c, &s, "empty name behind #n", "GetItem",
        json!({"TableName": "limits", "Key": key, "ProjectionExpression": "#n", "ExpressionAttributeNames": {"#n": ""}}),
        "ExpressionAttributeNames contains invalid value: Empty attribute name for key #n").await;
    let many: Vec<String> = (0..100_000).map(|i| format!(":v{i}")).collect();
    refused(&c, &s, "IN with 100,000 operands", "Scan",
        json!({"TableName": "limits", "FilterExpression": format!("x IN ({})", many.join(", "))}),
        &format!("Invalid FilterExpression: Expression size has exceeded the maximum allowed size; expression size: {}", 6 + many.iter().map(String::len).sum::<usize>() + 2 * 99_999 + 1)).await;
    let in_list = format!("x IN ({})", vec![":v"; 101].join(","));
    refused(&c, &s, "IN with 101 operands", "Scan",
        json!({"TableName": "limits", "FilterExpression": in_list, "ExpressionAttributeValues": v}),
        "Invalid FilterExpression: The IN operator is provided with too many operands; number of operands: 101").await;
    let long = format!("x = :v{}", " OR x = :v".repeat(500));
    refused(&c, &s, "5 KB expression", "Scan",
        json!({"TableName": "limits", "FilterExpression": long, "ExpressionAttributeValues": v}),
        "Invalid FilterExpression: Expression size has exceeded the maximum allowed size; expression size: 5006").await;
    let path = vec!["x"; 33].join(".");
    refused(&c, &s, "33-level document path", "GetItem",
        json!({"TableName": "limits", "Key": key, "ProjectionExpression": path}),
        "Invalid ProjectionExpression: The document path has too many nesting levels; nesting levels: 33").await;
    let nest = "1 validation error detected: Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit";
    refused(&c, &s, "33-level nested map item", "PutItem",
        json!({"TableName": "limits", "Item": {"h": {"S": "a"}, "r": {"S": "b"}, "deep": deep_map(32)}}),
        nest).await;
    refused(&c, &s, "33-level expression value", "UpdateItem",
        json!({"TableName": "limits", "Key": key, "UpdateExpression": "SET x = :deep", "ExpressionAttributeValues": {":deep": deep_map(32)}}),
        nest).await;

    // The process is alive and serving, and the deepest valid item round-trips.
    let item = json!({"h": {"S": "a"}, "r": {"S": "b"}, "deep": deep_map(31), "k": {"S": "k".repeat(2048)}});
    let (status, answer) = call(
        &c,
        &s,
        "PutItem",
        &json!({"TableName": "limits", "Item": item}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = call(
        &c,
        &s,
        "GetItem",
        &json!({"TableName": "limits", "Key": key}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["Item"], item);
}
