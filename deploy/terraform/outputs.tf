output "invoke_url" {
  description = "POST JSON bodies to this URL (the stage root; no extra path)."
  value       = aws_api_gateway_stage.this.invoke_url
}

output "rest_api_id" {
  description = "ID of the REST API."
  value       = aws_api_gateway_rest_api.this.id
}

output "stream_name" {
  description = "Name of the Kinesis data stream."
  value       = aws_kinesis_stream.this.name
}

output "stream_arn" {
  description = "ARN of the Kinesis data stream."
  value       = aws_kinesis_stream.this.arn
}

output "table_name" {
  description = "Name of the DynamoDB table."
  value       = aws_dynamodb_table.this.name
}

output "function_name" {
  description = "Name of the Lambda function."
  value       = aws_lambda_function.this.function_name
}

output "event_source_mapping_uuid" {
  description = "UUID of the stream -> function event source mapping."
  value       = aws_lambda_event_source_mapping.stream.uuid
}

output "dlq_url" {
  description = "URL of the SQS queue receiving descriptions of batches the function gave up on."
  value       = aws_sqs_queue.dlq.url
}

output "iterator_age_alarm_name" {
  description = "Name of the IteratorAge alarm."
  value       = aws_cloudwatch_metric_alarm.iterator_age.alarm_name
}
