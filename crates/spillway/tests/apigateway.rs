//! API Gateway REST APIs built with the AWS CLI against a real `spillway serve`, in the
//! reference's shape (POST on the root, AWS integration to Kinesis PutRecord with a
//! base64 template, integration responses 200 default and `4\d{2}` -> 400), then run:
//! records reach the stream and the table, configuration mistakes answer as API
//! Gateway answers them, and the API survives a restart.

#![allow(clippy::unwrap_used)] // tests fail loudly on any surprise

mod common;

use std::process::Command;

use common::*;
use serde_json::{Value, json};

const TEMPLATE: &str = r#"{"StreamName": "STREAM", "Data": "$util.base64Encode($input.body)", "PartitionKey": "$context.requestId"}"#;

/// Whether the AWS CLI is installed; the tests say why they skip when it is not.
fn has_aws_cli() -> bool {
    let found = Command::new("aws")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        println!("skipped: the AWS CLI (`aws`) is not installed (pip install awscli)");
    }
    found
}

/// Runs `aws apigateway ...` against the server; the JSON it printed, or its stderr.
fn apigw(s: &Server, args: &[&str]) -> Result<Value, String> {
    let out = Command::new("aws")
        .arg("--endpoint-url")
        .arg(&s.base)
        .args(["--region", "us-east-1", "--output", "json", "apigateway"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    })
}

/// `aws apigateway {verb}` on one method (`--rest-api-id`, `--resource-id`,
/// `--http-method`), with `extra` arguments.
fn on_method(s: &Server, verb: &str, method: (&str, &str, &str), extra: &[&str]) -> Value {
    let (id, rid, http_method) = method;
    let mut args = vec![
        verb,
        "--rest-api-id",
        id,
        "--resource-id",
        rid,
        "--http-method",
        http_method,
    ];
    args.extend_from_slice(extra);
    ok(s, &args)
}

fn ok(s: &Server, args: &[&str]) -> Value {
    apigw(s, args).unwrap_or_else(|e| panic!("aws apigateway {args:?} failed: {e}\n{}", s.stderr()))
}

/// The reference's API: POST / -> Kinesis PutRecord on `stream`, with the given
/// integration responses (status, selection pattern). Deployed to stage `dev`.
fn reference_api(
    s: &Server,
    name: &str,
    stream: &str,
    responses: &[(&str, Option<&str>)],
) -> String {
    let api = ok(s, &["create-rest-api", "--name", name]);
    let id = api["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 10, "{api}");
    assert_eq!(api["endpointConfiguration"]["types"], json!(["EDGE"]));
    let resources = ok(s, &["get-resources", "--rest-api-id", &id]);
    let root = resources["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(root, api["rootResourceId"].as_str().unwrap());
    on_method(
        s,
        "put-method",
        (&id, &root, "POST"),
        &["--authorization-type", "NONE"],
    );
    let templates = json!({ "application/json": TEMPLATE.replace("STREAM", stream) }).to_string();
    let integration = on_method(
        s,
        "put-integration",
        (&id, &root, "POST"),
        &[
            "--type",
            "AWS",
            "--integration-http-method",
            "POST",
            "--uri",
            "arn:aws:apigateway:us-east-1:kinesis:action/PutRecord",
            "--credentials",
            "arn:aws:iam::000000000000:role/apigw-kinesis",
            "--request-templates",
            &templates,
        ],
    );
    assert_eq!(integration["passthroughBehavior"], "WHEN_NO_MATCH");
    assert_eq!(integration["timeoutInMillis"], 29000);
    for (status, pattern) in responses {
        on_method(
            s,
            "put-method-response",
            (&id, &root, "POST"),
            &["--status-code", status],
        );
        let mut extra = vec!["--status-code", status];
        if let Some(p) = pattern {
            extra.extend(["--selection-pattern", p]);
        }
        on_method(s, "put-integration-response", (&id, &root, "POST"), &extra);
    }
    let deployment = ok(s, &["create-deployment", "--rest-api-id", &id]);
    let did = deployment["id"].as_str().unwrap();
    let stage = ok(
        s,
        &[
            "create-stage",
            "--rest-api-id",
            &id,
            "--stage-name",
            "dev",
            "--deployment-id",
            did,
        ],
    );
    assert_eq!(stage["deploymentId"], did);
    assert_eq!(stage["tracingEnabled"], false);
    id
}

async fn post_stage(
    c: &reqwest::Client,
    s: &Server,
    id: &str,
    path: &str,
    body: &str,
) -> (u16, Value) {
    let r = c
        .post(s.url(&format!("/_aws/execute-api/{id}/dev{path}")))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert!(r.headers().contains_key("x-amzn-requestid"));
    assert!(r.headers().contains_key("x-amz-apigw-id"));
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_api_buffers_posts_into_the_table_and_survives_a_restart() {
    if !has_aws_cli() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start(&data, None);
    let c = client();
    let id = reference_api(
        &s,
        "reference",
        "example-stream",
        &[("200", None), ("400", Some(r"4\d{2}"))],
    );

    for i in 0..3 {
        let (status, v) = post_stage(&c, &s, &id, "/", &reference_body(i)).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["SequenceNumber"].as_str().unwrap().len(), 56, "{v}");
        assert_eq!(v["ShardId"], "shardId-000000000000");
    }
    // The records are the bodies as posted (base64 in the template, raw on the stream).
    let shard = read_shard(&c, &s, "example-stream", "shardId-000000000000").await;
    assert_eq!(shard.len(), 3);
    assert_eq!(shard[0].data, reference_body(0).as_bytes());
    wait_until(30, "3 items in example-table", || async {
        item_count(&c, &s, "example-table").await == 3
    })
    .await;
    let mut got = messages(&scan_table(&c, &s, "example-table").await);
    got.sort();
    assert_eq!(got, ["Test message 0", "Test message 1", "Test message 2"]);

    // Unknown paths, methods and stages: API Gateway's 403.
    let (status, v) = post_stage(&c, &s, &id, "/nope", "{}").await;
    assert_eq!(
        (status, v),
        (403, json!({"message": "Missing Authentication Token"}))
    );
    let r = c
        .get(s.url(&format!("/_aws/execute-api/{id}/dev/")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(s.url(&format!("/_aws/execute-api/{id}/prod/")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // The host form: {api}.execute-api.<anything>, path /{stage}/...
    let r = c
        .post(s.url("/dev/"))
        .header("host", format!("{id}.execute-api.localhost"))
        .body(reference_body(3))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // PATCH: a stage variable, then the template reads it after a redeploy.
    let apis = ok(&s, &["get-rest-apis"]);
    assert!(
        apis["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == id.as_str())
    );
    let stage = ok(
        &s,
        &[
            "update-stage",
            "--rest-api-id",
            &id,
            "--stage-name",
            "dev",
            "--patch-operations",
            "op=replace,path=/variables/stream,value=example-stream",
        ],
    );
    assert_eq!(stage["variables"]["stream"], "example-stream");

    // A restart keeps the API, its deployment and its stage.
    assert!(s.terminate().success());
    drop(s);
    let s = Server::start(&data, None);
    let api = ok(&s, &["get-rest-api", "--rest-api-id", &id]);
    assert_eq!(api["name"], "reference");
    let (status, v) = post_stage(&c, &s, &id, "/", &reference_body(4)).await;
    assert_eq!(status, 200, "{v}");
    wait_until(30, "5 items in example-table", || async {
        item_count(&c, &s, "example-table").await == 5
    })
    .await;

    // Errors as API Gateway words them.
    let e = apigw(&s, &["get-rest-api", "--rest-api-id", "nosuchapi0"]).unwrap_err();
    assert!(
        e.contains("NotFoundException") && e.contains("Invalid REST API identifier specified"),
        "{e}"
    );
    let e = apigw(
        &s,
        &[
            "get-method",
            "--rest-api-id",
            &id,
            "--resource-id",
            api["rootResourceId"].as_str().unwrap(),
            "--http-method",
            "GET",
        ],
    )
    .unwrap_err();
    assert!(e.contains("Invalid Method identifier specified"), "{e}");
    ok(
        &s,
        &["delete-stage", "--rest-api-id", &id, "--stage-name", "dev"],
    );
    ok(&s, &["delete-rest-api", "--rest-api-id", &id]);
    let e = apigw(&s, &["get-rest-api", "--rest-api-id", &id]).unwrap_err();
    assert!(e.contains("NotFoundException"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_responses_select_on_the_backends_status() {
    if !has_aws_cli() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), None);
    let c = client();

    // A stream that does not exist: Kinesis answers 400, `4\d{2}` maps it to 400.
    let id = reference_api(
        &s,
        "missing",
        "no-such-stream",
        &[("200", None), ("400", Some(r"4\d{2}"))],
    );
    let (status, v) = post_stage(&c, &s, &id, "/", &reference_body(0)).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["__type"], "ResourceNotFoundException", "{v}");

    // Only a 200 with a pattern and no default: the reference author's 500.
    let id = reference_api(
        &s,
        "nodefault",
        "no-such-stream",
        &[("200", Some(r"2\d{2}"))],
    );
    let (status, v) = post_stage(&c, &s, &id, "/", &reference_body(0)).await;
    assert_eq!(
        (status, v),
        (500, json!({"message": "Internal server error"}))
    );
    assert!(
        s.stderr().contains(
            "Execution failed due to configuration error: No match for output mapping and no default output mapping configured. Endpoint Response Status Code: 400"
        ),
        "{}",
        s.stderr()
    );

    // A MOCK integration on a child resource, with a response template.
    let root = ok(&s, &["get-rest-api", "--rest-api-id", &id])["rootResourceId"]
        .as_str()
        .unwrap()
        .to_owned();
    let health = ok(
        &s,
        &[
            "create-resource",
            "--rest-api-id",
            &id,
            "--parent-id",
            &root,
            "--path-part",
            "health",
        ],
    );
    assert_eq!(health["path"], "/health");
    let rid = health["id"].as_str().unwrap();
    let mock: [(&str, &[&str]); 4] = [
        ("put-method", &["--authorization-type", "NONE"]),
        (
            "put-integration",
            &[
                "--type",
                "MOCK",
                "--request-templates",
                r#"{"application/json": "{\"statusCode\": 200}"}"#,
            ],
        ),
        ("put-method-response", &["--status-code", "200"]),
        (
            "put-integration-response",
            &[
                "--status-code",
                "200",
                "--response-templates",
                r#"{"application/json": "{\"ok\": true, \"stage\": \"$context.stage\", \"path\": \"$context.resourcePath\"}"}"#,
                "--response-parameters",
                r#"{"method.response.header.X-Health": "'fine'"}"#,
            ],
        ),
    ];
    for (verb, extra) in mock {
        on_method(&s, verb, (&id, rid, "GET"), extra);
    }
    // Not live until deployed again.
    let r = c
        .get(s.url(&format!("/_aws/execute-api/{id}/dev/health")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    ok(
        &s,
        &[
            "create-deployment",
            "--rest-api-id",
            &id,
            "--stage-name",
            "dev",
        ],
    );
    let r = c
        .get(s.url(&format!("/_aws/execute-api/{id}/dev/health")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-health"], "fine");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, json!({"ok": true, "stage": "dev", "path": "/health"}));

    // PATCH an integration response to add the default: the failing call now maps to it.
    let resources = ok(
        &s,
        &["get-resources", "--rest-api-id", &id, "--embed", "methods"],
    );
    let root_view = resources["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == "/")
        .unwrap()
        .clone();
    assert_eq!(
        root_view["resourceMethods"]["POST"]["methodIntegration"]["type"],
        "AWS"
    );
    on_method(
        &s,
        "update-integration-response",
        (&id, &root, "POST"),
        &[
            "--status-code",
            "200",
            "--patch-operations",
            r#"[{"op": "replace", "path": "/selectionPattern", "value": ""}]"#,
        ],
    );
    ok(
        &s,
        &[
            "create-deployment",
            "--rest-api-id",
            &id,
            "--stage-name",
            "dev",
        ],
    );
    let (status, v) = post_stage(&c, &s, &id, "/", &reference_body(0)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["__type"], "ResourceNotFoundException", "{v}");
}
