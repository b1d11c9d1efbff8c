"""Lambda's control plane on a running spillway, driven by boto3 and the AWS CLI.

Run by tests/lambda_api.rs in two phases (SPILLWAY_PHASE): `create` makes a Python
function from a zip, invokes it, maps the default stream to it and sees its items;
after the harness kills the server with SIGKILL and starts it again on the same data
dir, `restart` finds the function and the mapping still there and working, then
deletes them.
"""
import base64
import hashlib
import io
import json
import os
import subprocess
import time
import unittest
import urllib.request
import zipfile

import boto3
import botocore
from botocore.config import Config

ENDPOINT = os.environ["SPILLWAY_ENDPOINT"]
PHASE = os.environ.get("SPILLWAY_PHASE", "create")
REGION = "us-east-1"
FUNCTION = "py-writer"
TABLE = "lambda-api-items"
STREAM_ARN = f"arn:aws:kinesis:{REGION}:000000000000:stream/example-stream"

HANDLER = f'''
import base64, json
import boto3

def handler(event, context):
    if "Records" in event:
        table = boto3.resource("dynamodb").Table("{TABLE}")
        for r in event["Records"]:
            table.put_item(Item={{
                "ID": r["kinesis"]["sequenceNumber"],
                "Message": base64.b64decode(r["kinesis"]["data"]).decode(),
            }})
        return {{}}
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {{"echo": event, "function": context.function_name}}
'''


def client(service):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def code_zip():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("app.py", HANDLER)
    return out.getvalue()


def cli(*args):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": REGION}
    out = subprocess.run(["aws", "--endpoint-url", ENDPOINT, *args], env=env,
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)}: {out.stderr}")
    return json.loads(out.stdout) if out.stdout.strip() else None


def error_code(call):
    try:
        call()
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError("no error")


def wait_for_items(n, seconds=30):
    table = client("dynamodb")
    deadline = time.monotonic() + seconds
    while True:
        items = table.scan(TableName=TABLE)["Items"]
        if len(items) >= n or time.monotonic() > deadline:
            return sorted(i["Message"]["S"] for i in items)
        time.sleep(0.3)


class Create(unittest.TestCase):
    def test_1_create_get_list(self):
        lam = client("lambda")
        zipped = code_zip()
        created = lam.create_function(
            FunctionName=FUNCTION, Runtime="python3.12", Handler="app.handler",
            Role="arn:aws:iam::000000000000:role/writer", Code={"ZipFile": zipped},
            Timeout=10, Environment={"Variables": {"MODE": "test"}},
            Tags={"team": "data"},
        )
        self.assertEqual(created["State"], "Active")
        self.assertEqual(created["CodeSha256"],
                         base64.b64encode(hashlib.sha256(zipped).digest()).decode())
        self.assertEqual(created["FunctionArn"],
                         f"arn:aws:lambda:{REGION}:000000000000:function:{FUNCTION}")
        got = lam.get_function(FunctionName=created["FunctionArn"])
        self.assertEqual(got["Configuration"]["Environment"]["Variables"], {"MODE": "test"})
        self.assertEqual(got["Configuration"]["LastUpdateStatus"], "Successful")
        self.assertEqual(got["Tags"], {"team": "data"})
        self.assertIn(FUNCTION, [f["FunctionName"] for f in lam.list_functions()["Functions"]])
        self.assertEqual(error_code(lambda: lam.create_function(
            FunctionName=FUNCTION, Runtime="python3.12", Handler="app.handler",
            Role="arn:aws:iam::000000000000:role/writer", Code={"ZipFile": zipped})),
            "ResourceConflictException")
        self.assertEqual(error_code(lambda: lam.get_function(FunctionName="nope")),
                         "ResourceNotFoundException")

    def test_2_invoke(self):
        lam = client("lambda")
        r = lam.invoke(FunctionName=FUNCTION, Payload=json.dumps({"a": 1}))
        self.assertEqual(r["StatusCode"], 200)
        self.assertNotIn("FunctionError", r)
        self.assertEqual(json.loads(r["Payload"].read()), {"echo": {"a": 1}, "function": FUNCTION})
        r = lam.invoke(FunctionName=FUNCTION, Payload=json.dumps({"fail": True}))
        self.assertEqual(r["FunctionError"], "Unhandled")
        body = json.loads(r["Payload"].read())
        self.assertEqual(body["errorType"], "ValueError")
        self.assertEqual(body["errorMessage"], "asked to fail")
        r = lam.invoke(FunctionName=FUNCTION, InvocationType="Event", Payload=b"{}")
        self.assertEqual(r["StatusCode"], 202)

    def test_3_mapping_feeds_the_function(self):
        client("dynamodb").create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "ID", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "ID", "AttributeType": "S"}],
        )
        client("dynamodb").get_waiter("table_exists").wait(TableName=TABLE)
        m = client("lambda").create_event_source_mapping(
            FunctionName=FUNCTION, EventSourceArn=STREAM_ARN,
            StartingPosition="TRIM_HORIZON", BatchSize=10,
        )
        self.assertEqual(m["State"], "Creating")
        self.assertEqual(m["BatchSize"], 10)
        listed = cli("lambda", "list-event-source-mappings", "--function-name", FUNCTION)
        self.assertEqual([x["UUID"] for x in listed["EventSourceMappings"]], [m["UUID"]])
        self.assertEqual(listed["EventSourceMappings"][0]["State"], "Enabled")
        kinesis = client("kinesis")
        for i in range(5):
            kinesis.put_record(StreamName="example-stream", PartitionKey=f"k{i}",
                               Data=f"before-{i}".encode())
        self.assertEqual(wait_for_items(5), [f"before-{i}" for i in range(5)])


class Restart(unittest.TestCase):
    def test_1_survives_and_keeps_working(self):
        lam = client("lambda")
        self.assertEqual(lam.get_function(FunctionName=FUNCTION)["Configuration"]["Runtime"],
                         "python3.12")
        mappings = lam.list_event_source_mappings(EventSourceArn=STREAM_ARN)["EventSourceMappings"]
        mine = [m for m in mappings if m["FunctionArn"].endswith(f":function:{FUNCTION}")]
        self.assertEqual(len(mine), 1)
        client("kinesis").put_record(StreamName="example-stream", PartitionKey="k",
                                     Data=b"after-restart")
        items = wait_for_items(6)
        # Every record once: the checkpoint survived, nothing was read twice.
        self.assertEqual(items, sorted([f"before-{i}" for i in range(5)] + ["after-restart"]))

        # The inspection API lists what the control plane made, after the restart too.
        listed = json.loads(urllib.request.urlopen(ENDPOINT + "/_spillway/resources").read())
        self.assertIn({"kind": "lambda.function", "name": FUNCTION}, listed)
        self.assertIn({"kind": "lambda.mapping", "name": mine[0]["UUID"]}, listed)

        updated = lam.update_event_source_mapping(UUID=mine[0]["UUID"], BatchSize=5)
        self.assertEqual(updated["BatchSize"], 5)
        self.assertEqual(lam.get_event_source_mapping(UUID=mine[0]["UUID"])["BatchSize"], 5)
        deleted = lam.delete_event_source_mapping(UUID=mine[0]["UUID"])
        self.assertEqual(deleted["State"], "Deleting")
        self.assertEqual(error_code(lambda: lam.get_event_source_mapping(UUID=mine[0]["UUID"])),
                         "ResourceNotFoundException")
        lam.delete_function(FunctionName=FUNCTION)
        listed = json.loads(urllib.request.urlopen(ENDPOINT + "/_spillway/resources").read())
        self.assertEqual([r for r in listed if r["kind"].startswith("lambda.")], [])
        self.assertEqual(error_code(lambda: lam.invoke(FunctionName=FUNCTION, Payload=b"{}")),
                         "ResourceNotFoundException")

    def test_2_unimplemented_operations_are_named(self):
        lam = client("lambda")
        try:
            lam.list_layers()
        except botocore.exceptions.ClientError as e:
            self.assertEqual(e.response["ResponseMetadata"]["HTTPStatusCode"], 400)
            self.assertIn("GET /2018-10-31/layers", e.response["Error"]["Message"])
        else:
            raise AssertionError("ListLayers answered")


if __name__ == "__main__":
    suite = unittest.TestLoader().loadTestsFromTestCase(Create if PHASE == "create" else Restart)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    raise SystemExit(0 if result.wasSuccessful() else 1)
