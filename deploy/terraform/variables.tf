# Input variables. Every name defaults to the one used in the reference write-up, so
# a plain `terraform apply` rebuilds that architecture; `name_prefix` lets several
# copies live in one account (IAM role names are account-wide, not regional).

variable "region" {
  description = "AWS region to deploy into (the reference used Tokyo)."
  type        = string
  default     = "ap-northeast-1"
}

variable "aws_endpoint" {
  description = "Send every AWS API call to this URL instead of AWS (for a local emulator such as moto, e.g. http://127.0.0.1:5000). Leave null for real AWS."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource that supports them."
  type        = map(string)
  default = {
    Project = "spillway"
  }
}

# ---------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------

variable "name_prefix" {
  description = "Prepended to every resource name (API, stream, table, function, roles, queue, alarm)."
  type        = string
  default     = ""
}

variable "api_name" {
  description = "Name of the REST API."
  type        = string
  default     = "kinesis-sample-api"
}

variable "stage_name" {
  description = "Name of the API Gateway stage; clients POST to <invoke URL of this stage>."
  type        = string
  default     = "dev"
}

variable "stream_name" {
  description = "Name of the Kinesis data stream that buffers the requests."
  type        = string
  default     = "example-stream"
}

variable "table_name" {
  description = "Name of the DynamoDB table the function writes to."
  type        = string
  default     = "example-table"
}

variable "function_name" {
  description = "Name of the Lambda function that drains the stream into the table."
  type        = string
  default     = "kinesis_to_dynamo"
}

# ---------------------------------------------------------------------------
# Stream
# ---------------------------------------------------------------------------

variable "shard_count" {
  description = "Number of shards. Each shard takes 1 MB/s or 1000 records/s of PutRecord; above that API Gateway answers 400 (ProvisionedThroughputExceededException)."
  type        = number
  default     = 1

  validation {
    condition     = var.shard_count >= 1
    error_message = "shard_count must be at least 1."
  }
}

variable "stream_retention_hours" {
  description = "How long records stay readable in the stream (24 is the minimum and the cheapest)."
  type        = number
  default     = 24

  validation {
    condition     = var.stream_retention_hours >= 24 && var.stream_retention_hours <= 8760
    error_message = "stream_retention_hours must be between 24 and 8760."
  }
}

# ---------------------------------------------------------------------------
# Function
# ---------------------------------------------------------------------------

variable "function_zip" {
  description = "Path of the deployment package made by deploy/build-function.sh (a zip holding one executable named bootstrap). A relative path is resolved against the directory terraform runs in."
  type        = string
  default     = "../build/kinesis-to-dynamodb.zip"
}

variable "function_architecture" {
  description = "Instruction set the bootstrap binary was built for: x86_64 or arm64."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.function_architecture)
    error_message = "function_architecture must be x86_64 or arm64."
  }
}

variable "function_memory_mb" {
  description = "Memory of the function in MB (CPU share grows with it)."
  type        = number
  default     = 256
}

variable "function_timeout_seconds" {
  description = "Time limit of one invocation (one batch)."
  type        = number
  default     = 60
}

variable "function_reserved_concurrency" {
  description = "Reserved concurrent executions of the function: guarantees capacity for the stream consumer and caps it. It should be at least shard_count * parallelization_factor, since that is how many batches the event source mapping runs at once. Use -1 for no reservation (required on new accounts whose concurrency quota is only 10)."
  type        = number
  default     = 5

  validation {
    condition     = var.function_reserved_concurrency == -1 || var.function_reserved_concurrency >= 1
    error_message = "function_reserved_concurrency must be -1 (no reservation) or at least 1."
  }
}

variable "log_retention_days" {
  description = "Retention of the function's CloudWatch log group, in days."
  type        = number
  default     = 14
}

# ---------------------------------------------------------------------------
# Event source mapping (stream -> function)
# ---------------------------------------------------------------------------

variable "batch_size" {
  description = "Largest number of records handed to one invocation (the reference used 100)."
  type        = number
  default     = 100

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10000
    error_message = "batch_size must be between 1 and 10000."
  }
}

variable "parallelization_factor" {
  description = "Batches processed concurrently per shard (1-10). Records with the same partition key stay in order."
  type        = number
  default     = 1

  validation {
    condition     = var.parallelization_factor >= 1 && var.parallelization_factor <= 10
    error_message = "parallelization_factor must be between 1 and 10."
  }
}

variable "maximum_retry_attempts" {
  description = "Retries of a failing batch before its description goes to the dead-letter queue (-1 = until the records expire)."
  type        = number
  default     = 5

  validation {
    condition     = var.maximum_retry_attempts >= -1 && var.maximum_retry_attempts <= 10000
    error_message = "maximum_retry_attempts must be between -1 and 10000."
  }
}

variable "maximum_record_age_seconds" {
  description = "Records older than this are no longer retried but reported to the dead-letter queue (-1 = until they expire from the stream). Keep it well below the stream retention so the reported records can still be re-read from the stream."
  type        = number
  default     = 21600

  validation {
    condition     = var.maximum_record_age_seconds == -1 || (var.maximum_record_age_seconds >= 60 && var.maximum_record_age_seconds <= 604800)
    error_message = "maximum_record_age_seconds must be -1 or between 60 and 604800."
  }
}

variable "dlq_message_retention_seconds" {
  description = "How long failure reports stay in the dead-letter queue (default: the SQS maximum, 14 days)."
  type        = number
  default     = 1209600
}

# ---------------------------------------------------------------------------
# Alarm
# ---------------------------------------------------------------------------

variable "iterator_age_alarm_threshold_seconds" {
  description = "Alarm when the oldest unprocessed record in the stream is older than this many seconds (the consumer is falling behind)."
  type        = number
  default     = 60
}

variable "alarm_actions" {
  description = "ARNs (e.g. SNS topics) notified when the iterator-age alarm fires or recovers."
  type        = list(string)
  default     = []
}
