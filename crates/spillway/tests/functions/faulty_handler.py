# A Lambda handler that misbehaves on request, for the Runtime API host's fault tests.
# Run as `python3 -m awslambdaric faulty_handler.<handler>`.
#
# Records whose data contains "slow" make the invocation outlive any short timeout,
# "crash" kills the process mid-batch, "raise" raises (a function error the runtime
# reports). Other records are written to the table named by TABLE_NAME, with the
# instance's pid, and `pid_handler` sleeps SLEEP_MS per invocation so that invocations
# overlap. With INIT_FAIL_MARKER set, the first instance to start fails its init (the
# marker file records that it has), and every later one starts normally.
import base64
import json
import os
import time
from decimal import Decimal

import boto3

marker = os.environ.get("INIT_FAIL_MARKER")
if marker and not os.path.exists(marker):
    open(marker, "w").close()
    raise RuntimeError("init failed on purpose (first instance)")
if os.environ.get("INIT_ALWAYS_FAIL"):
    raise RuntimeError("init always fails")
hang = os.environ.get("INIT_HANG_MARKER")
if hang and not os.path.exists(hang):
    # The first instance never finishes its init (past Lambda's 10 s init limit).
    open(hang, "w").close()
    time.sleep(120)

table = boto3.resource("dynamodb").Table(os.environ.get("TABLE_NAME", "example-table"))


def _write(record, **extra):
    text = base64.b64decode(record["kinesis"]["data"]).decode("utf-8")
    item = {"ID": record["eventID"], "Message": text, "Pid": os.getpid(), **extra}
    table.put_item(Item=item)


def handler(event, context):
    for record in event["Records"]:
        text = base64.b64decode(record["kinesis"]["data"]).decode("utf-8")
        if "slow" in text:
            time.sleep(30)
        if "crash" in text:
            print("crashing on purpose", flush=True)
            os._exit(3)
        if "raise" in text:
            raise ValueError("bad record: " + text)
        _write(record)
    return {}


def pid_handler(event, context):
    """Records, in every item, the instance's pid and the invocation's start and end."""
    start = time.time()
    time.sleep(int(os.environ.get("SLEEP_MS", "0")) / 1000)
    end = time.time()
    for record in event["Records"]:
        _write(record, Start=Decimal(repr(start)), End=Decimal(repr(end)))
    return {}


def proxy_handler(event, context):
    """API Gateway proxy integration: echoes the body and names the instance."""
    return {
        "statusCode": 201,
        "headers": {"x-instance-pid": str(os.getpid())},
        "body": json.dumps({"echo": event["body"], "remaining_ms": context.get_remaining_time_in_millis()}),
    }
