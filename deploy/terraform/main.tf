# "Buffer the spike": API Gateway -> Kinesis Data Streams -> Lambda -> DynamoDB.
#
# Clients POST a JSON body to the stage root. API Gateway writes it straight into a
# Kinesis stream with a service (AWS) integration, so a burst of requests never
# reaches Lambda directly and cannot throttle it. Lambda's event source mapping
# polls the stream and invokes the function with batches of records at a rate the
# function (and the table) can sustain; the stream absorbs the difference.
#
# Files:
#   api.tf       REST API, POST method, Kinesis integration, responses, stage
#   stream.tf    the Kinesis data stream
#   table.tf     the DynamoDB table
#   function.tf  the Rust function, its role, log group, dead-letter queue and
#                the event source mapping
#   alarms.tf    IteratorAge alarm (the signal that the buffer is growing)
#
# Corrections and additions relative to the reference write-up:
#   * The integration request template is a complete JSON object, and the
#     integration sends Kinesis the Content-Type it expects.
#   * Method and integration responses exist for 200, 4xx and 5xx. Without a
#     response matching 5xx, a Kinesis 5xx became API Gateway's own opaque
#     "No match for output mapping" 500.
#   * The deployment is redeployed whenever the method, integration or any
#     response changes (the reference only watched the integration), and it waits
#     for the responses to exist.
#   * Lambda may call dynamodb:BatchWriteItem as well as PutItem (the Rust
#     function writes a batch of records at once), and its log permissions are
#     limited to its own log group, which is created here with a retention
#     instead of being auto-created with logs kept forever.
#   * The table name reaches the function through TABLE_NAME instead of being
#     hard-coded in the handler.
#   * The function is the Rust reference on provided.al2023, packaged by
#     deploy/build-function.sh (no archive provider).
#   * The event source mapping no longer retries a poison batch until the record
#     expires (blocking the shard for a day): it splits failing batches, honours
#     partial batch responses, caps retries and record age, and reports what it
#     gives up on to an SQS dead-letter queue.
#   * The event source mapping is created only after the role can read the stream
#     (AWS validates the permissions when the mapping is created).
#   * An alarm on IteratorAge tells you when the buffer keeps growing.

locals {
  api_name      = "${var.name_prefix}${var.api_name}"
  stream_name   = "${var.name_prefix}${var.stream_name}"
  table_name    = "${var.name_prefix}${var.table_name}"
  function_name = "${var.name_prefix}${var.function_name}"

  apigw_role_name  = "${var.name_prefix}apigw_kinesis_role"
  lambda_role_name = "${var.name_prefix}lambda_kinesis_to_dynamo_role"
  dlq_name         = "${var.name_prefix}${var.function_name}-dlq"
  alarm_name       = "${var.name_prefix}${var.function_name}-iterator-age"
}
