//! The AWS side: `deploy/terraform` passes `terraform fmt -check` and `validate` offline,
//! and `apply` then `destroy` against a local moto server creates and removes every
//! resource (tests/interop/terraform_moto.py, which names moto's gaps). Without
//! terraform on the machine that builds the tests, the test shows as ignored, naming it.
//!
//! The user's side: the same configuration, and the reference write-up's own, applied
//! to spillway itself and run (tests/interop/terraform_spillway.py).

#![allow(clippy::unwrap_used)] // tests fail loudly on any surprise

mod common;

#[test]
#[cfg_attr(
    not(spillway_has_terraform),
    ignore = "needs terraform on PATH (https://developer.hashicorp.com/terraform/install) and the hashicorp/aws provider in a plugin mirror (TF_PLUGIN_DIR)"
)]
fn terraform_applies_and_destroys_the_reference_architecture_on_moto() {
    common::run_python_test("terraform_moto.py", None);
}

/// Starts spillway with no pipeline of its own (Terraform creates the stream, table,
/// function and mapping under the default names) and runs
/// tests/interop/terraform_spillway.py in one of its shapes.
fn apply_to_spillway(shape: &str) {
    let bootstrap =
        std::path::Path::new(env!("CARGO_BIN_EXE_spillway")).with_file_name("bootstrap");
    assert!(
        shape != "deploy" || bootstrap.exists(),
        "{} is missing: build it with `cargo build -p kinesis-to-dynamodb` (cargo test --workspace does)",
        bootstrap.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let config = "streams = []\ntables = []\nfunctions = []\nmappings = []\nroutes = []\n";
    let s = common::Server::start(&dir.path().join("data"), Some(config));
    common::run_python_test_with(
        "terraform_spillway.py",
        Some(&s),
        &[
            ("SPILLWAY_TF_SHAPE", shape),
            ("SPILLWAY_FUNCTION_BINARY", &bootstrap.display().to_string()),
        ],
    );
}

/// The user's side: the project's `deploy/terraform`, applied to spillway itself (one
/// endpoint for every service), then run: POSTs to the deployed stage land exactly once
/// in the table through the Rust function on `provided.al2023`; a second plan is
/// empty; destroy removes everything.
#[test]
#[cfg_attr(
    not(spillway_has_terraform),
    ignore = "needs terraform on PATH (https://developer.hashicorp.com/terraform/install) and the hashicorp/aws provider in a plugin mirror (TF_PLUGIN_DIR)"
)]
fn terraform_applies_the_reference_architecture_to_spillway_and_it_runs() {
    apply_to_spillway("deploy");
}

/// The reference write-up's own plain Terraform and Python function, applied to
/// spillway and run the same way.
#[test]
#[cfg_attr(
    not(spillway_has_terraform),
    ignore = "needs terraform on PATH (https://developer.hashicorp.com/terraform/install) and the hashicorp/aws provider in a plugin mirror (TF_PLUGIN_DIR)"
)]
fn the_reference_write_ups_terraform_and_python_function_run_on_spillway() {
    apply_to_spillway("reference");
}
