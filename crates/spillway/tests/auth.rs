//! Authentication against real `spillway serve` processes: SigV4 verification of the
//! Kinesis and DynamoDB APIs (boto3's signer in tests/interop/auth_sigv4.py, and the Rust
//! SDKs here), today's accept-any-signature behaviour when it is off, and API keys with
//! per-key throttling on routes.

#![allow(clippy::unwrap_used)] // tests fail loudly on any surprise

mod common;

use common::*;
use serde_json::{Value, json};

/// The default config with verification on and the credentials auth_sigv4.py signs with.
fn verifying_config() -> String {
    config_with(|t| {
        t.replace(
            "verify_signatures = false",
            "verify_signatures = true\n\
             [[security.credentials]]\n\
             access_key_id = \"AKIDSPILLWAYTEST\"\n\
             secret_access_key = \"right-secret\"\n\
             [[security.credentials]]\n\
             access_key_id = \"ASIASPILLWAYTEMP\"\n\
             secret_access_key = \"temp-secret\"\n\
             session_token = \"session-token-1\"\n",
        )
    })
}

fn kinesis(endpoint: &str, key: &str, secret: &str) -> aws_sdk_kinesis::Client {
    use aws_sdk_kinesis::config::{Credentials, Region};
    let config = aws_sdk_kinesis::Config::builder()
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(key, secret, None, None, "auth-tests"))
        .build();
    aws_sdk_kinesis::Client::from_conf(config)
}

fn dynamodb(endpoint: &str, key: &str, secret: &str) -> aws_sdk_dynamodb::Client {
    use aws_sdk_dynamodb::config::{Credentials, Region};
    let config = aws_sdk_dynamodb::Config::builder()
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(key, secret, None, None, "auth-tests"))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

#[test]
fn boto3_signatures_are_verified() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), Some(&verifying_config()));
    run_interop_script(&s, "auth_sigv4.py");
}

#[tokio::test]
async fn the_rust_sdks_sign_correctly_and_a_wrong_secret_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), Some(&verifying_config()));

    let k = kinesis(&s.base, "AKIDSPILLWAYTEST", "right-secret");
    k.create_stream()
        .stream_name("rust")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    let names = k.list_streams().send().await.unwrap().stream_names;
    assert!(names.contains(&"rust".to_owned()), "{names:?}");
    let d = dynamodb(&s.base, "AKIDSPILLWAYTEST", "right-secret");
    let tables = d.list_tables().send().await.unwrap().table_names.unwrap();
    assert_eq!(tables, ["example-table"]);

    let bad = kinesis(&s.base, "AKIDSPILLWAYTEST", "wrong-secret");
    let err = bad
        .delete_stream()
        .stream_name("rust")
        .send()
        .await
        .unwrap_err();
    let err = err.into_service_error();
    assert_eq!(
        aws_sdk_kinesis::error::ProvideErrorMetadata::code(&err),
        Some("InvalidSignatureException"),
        "{err:?}"
    );
    let bad = dynamodb(&s.base, "AKIDSPILLWAYTEST", "wrong-secret");
    let err = bad
        .delete_table()
        .table_name("example-table")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(
        aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&err),
        Some("InvalidSignatureException"),
        "{err:?}"
    );

    // Nothing was deleted.
    let names = k.list_streams().send().await.unwrap().stream_names;
    assert!(names.contains(&"rust".to_owned()), "{names:?}");
    let tables = d.list_tables().send().await.unwrap().table_names.unwrap();
    assert_eq!(tables, ["example-table"]);
}

#[tokio::test]
async fn with_verification_off_any_signature_is_accepted_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), None);

    // A wrong secret (nothing is configured) works.
    let k = kinesis(&s.base, "anyone", "any-secret");
    let names = k.list_streams().send().await.unwrap().stream_names;
    assert_eq!(names, ["example-stream"]);
    let d = dynamodb(&s.base, "anyone", "any-secret");
    assert!(d.list_tables().send().await.is_ok());

    let c = client();
    let post = |target: &str, auth: Option<&str>| {
        let mut r = c
            .post(s.url("/"))
            .header("x-amz-target", target)
            .header("content-type", "application/x-amz-json-1.1")
            .body("{}");
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send()
    };
    // A signature's shape is still checked, as AWS checks it before the signature
    // itself: a garbage Authorization header is refused in AWS's words.
    let r = post("Kinesis_20131202.ListStreams", Some("garbage"))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["__type"], "IncompleteSignatureException");
    // No signature at all is still refused.
    let r = post("Kinesis_20131202.ListStreams", None).await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["__type"], "MissingAuthenticationTokenException");
    // DynamoDB speaks application/x-amz-json-1.0 (a body in Kinesis' 1.1 is answered
    // 404, as AWS answers it).
    let r = c
        .post(s.url("/"))
        .header("x-amz-target", "DynamoDB_20120810.ListTables")
        .header("content-type", "application/x-amz-json-1.0")
        .body("{}")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["__type"],
        "com.amazon.coral.service#MissingAuthenticationTokenException"
    );
}

/// Routes needing a key: /dev (buffered) and /direct (direct), keys `throttled` (burst
/// 2, one token per 100 s) and `free` (not throttled).
fn api_key_config() -> String {
    config_with(|t| {
        t.replace(
            "api_key_required = false\n",
            "api_key_required = true\n\
             [[routes]]\n\
             method = \"POST\"\n\
             path = \"/direct\"\n\
             function = \"kinesis-to-dynamo\"\n\
             api_key_required = true\n\
             [[routes]]\n\
             method = \"POST\"\n\
             path = \"/open\"\n\
             stream = \"example-stream\"\n",
        )
        .replace(
            "verify_signatures = false",
            "verify_signatures = false\n\
             [[security.api_keys]]\n\
             name = \"throttled\"\n\
             value = \"throttled-key-0123456789\"\n\
             rate_per_second = 0.01\n\
             burst = 2\n\
             [[security.api_keys]]\n\
             name = \"free\"\n\
             value = \"free-key-0123456789abcdef\"\n",
        )
    })
}

#[tokio::test]
async fn api_keys_guard_routes_and_throttle_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("d"), Some(&api_key_config()));
    let c = client();
    let post = |path: &str, key: Option<&str>| {
        let mut r = c.post(s.url(path)).body("{\"message\": \"hi\"}");
        if let Some(k) = key {
            r = r.header("x-api-key", k);
        }
        r.send()
    };

    for (path, key) in [
        ("/dev", None),
        ("/dev", Some("not-a-configured-key-at-all")),
        ("/direct", None),
        ("/direct", Some("")),
    ] {
        let r = post(path, key).await.unwrap();
        assert_eq!(r.status(), 403, "{path} {key:?}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v, json!({"message": "Forbidden"}));
    }
    // A route without api_key_required needs none.
    assert_eq!(post("/open", None).await.unwrap().status(), 200);

    // The throttled key: its burst of 2, then 429 with Retry-After.
    for _ in 0..2 {
        let r = post("/dev", Some("throttled-key-0123456789"))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = post("/dev", Some("throttled-key-0123456789"))
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=100).contains(&retry_after), "{retry_after}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, json!({"message": "Too Many Requests"}));
    // The bucket is the key's, across routes.
    let r = post("/direct", Some("throttled-key-0123456789"))
        .await
        .unwrap();
    assert_eq!(r.status(), 429);

    // Another key has its own bucket.
    for path in ["/dev", "/dev", "/dev", "/direct"] {
        let r = post(path, Some("free-key-0123456789abcdef")).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }

    // Only admitted buffered requests reached the stream: /open, 2 throttled, 3 free.
    let shard = &shard_ids(&c, &s, "example-stream").await[0];
    assert_eq!(read_shard(&c, &s, "example-stream", shard).await.len(), 6);
}
