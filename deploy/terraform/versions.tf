# Terraform and provider requirements.
#
# Only the hashicorp/aws provider is used. The reference write-up also pulled in
# hashicorp/archive to zip a Python handler; the Rust function is zipped by
# deploy/build-function.sh instead, so the configuration can be initialised from a
# local plugin mirror with no network access
# (`terraform init -plugin-dir=/opt/tf-plugins`).
terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}
