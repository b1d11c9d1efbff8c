//! DynamoDB's wire behaviour over raw HTTP: legacy parameters, Time to Live expiry,
//! tags, ConsumedCapacity, UpdateTable with a global index, Query's Limit, lifecycle
//! states and the model layer's refusals.

#![allow(clippy::unwrap_used)] // tests fail loudly on any surprise

mod common;

use common::*;
use serde_json::{Value, json};

async fn call(c: &reqwest::Client, s: &Server, action: &str, body: Value) -> (u16, Value) {
    let r = c
        .post(s.url("/"))
        .header("X-Amz-Target", format!("DynamoDB_20120810.{action}"))
        .header("Content-Type", "application/x-amz-json-1.0")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=abc",
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, v)
}

async fn ok(c: &reqwest::Client, s: &Server, action: &str, body: Value) -> Value {
    let (status, v) = call(c, s, action, body).await;
    assert_eq!(status, 200, "{action}: {v}");
    v
}

async fn range_table(c: &reqwest::Client, s: &Server, name: &str) {
    ok(
        c,
        s,
        "CreateTable",
        json!({
            "TableName": name,
            "KeySchema": [{"AttributeName": "h", "KeyType": "HASH"}, {"AttributeName": "r", "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": "h", "AttributeType": "S"}, {"AttributeName": "r", "AttributeType": "N"}],
            "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
        }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_parameters_work_and_refuse_mixing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), None);
    let c = client();
    range_table(&c, &s, "legacy").await;
    for r in 0..6 {
        ok(&c, &s, "PutItem", json!({"TableName": "legacy",
            "Item": {"h": {"S": "a"}, "r": {"N": r.to_string()}, "v": {"N": (r * 10).to_string()}}})).await;
    }
    // Expected: an optimistic-locking put, as DynamoDBMapper sends it.
    let (status, v) = call(
        &c,
        &s,
        "PutItem",
        json!({"TableName": "legacy",
        "Item": {"h": {"S": "a"}, "r": {"N": "1"}, "v": {"N": "11"}},
        "Expected": {"v": {"Value": {"N": "999"}}}}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        v["__type"]
            .as_str()
            .unwrap()
            .ends_with("ConditionalCheckFailedException"),
        "{v}"
    );
    ok(
        &c,
        &s,
        "PutItem",
        json!({"TableName": "legacy",
        "Item": {"h": {"S": "a"}, "r": {"N": "1"}, "v": {"N": "11"}},
        "Expected": {"v": {"Value": {"N": "10"}}, "gone": {"Exists": false}}}),
    )
    .await;
    // AttributeUpdates and AttributesToGet.
    ok(&c, &s, "UpdateItem", json!({"TableName": "legacy", "Key": {"h": {"S": "a"}, "r": {"N": "2"}},
        "AttributeUpdates": {"v": {"Action": "ADD", "Value": {"N": "5"}}, "t": {"Value": {"S": "x"}}}})).await;
    let v = ok(
        &c,
        &s,
        "GetItem",
        json!({"TableName": "legacy", "Key": {"h": {"S": "a"}, "r": {"N": "2"}},
        "AttributesToGet": ["v", "t"]}),
    )
    .await;
    assert_eq!(v["Item"], json!({"v": {"N": "25"}, "t": {"S": "x"}}));
    // KeyConditions and QueryFilter.
    let v = ok(&c, &s, "Query", json!({"TableName": "legacy",
        "KeyConditions": {"h": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a"}]},
                          "r": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "1"}, {"N": "4"}]}},
        "QueryFilter": {"v": {"ComparisonOperator": "GT", "AttributeValueList": [{"N": "20"}]}}})).await;
    assert_eq!(v["Count"], 3, "{v}");
    assert_eq!(v["ScannedCount"], 4, "{v}");
    // ScanFilter with OR.
    let v = ok(
        &c,
        &s,
        "Scan",
        json!({"TableName": "legacy", "ConditionalOperator": "OR",
        "ScanFilter": {"v": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "0"}]},
                       "t": {"ComparisonOperator": "NOT_NULL"}}}),
    )
    .await;
    assert_eq!(v["Count"], 2, "{v}");
    // Mixing the two forms is refused with AWS's message.
    let (status, v) = call(
        &c,
        &s,
        "PutItem",
        json!({"TableName": "legacy",
        "Item": {"h": {"S": "a"}, "r": {"N": "1"}},
        "Expected": {"v": {"Exists": false}}, "ConditionExpression": "attribute_exists(h)"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        v["message"],
        "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {Expected} Expression parameters: {ConditionExpression}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn query_limit_counts_after_the_key_condition_and_capacity_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), None);
    let c = client();
    range_table(&c, &s, "qqq").await;
    for r in 0..10 {
        ok(
            &c,
            &s,
            "PutItem",
            json!({"TableName": "qqq", "Item": {"h": {"S": "a"}, "r": {"N": r.to_string()}}}),
        )
        .await;
    }
    let v = ok(
        &c,
        &s,
        "Query",
        json!({"TableName": "qqq", "Limit": 2,
        "KeyConditionExpression": "h = :h AND r > :r",
        "ExpressionAttributeValues": {":h": {"S": "a"}, ":r": {"N": "6"}},
        "ReturnConsumedCapacity": "INDEXES"}),
    )
    .await;
    assert_eq!(v["Count"], 2, "{v}");
    assert_eq!(v["ScannedCount"], 2, "{v}");
    assert_eq!(v["Items"][0]["r"]["N"], "7");
    assert_eq!(v["ConsumedCapacity"]["CapacityUnits"], 0.5);
    assert_eq!(v["ConsumedCapacity"]["Table"]["CapacityUnits"], 0.5);
    // Writes: 1 per KB; reads: 1 per 4 KB strongly consistent, half eventually.
    let big = "x".repeat(5000);
    let v = ok(
        &c,
        &s,
        "PutItem",
        json!({"TableName": "qqq", "Item": {"h": {"S": "b"}, "r": {"N": "1"}, "p": {"S": big}},
        "ReturnConsumedCapacity": "TOTAL"}),
    )
    .await;
    assert_eq!(
        v["ConsumedCapacity"],
        json!({"TableName": "qqq", "CapacityUnits": 5.0})
    );
    let v = ok(
        &c,
        &s,
        "GetItem",
        json!({"TableName": "qqq", "Key": {"h": {"S": "b"}, "r": {"N": "1"}},
        "ConsistentRead": true, "ReturnConsumedCapacity": "TOTAL"}),
    )
    .await;
    assert_eq!(v["ConsumedCapacity"]["CapacityUnits"], 2.0);
    let v = ok(
        &c,
        &s,
        "BatchGetItem",
        json!({"RequestItems": {"qqq": {"Keys": [{"h": {"S": "b"}, "r": {"N": "1"}}]}},
        "ReturnConsumedCapacity": "TOTAL"}),
    )
    .await;
    assert_eq!(
        v["ConsumedCapacity"],
        json!([{"TableName": "qqq", "CapacityUnits": 1.0}])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ttl_expires_items_and_tags_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(|t| {
        t.replace(
            "ttl_check_interval_ms = 30000",
            "ttl_check_interval_ms = 100",
        )
    });
    let s = Server::start(&dir.path().join("d"), Some(&config));
    let c = client();
    range_table(&c, &s, "ttl").await;
    let v = ok(&c, &s, "DescribeTimeToLive", json!({"TableName": "ttl"})).await;
    assert_eq!(
        v,
        json!({"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}})
    );
    ok(
        &c,
        &s,
        "UpdateTimeToLive",
        json!({"TableName": "ttl",
        "TimeToLiveSpecification": {"AttributeName": "exp", "Enabled": true}}),
    )
    .await;
    let v = ok(&c, &s, "DescribeTimeToLive", json!({"TableName": "ttl"})).await;
    assert_eq!(v["TimeToLiveDescription"]["AttributeName"], "exp");
    ok(&c, &s, "PutItem", json!({"TableName": "ttl", "Item": {"h": {"S": "old"}, "r": {"N": "1"}, "exp": {"N": "1000"}}})).await;
    ok(&c, &s, "PutItem", json!({"TableName": "ttl", "Item": {"h": {"S": "new"}, "r": {"N": "1"}, "exp": {"N": "99999999999"}}})).await;
    ok(
        &c,
        &s,
        "PutItem",
        json!({"TableName": "ttl", "Item": {"h": {"S": "none"}, "r": {"N": "1"}}}),
    )
    .await;
    wait_until(10, "the expired item to go", || async {
        let v = ok(&c, &s, "Scan", json!({"TableName": "ttl"})).await;
        v["Count"] == 2
    })
    .await;
    // Tags.
    let arn = "arn:aws:dynamodb:us-east-1:000000000000:table/ttl";
    ok(&c, &s, "TagResource", json!({"ResourceArn": arn, "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]})).await;
    ok(
        &c,
        &s,
        "UntagResource",
        json!({"ResourceArn": arn, "TagKeys": ["a"]}),
    )
    .await;
    let v = ok(&c, &s, "ListTagsOfResource", json!({"ResourceArn": arn})).await;
    assert_eq!(v, json!({"Tags": [{"Key": "b", "Value": "2"}]}));
}

#[tokio::test(flavor = "multi_thread")]
async fn update_table_adds_a_global_index_over_existing_items() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(|t| {
        t.replacen(
            "create_delay_ms = 0\n# DeleteTable: DELETING",
            "create_delay_ms = 1500\n# DeleteTable: DELETING",
            1,
        )
    });
    let s = Server::start(&dir.path().join("d"), Some(&config));
    let c = client();
    range_table(&c, &s, "ggg").await;
    let v = ok(&c, &s, "DescribeTable", json!({"TableName": "ggg"})).await;
    assert_eq!(v["Table"]["TableStatus"], "CREATING");
    assert!(
        uuid::Uuid::parse_str(v["Table"]["TableId"].as_str().unwrap())
            .unwrap()
            .get_version_num()
            == 4
    );
    assert_eq!(v["Table"]["ProvisionedThroughput"]["ReadCapacityUnits"], 5);
    wait_until(10, "the table to be ACTIVE", || async {
        ok(&c, &s, "DescribeTable", json!({"TableName": "ggg"})).await["Table"]["TableStatus"]
            == "ACTIVE"
    })
    .await;
    for (h, color) in [("a", "red"), ("b", "blue"), ("c", "red")] {
        ok(&c, &s, "PutItem", json!({"TableName": "ggg", "Item": {"h": {"S": h}, "r": {"N": "1"}, "color": {"S": color}}})).await;
    }
    ok(
        &c,
        &s,
        "UpdateTable",
        json!({"TableName": "ggg",
        "AttributeDefinitions": [{"AttributeName": "color", "AttributeType": "S"}],
        "GlobalSecondaryIndexUpdates": [{"Create": {"IndexName": "by-color",
            "KeySchema": [{"AttributeName": "color", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"}}}]}),
    )
    .await;
    let v = ok(
        &c,
        &s,
        "Query",
        json!({"TableName": "ggg", "IndexName": "by-color",
        "KeyConditionExpression": "color = :c", "ExpressionAttributeValues": {":c": {"S": "red"}}}),
    )
    .await;
    assert_eq!(v["Count"], 2, "{v}");
    ok(
        &c,
        &s,
        "UpdateTable",
        json!({"TableName": "ggg",
        "GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": "by-color"}}]}),
    )
    .await;
    let v = ok(&c, &s, "DescribeTable", json!({"TableName": "ggg"})).await;
    assert!(v["Table"].get("GlobalSecondaryIndexes").is_none(), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_model_refuses_wrong_types_and_aggregates_constraints() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), None);
    let c = client();
    let (status, v) = call(&c, &s, "ListTables", json!({"Limit": "5"})).await;
    assert_eq!(status, 400);
    assert_eq!(
        v,
        json!({"__type": "com.amazon.coral.service#SerializationException",
        "Message": "STRING_VALUE cannot be converted to Integer"})
    );
    // An empty name breaks the name pattern and the 3-character minimum, and Key is
    // missing: three violations in one message.
    let (status, v) = call(&c, &s, "GetItem", json!({"TableName": ""})).await;
    assert_eq!(status, 400);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("3 validation errors detected: "),
        "{v}"
    );
    // KeySchema [RANGE, HASH] is refused.
    let (status, v) = call(&c, &s, "CreateTable", json!({"TableName": "bad",
        "KeySchema": [{"AttributeName": "r", "KeyType": "RANGE"}, {"AttributeName": "h", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "h", "AttributeType": "S"}, {"AttributeName": "r", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST"})).await;
    assert_eq!(status, 400);
    assert_eq!(
        v["message"],
        "Invalid KeySchema: The first KeySchemaElement is not a HASH key type"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_root_answers_browsers_health_checks_and_strangers_as_aws_does() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), None);
    let c = client();
    // A browser's preflight: any origin, what it asked for, cached two days.
    let r = c
        .request(reqwest::Method::OPTIONS, s.url("/"))
        .header("origin", "http://localhost:3000")
        .header(
            "access-control-request-headers",
            "x-amz-target, content-type",
        )
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    assert_eq!(
        h["access-control-allow-headers"],
        "x-amz-target, content-type"
    );
    assert_eq!(h["access-control-allow-methods"], "POST");
    assert_eq!(h["access-control-max-age"], "172800");
    // A request with an Origin gets the allow-origin header on its answer too.
    let r = c
        .post(s.url("/"))
        .header("origin", "http://localhost:3000")
        .header("x-amz-target", "DynamoDB_20120810.NoSuchThing")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    // GET / is the health line; other methods and foreign bodies are not the API.
    let r = c.get(s.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-amz-crc32"));
    assert!(r.text().await.unwrap().starts_with("healthy: dynamodb."));
    let r = c.put(s.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.text().await.unwrap(), "<UnknownOperationException/>\n");
    let r = c
        .post(s.url("/"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // JSON that does not parse, and an operation DynamoDB lacks: the type alone, in the
    // JSON type the request used.
    let r = c
        .post(s.url("/"))
        .header("content-type", "application/json")
        .header("x-amz-target", "DynamoDB_20120810.ListTables")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"__type": "com.amazon.coral.service#SerializationException"})
    );
    let r = c
        .post(s.url("/"))
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", "DynamoDB_20120810.NoSuchThing")
        .body("{}")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"__type": "com.amazon.coral.service#UnknownOperationException"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn item_checks_come_in_dynamodb_order_before_the_table_is_looked_up() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), None);
    let c = client();
    let refusal = |v: &Value| v["message"].as_str().unwrap_or_default().to_owned();
    // The table does not exist: a bad value in the key is still reported first.
    let (status, v) = call(
        &c,
        &s,
        "GetItem",
        json!({"TableName": "nothere",
        "Key": {"k": {"N": "12x"}}}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        refusal(&v),
        "The parameter cannot be converted to a numeric value: 12x"
    );
    // Expression maps are judged before the expression.
    let (_, v) = call(
        &c,
        &s,
        "DeleteItem",
        json!({"TableName": "nothere",
        "Key": {"k": {"S": "a"}}, "ConditionExpression": "",
        "ExpressionAttributeNames": {}}),
    )
    .await;
    assert_eq!(refusal(&v), "ExpressionAttributeNames must not be empty");
    // A duplicate in a string set names the set.
    let (_, v) = call(
        &c,
        &s,
        "PutItem",
        json!({"TableName": "nothere",
        "Item": {"k": {"SS": ["x", "x"]}}}),
    )
    .await;
    assert_eq!(
        refusal(&v),
        "One or more parameter values were invalid: Input collection [x, x] contains duplicates."
    );
    // CreateTable without billing mode or throughput.
    let (_, v) = call(
        &c,
        &s,
        "CreateTable",
        json!({"TableName": "nothroughput",
        "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}]}),
    )
    .await;
    assert_eq!(
        refusal(&v),
        "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn query_checks_its_key_conditions_before_the_table_and_its_start_key_after() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), None);
    let c = client();
    let refusal = |v: &Value| v["message"].as_str().unwrap_or_default().to_owned();
    // No such table: the legacy KeyConditions' own rules still come first.
    let (status, v) = call(
        &c,
        &s,
        "Query",
        json!({"TableName": "nothere",
        "KeyConditions": {"h": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"S": "b"}, {"S": "a"}]}}}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        refusal(&v),
        "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound"
    );
    // The key condition is parsed before the filter, and its shape is judged before the table.
    let (_, v) = call(
        &c,
        &s,
        "Query",
        json!({"TableName": "nothere", "FilterExpression": "",
        "KeyConditionExpression": "h = :v OR r = :v", "ExpressionAttributeValues": {":v": {"S": "a"}}}),
    )
    .await;
    assert_eq!(
        refusal(&v),
        "Invalid FilterExpression: The expression can not be empty;"
    );
    let (_, v) = call(
        &c,
        &s,
        "Query",
        json!({"TableName": "nothere",
        "KeyConditionExpression": "h = :v OR r = :v", "ExpressionAttributeValues": {":v": {"S": "a"}}}),
    )
    .await;
    assert_eq!(
        refusal(&v),
        "Invalid operator used in KeyConditionExpression: OR"
    );
    // A well-formed query of a missing table is not found.
    let (status, _) = call(
        &c,
        &s,
        "Query",
        json!({"TableName": "nothere",
        "KeyConditionExpression": "z = :v", "ExpressionAttributeValues": {":v": {"S": "a"}}}),
    )
    .await;
    assert_eq!(status, 400);
    // Against the table: the starting key's pieces, then its place inside the conditions.
    range_table(&c, &s, "ranged").await;
    let query = |start: Value, cond: &str| {
        let mut values = json!({":h": {"S": "a"}});
        if cond.contains(":r") {
            values[":r"] = json!({"N": "5"});
        }
        json!({"TableName": "ranged", "ExclusiveStartKey": start,
        "KeyConditionExpression": cond, "ExpressionAttributeValues": values})
    };
    // Starting keys read against the schema and the conditions, after the table lookup.
    for (start, condition, expected) in [
        (
            json!({"h": {"S": "a"}}),
            "h = :h",
            "The provided starting key is invalid",
        ),
        (
            json!({"h": {"S": "a"}, "r": {"S": "1"}}),
            "h = :h",
            "The provided key element does not match the schema",
        ),
        (
            json!({"h": {"S": "b"}, "r": {"N": "1"}}),
            "h = :h",
            "The provided starting key is outside query boundaries based on provided conditions",
        ),
        (
            json!({"h": {"S": "a"}, "r": {"N": "1"}}),
            "h = :h AND r > :r",
            "The provided starting key does not match the range key predicate",
        ),
    ] {
        let (_, v) = call(&c, &s, "Query", query(start, condition)).await;
        assert_eq!(refusal(&v), expected, "start key under {condition}");
    }
    let v = ok(
        &c,
        &s,
        "Query",
        query(
            json!({"h": {"S": "a"}, "r": {"N": "7"}}),
            "h = :h AND :r < r",
        ),
    )
    .await;
    assert_eq!(v["Count"], 0);
    let (_, v) = call(
        &c,
        &s,
        "Query",
        json!({"TableName": "ranged", "KeyConditionExpression": "h = :h",
        "FilterExpression": "r > :r",
        "ExpressionAttributeValues": {":h": {"S": "a"}, ":r": {"N": "5"}}}),
    )
    .await;
    assert_eq!(
        refusal(&v),
        "Filter Expression can only contain non-primary key attributes: Primary key attribute: r"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tag_actions_judge_the_resource_arn_before_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), None);
    let c = client();
    let (status, v) = call(&c, &s, "TagResource", json!({})).await;
    assert_eq!(status, 400);
    assert_eq!(v["message"], "Invalid TableArn");
    let (_, v) = call(
        &c,
        &s,
        "UntagResource",
        json!({"ResourceArn": "a:b:c:d:e:f"}),
    )
    .await;
    assert_eq!(
        v["__type"],
        "com.amazon.coral.service#AccessDeniedException"
    );
    let (_, v) = call(&c, &s, "ListTagsOfResource", json!({"ResourceArn": ""})).await;
    assert!(
        v["Message"]
            .as_str()
            .unwrap_or_default()
            .ends_with("dynamodb:ListTagsOfResource on resource: *"),
        "{v}"
    );
}
