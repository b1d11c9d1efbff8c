//! Lambda's control plane against a real spillway process: a Python function created
//! from a zip with boto3, invoked, fed by an event source mapping created through the
//! API; then the server is killed with SIGKILL and started again on the same data dir,
//! and the function and the mapping are still there, still working, with every record
//! processed once (tests/interop/lambda_api.py).

#![allow(clippy::unwrap_used)] // tests fail loudly on any surprise

mod common;

use common::{Server, run_python_test_with};

#[test]
fn functions_and_mappings_created_through_the_api_run_and_survive_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start(&data, None);
    run_python_test_with("lambda_api.py", Some(&s), &[("SPILLWAY_PHASE", "create")]);
    s.kill9();
    let s = Server::start(&data, None);
    run_python_test_with("lambda_api.py", Some(&s), &[("SPILLWAY_PHASE", "restart")]);
}
