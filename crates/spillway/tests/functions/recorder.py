"""A test function for spillway's "process" kind: logs every invocation, then answers.

Usage: recorder.py MODE LOGFILE
  ok              answer {}
  report-poison   report records whose data contains "poison" in batchItemFailures
  malformed-once  the first invocation answers an itemIdentifier not in the batch
  slow            answer {} after 0.3 s (the log line has the start and end times,
                  so a test can see invocations overlap)
"""
import base64
import json
import os
import sys
import time

mode, log = sys.argv[1], sys.argv[2]
started = time.time()
event = json.load(sys.stdin)
records = []
poisoned = []
for r in event["Records"]:
    data = base64.b64decode(r["kinesis"]["data"]).decode("utf-8")
    records.append({
        "seq": r["kinesis"]["sequenceNumber"],
        "key": r["kinesis"]["partitionKey"],
        "data": data,
        "shard": r["eventID"].split(":")[0],
    })
    if "poison" in data:
        poisoned.append(r["kinesis"]["sequenceNumber"])
if mode == "slow":
    time.sleep(0.3)
line = json.dumps({
    "records": records,
    "first": event["Records"][0],
    "started": started,
    "ended": time.time(),
}) + "\n"
with open(log, "a") as f:
    f.write(line)

if mode in ("ok", "slow"):
    print("{}")
elif mode == "report-poison":
    print(json.dumps({"batchItemFailures": [{"itemIdentifier": s} for s in poisoned]}))
elif mode == "malformed-once":
    marker = log + ".answered"
    if os.path.exists(marker):
        print("{}")
    else:
        open(marker, "w").close()
        print(json.dumps({"batchItemFailures": [{"itemIdentifier": "not-a-sequence-number"}]}))
else:
    sys.exit("unknown mode " + mode)
