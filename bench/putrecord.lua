-- wrk script: Kinesis PutRecord (AWS JSON 1.1) of a 100-byte record, as an SDK sends it
-- (signature not verified by the servers under test). The stream name comes from the
-- STREAM environment variable (default example-stream).
local stream = os.getenv("STREAM") or "example-stream"
wrk.method = "POST"
wrk.path = "/"
wrk.headers["Content-Type"] = "application/x-amz-json-1.1"
wrk.headers["X-Amz-Target"] = "Kinesis_20131202.PutRecord"
wrk.headers["X-Amz-Date"] = "20261125T120000Z"
wrk.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=test/20261125/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-target, Signature=0000000000000000000000000000000000000000000000000000000000000000"
-- 100 bytes of data, base64 (136 characters).
local data = "eyJpbmRleCI6IDEyMzQ1LCAibWVzc2FnZSI6ICJUZXN0IG1lc3NhZ2UgMTIzNDUiLCAicGFkIjogInh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4In0="
local n = 0
request = function()
  n = n + 1
  local body = '{"StreamName":"' .. stream .. '","PartitionKey":"pk-' .. n .. '","Data":"' .. data .. '"}'
  return wrk.format(nil, nil, nil, body)
end
