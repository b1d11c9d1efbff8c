-- wrk script: POST a 100-byte JSON body, as the reference load script does.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
-- {"index": 12345, "message": "Test message 12345"} padded to exactly 100 bytes.
local body = '{"index": 12345, "message": "Test message 12345", "pad": "'
body = body .. string.rep("x", 100 - #body - 2) .. '"}'
wrk.body = body
