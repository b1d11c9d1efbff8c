# IteratorAge is how old the last record read by the event source mapping was when
# it was read: near zero while the function keeps up, growing while the stream is
# buffering a spike or while a failing batch is being retried. If it stays high the
# buffer is not draining (too few shards or too little concurrency, a slow table, a
# poison record) and records risk reaching maximum_record_age or the retention.
resource "aws_cloudwatch_metric_alarm" "iterator_age" {
  alarm_name        = local.alarm_name
  alarm_description = "Lambda ${local.function_name} is more than ${var.iterator_age_alarm_threshold_seconds} s behind the stream ${local.stream_name}."

  namespace   = "AWS/Lambda"
  metric_name = "IteratorAge"
  dimensions = {
    FunctionName = aws_lambda_function.this.function_name
  }

  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  # The metric is in milliseconds.
  threshold = var.iterator_age_alarm_threshold_seconds * 1000
  # No invocations means nothing to read, not a backlog.
  treat_missing_data = "notBreaching"

  alarm_actions = var.alarm_actions
  ok_actions    = var.alarm_actions
}
