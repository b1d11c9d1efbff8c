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
    run_interop_script(&s, "dynamodb_api.py");
}
