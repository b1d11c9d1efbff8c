# The Kinesis data stream: the buffer between the API and the function.
#
# Provisioned mode with an explicit shard count, as in the reference: each shard
# accepts 1 MB/s or 1000 records/s of writes and serves 2 MB/s of reads. The
# retention is stated explicitly (24 hours, the minimum) because it bounds how long
# a backlog, or a batch reported to the dead-letter queue, can still be read back.
resource "aws_kinesis_stream" "this" {
  name             = local.stream_name
  shard_count      = var.shard_count
  retention_period = var.stream_retention_hours

  stream_mode_details {
    stream_mode = "PROVISIONED"
  }
}
