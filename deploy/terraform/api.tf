# API Gateway: a REST API whose root resource accepts POST and hands the body to
# kinesis:PutRecord through a service ("AWS") integration; no Lambda in the request
# path, so a traffic spike lands in the stream instead of throttling a function.

resource "aws_api_gateway_rest_api" "this" {
  name        = local.api_name
  description = "Buffers POSTed JSON bodies in the Kinesis stream ${local.stream_name}"

  endpoint_configuration {
    types = ["REGIONAL"]
  }
}

resource "aws_api_gateway_method" "post" {
  rest_api_id   = aws_api_gateway_rest_api.this.id
  resource_id   = aws_api_gateway_rest_api.this.root_resource_id
  http_method   = "POST"
  authorization = "NONE"
}

# --- Role API Gateway assumes to call Kinesis ------------------------------------
#
# A service integration signs its call to Kinesis with this role, so the role may
# do exactly one thing: put records into this one stream.

data "aws_iam_policy_document" "apigw_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["apigateway.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "apigw_kinesis" {
  name               = local.apigw_role_name
  assume_role_policy = data.aws_iam_policy_document.apigw_assume.json
}

data "aws_iam_policy_document" "apigw_put_record" {
  statement {
    actions   = ["kinesis:PutRecord"]
    resources = [aws_kinesis_stream.this.arn]
  }
}

resource "aws_iam_role_policy" "apigw_put_record" {
  name   = "put-record-${local.stream_name}"
  role   = aws_iam_role.apigw_kinesis.id
  policy = data.aws_iam_policy_document.apigw_put_record.json
}

# --- Integration: POST / -> kinesis:PutRecord ------------------------------------

resource "aws_api_gateway_integration" "kinesis" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  resource_id = aws_api_gateway_rest_api.this.root_resource_id
  http_method = aws_api_gateway_method.post.http_method

  # A service integration is always called with POST, whatever the client used.
  type                    = "AWS"
  integration_http_method = "POST"
  uri                     = "arn:aws:apigateway:${data.aws_region.current.name}:kinesis:action/PutRecord"
  credentials             = aws_iam_role.apigw_kinesis.arn

  # Kinesis speaks the AWS JSON 1.1 protocol.
  request_parameters = {
    "integration.request.header.Content-Type" = "'application/x-amz-json-1.1'"
  }

  # The PutRecord request. Two points the reference learned the hard way:
  #   * Data must be base64: a raw JSON body makes Kinesis answer 400, which
  #     API Gateway then reported to the client as an unexplained 500.
  #   * The request id as partition key spreads records evenly over the shards.
  # ($util and $context are API Gateway template variables, not Terraform ones:
  # Terraform only interpolates "$${...}".)
  request_templates = {
    "application/json" = <<-EOT
      {
        "StreamName": "${aws_kinesis_stream.this.name}",
        "Data": "$util.base64Encode($input.body)",
        "PartitionKey": "$context.requestId"
      }
    EOT
  }

  # A body of any other content type is refused with 415 instead of being passed
  # to Kinesis unmapped (which Kinesis would reject as a malformed request).
  # Requests without a Content-Type are treated as application/json.
  passthrough_behavior = "NEVER"
}

# --- Responses ----------------------------------------------------------------------
#
# With a service integration API Gateway does not pass the backend's status code
# through: every status the client may see needs a method response, and every
# status Kinesis may return needs an integration response whose selection pattern
# (a regex on the Kinesis HTTP status) maps it to one of them. The reference only
# mapped 200 and 4xx, so a 5xx from Kinesis ended in "No match for output mapping
# and no default output mapping configured" and a bare 500. No response templates
# are set, so the Kinesis answer (SequenceNumber and ShardId, or the error type and
# message) is passed through as the body.

locals {
  # Method response status => selection pattern of its integration response
  # (null marks the default response, used when no pattern matches).
  api_responses = {
    "200" = null
    "400" = "4\\d{2}"
    "500" = "5\\d{2}"
  }
}

resource "aws_api_gateway_method_response" "this" {
  for_each = local.api_responses

  rest_api_id = aws_api_gateway_rest_api.this.id
  resource_id = aws_api_gateway_rest_api.this.root_resource_id
  http_method = aws_api_gateway_method.post.http_method
  status_code = each.key

  response_models = {
    "application/json" = "Empty"
  }
}

resource "aws_api_gateway_integration_response" "this" {
  for_each = local.api_responses

  rest_api_id       = aws_api_gateway_rest_api.this.id
  resource_id       = aws_api_gateway_rest_api.this.root_resource_id
  http_method       = aws_api_gateway_method.post.http_method
  status_code       = aws_api_gateway_method_response.this[each.key].status_code
  selection_pattern = each.value

  # An integration response can only be attached once the integration exists.
  depends_on = [aws_api_gateway_integration.kinesis]
}

# --- Deployment and stage -----------------------------------------------------------

resource "aws_api_gateway_deployment" "this" {
  rest_api_id = aws_api_gateway_rest_api.this.id

  # A deployment is a snapshot: changes to the method, the integration or the
  # responses only go live in a new deployment. Hashing the settings of all of
  # them (the reference hashed only the integration) makes Terraform redeploy
  # whenever one changes. Only the arguments this file sets are listed (add any
  # new one here): hashing whole resources would also hash the attributes left
  # unset, which a refresh may turn from null into empty values, and every apply
  # would then redeploy.
  triggers = {
    redeployment = sha1(jsonencode({
      method = [
        aws_api_gateway_method.post.id,
        aws_api_gateway_method.post.authorization,
      ]
      integration = [
        aws_api_gateway_integration.kinesis.id,
        aws_api_gateway_integration.kinesis.uri,
        aws_api_gateway_integration.kinesis.credentials,
        aws_api_gateway_integration.kinesis.request_parameters,
        aws_api_gateway_integration.kinesis.request_templates,
        aws_api_gateway_integration.kinesis.passthrough_behavior,
      ]
      method_responses = [
        for r in aws_api_gateway_method_response.this : [r.id, r.response_models]
      ]
      integration_responses = [
        for r in aws_api_gateway_integration_response.this : [r.id, r.selection_pattern]
      ]
    }))
  }

  # The stage must switch to the new deployment before the old one can be deleted.
  lifecycle {
    create_before_destroy = true
  }

  # Snapshotting before the responses exist would deploy an API without them.
  depends_on = [
    aws_api_gateway_integration.kinesis,
    aws_api_gateway_integration_response.this,
  ]
}

resource "aws_api_gateway_stage" "this" {
  rest_api_id   = aws_api_gateway_rest_api.this.id
  deployment_id = aws_api_gateway_deployment.this.id
  stage_name    = var.stage_name
}
