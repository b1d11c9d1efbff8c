# The reference write-up's Terraform, in its plain shape (one file, the names it uses,
# an AWS integration to kinesis:PutRecord with `$util.base64Encode($input.body)`, a
# 200 and a `4\d{2}` integration response, the Python function on python3.12), as a
# user would apply it to spillway. Two changes only, both forced by running offline:
#   * the provider block points every service at `var.endpoint` (the override a user
#     adds: tflocal does the same for LocalStack);
#   * the function's zip is a variable, because the `archive` provider the reference
#     uses to build it is not in this machine's provider mirror;
#   * the deployment also waits for the integration responses. The reference's waits
#     for the integration only, so Terraform may snapshot the API before its responses
#     exist (at AWS as here), and the stage then answers every POST with the 500 "No
#     match for output mapping" the write-up describes.

variable "endpoint" {
  type = string
}

variable "function_zip" {
  type = string
}

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true

  endpoints {
    apigateway = var.endpoint
    dynamodb   = var.endpoint
    iam        = var.endpoint
    kinesis    = var.endpoint
    lambda     = var.endpoint
    sts        = var.endpoint
  }
}

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

resource "aws_api_gateway_rest_api" "example_api" {
  name        = "kinesis-sample-api"
  description = "API connected to Kinesis Data Streams"
}

resource "aws_api_gateway_method" "root_method" {
  rest_api_id   = aws_api_gateway_rest_api.example_api.id
  resource_id   = aws_api_gateway_rest_api.example_api.root_resource_id
  http_method   = "POST"
  authorization = "NONE"
}

data "aws_iam_policy_document" "apigw_assume_role_policy" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["apigateway.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "apigw_kinesis_role" {
  name               = "apigw_kinesis_role"
  assume_role_policy = data.aws_iam_policy_document.apigw_assume_role_policy.json
}

data "aws_iam_policy_document" "apigw_kinesis_policy_doc" {
  statement {
    actions   = ["kinesis:PutRecord"]
    resources = [aws_kinesis_stream.example.arn]
  }
}

resource "aws_iam_role_policy" "apigw_kinesis_role_policy" {
  name   = "apigw_kinesis_role_policy"
  role   = aws_iam_role.apigw_kinesis_role.id
  policy = data.aws_iam_policy_document.apigw_kinesis_policy_doc.json
}

resource "aws_kinesis_stream" "example" {
  name        = "example-stream"
  shard_count = 1
}

resource "aws_api_gateway_integration" "root_integration" {
  rest_api_id             = aws_api_gateway_rest_api.example_api.id
  resource_id             = aws_api_gateway_rest_api.example_api.root_resource_id
  http_method             = aws_api_gateway_method.root_method.http_method
  integration_http_method = "POST"
  type                    = "AWS"
  uri                     = "arn:aws:apigateway:${data.aws_region.current.name}:kinesis:action/PutRecord"
  credentials             = aws_iam_role.apigw_kinesis_role.arn

  request_templates = {
    "application/json" = <<EOF
{
  "StreamName": "${aws_kinesis_stream.example.name}",
  "PartitionKey": "$context.requestId",
  "Data": "$util.base64Encode($input.body)"
}
EOF
  }
}

resource "aws_api_gateway_method_response" "root_method_200" {
  rest_api_id = aws_api_gateway_rest_api.example_api.id
  resource_id = aws_api_gateway_rest_api.example_api.root_resource_id
  http_method = aws_api_gateway_method.root_method.http_method
  status_code = "200"
  response_models = {
    "application/json" = "Empty"
  }
}

resource "aws_api_gateway_integration_response" "root_integration_200" {
  rest_api_id       = aws_api_gateway_rest_api.example_api.id
  resource_id       = aws_api_gateway_rest_api.example_api.root_resource_id
  http_method       = aws_api_gateway_method.root_method.http_method
  status_code       = "200"
  selection_pattern = ""
  response_templates = {
    "application/json" = ""
  }
  depends_on = [
    aws_api_gateway_integration.root_integration,
    aws_api_gateway_method_response.root_method_200,
  ]
}

resource "aws_api_gateway_method_response" "root_method_400" {
  rest_api_id = aws_api_gateway_rest_api.example_api.id
  resource_id = aws_api_gateway_rest_api.example_api.root_resource_id
  http_method = aws_api_gateway_method.root_method.http_method
  status_code = "400"
  response_models = {
    "application/json" = "Empty"
  }
}

resource "aws_api_gateway_integration_response" "root_integration_400" {
  rest_api_id       = aws_api_gateway_rest_api.example_api.id
  resource_id       = aws_api_gateway_rest_api.example_api.root_resource_id
  http_method       = aws_api_gateway_method.root_method.http_method
  status_code       = "400"
  selection_pattern = "4\\d{2}"
  response_templates = {
    "application/json" = ""
  }
  depends_on = [
    aws_api_gateway_integration.root_integration,
    aws_api_gateway_method_response.root_method_400,
  ]
}

resource "aws_api_gateway_deployment" "example_deployment" {
  depends_on = [
    aws_api_gateway_integration.root_integration,
    aws_api_gateway_integration_response.root_integration_200,
    aws_api_gateway_integration_response.root_integration_400,
  ]
  rest_api_id = aws_api_gateway_rest_api.example_api.id
  triggers = {
    redeployment_integration = sha1(jsonencode(aws_api_gateway_integration.root_integration))
  }
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_stage" "example" {
  rest_api_id   = aws_api_gateway_rest_api.example_api.id
  deployment_id = aws_api_gateway_deployment.example_deployment.id
  stage_name    = "dev"
}

resource "aws_dynamodb_table" "example_table" {
  name         = "example-table"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "ID"
  attribute {
    name = "ID"
    type = "S"
  }
}

data "aws_iam_policy_document" "lambda_assume_role_policy" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "lambda_kinesis_to_dynamo_policy_doc" {
  statement {
    actions   = ["dynamodb:PutItem"]
    resources = [aws_dynamodb_table.example_table.arn]
  }
  statement {
    actions = [
      "kinesis:GetRecords",
      "kinesis:GetShardIterator",
      "kinesis:DescribeStream",
      "kinesis:ListStreams",
    ]
    resources = [aws_kinesis_stream.example.arn]
  }
  statement {
    actions = [
      "logs:CreateLogGroup",
      "logs:CreateLogStream",
      "logs:PutLogEvents",
    ]
    resources = ["arn:aws:logs:*:*:*"]
  }
}

resource "aws_iam_role" "lambda_role" {
  name               = "lambda_kinesis_to_dynamo_role"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume_role_policy.json
}

resource "aws_iam_role_policy" "lambda_policy" {
  name   = "lambda_kinesis_to_dynamo_policy"
  role   = aws_iam_role.lambda_role.id
  policy = data.aws_iam_policy_document.lambda_kinesis_to_dynamo_policy_doc.json
}

resource "aws_lambda_function" "kinesis_to_dynamo" {
  function_name    = "kinesis_to_dynamo"
  role             = aws_iam_role.lambda_role.arn
  runtime          = "python3.12"
  handler          = "lambda_function.lambda_handler"
  filename         = var.function_zip
  source_code_hash = filebase64sha256(var.function_zip)
  memory_size      = 256
  timeout          = 60
}

resource "aws_lambda_event_source_mapping" "kinesis_trigger" {
  event_source_arn  = aws_kinesis_stream.example.arn
  function_name     = aws_lambda_function.kinesis_to_dynamo.arn
  batch_size        = 100
  starting_position = "LATEST"
}

output "api_endpoint" {
  value = aws_api_gateway_stage.example.invoke_url
}

output "rest_api_id" {
  value = aws_api_gateway_rest_api.example_api.id
}

output "kinesis_stream_arn" {
  value = aws_kinesis_stream.example.arn
}

output "dynamodb_table_name" {
  value = aws_dynamodb_table.example_table.name
}
