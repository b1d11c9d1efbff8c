# The DynamoDB table the function writes to: one item per request, keyed by a
# string ID. On-demand billing follows the function's write rate without capacity
# planning (the event source mapping already smooths the spike).
resource "aws_dynamodb_table" "this" {
  name         = local.table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "ID"

  attribute {
    name = "ID"
    type = "S"
  }
}
