//! The `bootstrap` binary outside Lambda: without `AWS_LAMBDA_RUNTIME_API` there is no
//! runtime to poll, and it must say so and exit non-zero instead of hanging.
//! (Its run under spillway's Runtime API host is tested in `crates/spillway/tests/runtime_api.rs`.)

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

#[test]
fn bootstrap_outside_lambda_fails_fast() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bootstrap"))
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env("AWS_REGION", "us-east-1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("bootstrap kept running without a Runtime API");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("AWS_LAMBDA_RUNTIME_API is not set"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("panicked"),
        "a clear message, not a panic: {stderr}"
    );
}
