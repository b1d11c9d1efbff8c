//! The DynamoDB API against real clients: boto3 (resource and client, with the
//! condition builders), the AWS CLI and raw HTTP, from tests/interop/dynamodb_api.py.

#![allow(clippy::unwrap_used)] // tests fail loudly on any surprise

mod common;

use common::*;

#[test]
fn boto3_and_the_aws_cli_use_the_tables() {
    let dir = tempfile::tempdir().unwrap();
    // A small table quota, so that LimitExceededException can be reached.
    let config = config_with(|t| t.replace("table_limit = 2500", "table_limit = 8"));
    let s = Server::start(&dir.path().join("d"), Some(&config));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/dynamodb_api.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .env("SPILLWAY_ENDPOINT", &s.base)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stderr);
    println!("{report}");
    assert!(
        out.status.success(),
        "boto3 tests failed:\n{report}\n{}",
        s.stderr()
    );
}
