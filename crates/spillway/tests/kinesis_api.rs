//! The Kinesis API against real clients: boto3, the AWS CLI and raw HTTP, from
//! tests/interop/kinesis_api.py, against a real `spillway serve`.

#![allow(clippy::unwrap_used)] // tests fail loudly on any surprise

mod common;

use common::*;

#[test]
fn boto3_and_the_aws_cli_drive_every_action() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(|t| {
        // Windows long enough that the script sees CREATING and DELETING even when a
        // loaded machine delays its next call by a second.
        t.replace("create_delay_ms = 0", "create_delay_ms = 1500")
            .replace("delete_delay_ms = 0", "delete_delay_ms = 1000")
            + "\n[[streams]]\nname = \"limited\"\nshard_count = 1\nenforce_limits = true\n"
    });
    let s = Server::start(&dir.path().join("d"), Some(&config));
    run_interop_script(&s, "kinesis_api.py");
}
