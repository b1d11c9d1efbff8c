//! The AWS side: `deploy/terraform` passes `terraform fmt -check` and `validate` offline,
//! and `apply` then `destroy` against a local moto server creates and removes every
//! resource (tests/interop/terraform_moto.py, which names moto's gaps). Without
//! terraform on the machine that builds the tests, the test shows as ignored, naming it.

mod common;

#[test]
#[cfg_attr(
    not(spillway_has_terraform),
    ignore = "needs terraform on PATH (https://developer.hashicorp.com/terraform/install) and the hashicorp/aws provider in a plugin mirror (TF_PLUGIN_DIR)"
)]
fn terraform_applies_and_destroys_the_reference_architecture_on_moto() {
    common::run_python_test("terraform_moto.py", None);
}
