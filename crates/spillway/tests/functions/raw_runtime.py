# A custom runtime written against the Lambda Runtime API by hand (no runtime client),
# the way a `provided.al2023` bootstrap talks to Lambda. It answers each event (an API
# Gateway proxy event) with what it saw: the Runtime API headers, its environment, and
# how the API answered its mistakes. Bodies starting with "big" get a response over
# Lambda's 6 MB limit.
import json
import os
import urllib.error
import urllib.request

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"


def call(method, path, body=None):
    req = urllib.request.Request(API + path, data=body, method=method)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


while True:
    status, headers, body = call("GET", "/invocation/next")
    request_id = headers["Lambda-Runtime-Aws-Request-Id"]
    event = json.loads(body)
    bogus_status, _, bogus_body = call("POST", "/invocation/not-a-request/response", b"{}")
    if event["body"].startswith("big"):
        answer = json.dumps({"statusCode": 200, "body": "x" * (7 * 1024 * 1024)}).encode()
    else:
        seen = {
            "headers": {k.lower(): v for k, v in headers.items() if k.lower().startswith("lambda-runtime")},
            "header_names": sorted(k for k in headers.keys() if k.lower().startswith("lambda-runtime")),
            "env": {k: os.environ.get(k) for k in [
                "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                "AWS_LAMBDA_FUNCTION_VERSION", "_HANDLER", "AWS_REGION",
                "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL", "GREETING",
            ]},
            "bogus": [bogus_status, json.loads(bogus_body)],
        }
        answer = json.dumps({"statusCode": 200, "body": json.dumps(seen)}).encode()
    status, _, reply = call("POST", "/invocation/" + request_id + "/response", answer)
    print("response answered", status, reply.decode()[:80], flush=True)
