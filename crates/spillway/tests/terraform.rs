//! The AWS side: `deploy/terraform` passes `terraform fmt -check` and `validate` offline,
//! and `apply` then `destroy` against a local moto server creates and removes every
//! resource (tests/interop/terraform_moto.py, which names moto's gaps).

mod common;

#[test]
fn terraform_applies_and_destroys_the_reference_architecture_on_moto() {
    common::run_python_test("terraform_moto.py", None);
}
