# The consumer: the Rust reference function, its permissions, its logs, the
# dead-letter queue for batches it gives up on, and the event source mapping that
# feeds it from the stream.

# --- Log group ------------------------------------------------------------------------
#
# Lambda would create /aws/lambda/<name> on first use with logs kept forever and
# outside Terraform's control; creating it here sets a retention and lets
# `terraform destroy` remove it.
resource "aws_cloudwatch_log_group" "function" {
  name              = "/aws/lambda/${local.function_name}"
  retention_in_days = var.log_retention_days
}

# --- Dead-letter queue ------------------------------------------------------------------
#
# For a stream source, Lambda does not send the records themselves to the
# on-failure destination, only a description of the failed batch (shard id,
# first and last sequence numbers, reason). The records stay in the stream until
# the retention runs out, so whoever handles this queue re-reads them from there.
resource "aws_sqs_queue" "dlq" {
  name                      = local.dlq_name
  message_retention_seconds = var.dlq_message_retention_seconds
  sqs_managed_sse_enabled   = true
}

# --- Execution role -----------------------------------------------------------------------

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "lambda" {
  name               = local.lambda_role_name
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "lambda" {
  # Writing items: PutItem for single records, BatchWriteItem for up to 25 at once.
  statement {
    sid       = "WriteTable"
    actions   = ["dynamodb:BatchWriteItem", "dynamodb:PutItem"]
    resources = [aws_dynamodb_table.this.arn]
  }

  # Used by the event source mapping (it runs with the function's role) to find
  # the shards and read them.
  statement {
    sid = "ReadStream"
    actions = [
      "kinesis:DescribeStream",
      "kinesis:DescribeStreamSummary",
      "kinesis:GetRecords",
      "kinesis:GetShardIterator",
      "kinesis:ListShards",
    ]
    resources = [aws_kinesis_stream.this.arn]
  }

  # ListStreams is not tied to a stream in IAM (it has no resource type), so it can
  # only be granted on "*"; it reveals stream names, nothing else.
  statement {
    sid       = "ListStreams"
    actions   = ["kinesis:ListStreams"]
    resources = ["*"]
  }

  # The event source mapping also sends failure reports with the function's role.
  statement {
    sid       = "ReportFailures"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]
  }

  # Logging to its own log group only (the reference allowed arn:aws:logs:*:*:*).
  statement {
    sid = "Logs"
    actions = [
      "logs:CreateLogGroup",
      "logs:CreateLogStream",
      "logs:PutLogEvents",
    ]
    resources = [
      aws_cloudwatch_log_group.function.arn,
      "${aws_cloudwatch_log_group.function.arn}:*",
    ]
  }
}

resource "aws_iam_role_policy" "lambda" {
  name   = "${local.function_name}-policy"
  role   = aws_iam_role.lambda.id
  policy = data.aws_iam_policy_document.lambda.json
}

# --- Function -------------------------------------------------------------------------------
#
# A Rust binary on the OS-only runtime: Lambda runs the executable named
# `bootstrap` at the root of the zip. The zip is built by deploy/build-function.sh;
# source_code_hash makes Terraform upload a new one whenever its content changes.
resource "aws_lambda_function" "this" {
  function_name = local.function_name
  role          = aws_iam_role.lambda.arn

  runtime       = "provided.al2023"
  handler       = "bootstrap"
  architectures = [var.function_architecture]

  filename         = var.function_zip
  source_code_hash = filebase64sha256(var.function_zip)

  memory_size                    = var.function_memory_mb
  timeout                        = var.function_timeout_seconds
  reserved_concurrent_executions = var.function_reserved_concurrency

  environment {
    variables = {
      TABLE_NAME = aws_dynamodb_table.this.name
    }
  }

  # Create the log group first so Lambda does not create its own, and attach the
  # policy first so the first invocation can already write.
  depends_on = [
    aws_cloudwatch_log_group.function,
    aws_iam_role_policy.lambda,
  ]
}

# --- Event source mapping: stream -> function --------------------------------------------------
#
# Lambda polls every shard and invokes the function with up to batch_size records.
# By default a failing batch is retried until its records expire, which stops
# the whole shard for up to the retention period (a day). Here instead:
#   * the function reports which records failed (ReportBatchItemFailures) and only
#     those and the ones after them are retried;
#   * a batch that keeps failing is split in two, isolating a bad record;
#   * retries and record age are capped, and what is given up on is described in
#     the dead-letter queue so it can be replayed from the stream.
resource "aws_lambda_event_source_mapping" "stream" {
  event_source_arn  = aws_kinesis_stream.this.arn
  function_name     = aws_lambda_function.this.arn
  starting_position = "LATEST"

  batch_size             = var.batch_size
  parallelization_factor = var.parallelization_factor

  function_response_types        = ["ReportBatchItemFailures"]
  bisect_batch_on_function_error = true
  maximum_retry_attempts         = var.maximum_retry_attempts
  maximum_record_age_in_seconds  = var.maximum_record_age_seconds

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.dlq.arn
    }
  }

  # AWS checks that the role can read the stream when the mapping is created.
  depends_on = [aws_iam_role_policy.lambda]
}
