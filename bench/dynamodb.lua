-- wrk script: DynamoDB requests (AWS JSON 1.0), signature not verified by the servers
-- under test. ACTION (PutItem, GetItem or Query) from the environment; table "bench",
-- hash key ID (S); items of about 100 bytes.
local action = os.getenv("ACTION") or "PutItem"
wrk.method = "POST"
wrk.path = "/"
wrk.headers["Content-Type"] = "application/x-amz-json-1.0"
wrk.headers["X-Amz-Target"] = "DynamoDB_20120810." .. action
wrk.headers["X-Amz-Date"] = "20261125T120000Z"
wrk.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=test/20261125/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0000000000000000000000000000000000000000000000000000000000000000"
local msg = string.rep("x", 64)
local n = 0
local thread_id = 0
setup = function(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end
request = function()
  n = n + 1
  local id = "item-" .. (tid or 0) .. "-" .. (n % 1000)
  local body
  if action == "PutItem" then
    id = "item-" .. (tid or 0) .. "-" .. n
    body = '{"TableName":"bench","Item":{"ID":{"S":"' .. id .. '"},"Message":{"S":"' .. msg .. '"}}}'
  elseif action == "GetItem" then
    body = '{"TableName":"bench","Key":{"ID":{"S":"' .. id .. '"}}}'
  else
    body = '{"TableName":"bench","KeyConditionExpression":"ID = :id","ExpressionAttributeValues":{":id":{"S":"' .. id .. '"}}}'
  end
  return wrk.format(nil, nil, nil, body)
end
