# The AWS provider.
#
# Against real AWS nothing beyond `region` (and the usual credential chain) is
# needed. Setting `aws_endpoint` points every service this configuration uses at one
# local AWS emulator (the repository's tests use moto in server mode) and turns off
# the start-up checks that only make sense against real AWS.

locals {
  # True when the configuration is being applied to a local emulator.
  use_local_endpoint = var.aws_endpoint != null && var.aws_endpoint != ""
}

provider "aws" {
  region = var.region

  # An emulator accepts any credentials and has no EC2 metadata service.
  skip_credentials_validation = local.use_local_endpoint
  skip_metadata_api_check     = local.use_local_endpoint
  skip_region_validation      = local.use_local_endpoint

  dynamic "endpoints" {
    for_each = local.use_local_endpoint ? [var.aws_endpoint] : []
    content {
      apigateway = endpoints.value
      cloudwatch = endpoints.value
      dynamodb   = endpoints.value
      iam        = endpoints.value
      kinesis    = endpoints.value
      lambda     = endpoints.value
      logs       = endpoints.value
      sqs        = endpoints.value
      sts        = endpoints.value
    }
  }

  default_tags {
    tags = var.tags
  }
}

# The region the resources live in; used to build the API Gateway integration URI.
data "aws_region" "current" {}
