"""The Kinesis API of a running spillway, driven by boto3, the AWS CLI and raw requests.

Run by tests/kinesis_api.rs with SPILLWAY_ENDPOINT set; the server's config has the
default pipeline, a stream `limited` (1 shard, enforce_limits) and lifecycle delays of
create 1,500 ms and delete 1,000 ms.
"""
import base64
import json
import os
import subprocess
import time
import unittest

import boto3
import botocore
import requests
from botocore.config import Config

ENDPOINT = os.environ["SPILLWAY_ENDPOINT"]
os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def client():
    return boto3.client(
        "kinesis",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        # No retries: the tests look at each answer, throttling included.
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def error_of(call):
    try:
        call()
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"], e.response["Error"]["Message"]
    raise AssertionError("no error")


def raw(target, body, auth=True, content_type="application/x-amz-json-1.1"):
    headers = {"X-Amz-Target": target, "Content-Type": content_type}
    if auth:
        headers["X-Amz-Date"] = "20261125T000000Z"
        headers["Authorization"] = (
            "AWS4-HMAC-SHA256 Credential=test/20261125/us-east-1/kinesis/aws4_request, "
            "SignedHeaders=host, Signature=0"
        )
    return requests.post(ENDPOINT + "/", data=body, headers=headers, timeout=10)


def wait_active(k, name):
    k.get_waiter("stream_exists").wait(
        StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100}
    )


class KinesisApi(unittest.TestCase):
    def test_lifecycle_creating_active_deleting(self):
        k = client()
        k.create_stream(StreamName="life", ShardCount=2)
        d = k.describe_stream_summary(StreamName="life")["StreamDescriptionSummary"]
        self.assertEqual(d["StreamStatus"], "CREATING")
        code, _ = error_of(lambda: k.put_record(StreamName="life", Data=b"x", PartitionKey="a"))
        self.assertEqual(code, "ResourceNotFoundException")
        wait_active(k, "life")
        code, msg = error_of(lambda: k.create_stream(StreamName="life", ShardCount=1))
        self.assertEqual(code, "ResourceInUseException")
        self.assertIn("already exists", msg)
        k.delete_stream(StreamName="life")
        d = k.describe_stream(StreamName="life")["StreamDescription"]
        self.assertEqual(d["StreamStatus"], "DELETING")
        k.get_waiter("stream_not_exists").wait(
            StreamName="life", WaiterConfig={"Delay": 0.1, "MaxAttempts": 100}
        )
        code, _ = error_of(lambda: k.describe_stream(StreamName="life"))
        self.assertEqual(code, "ResourceNotFoundException")
        # Kinesis lets a stream be deleted while it is still CREATING.
        k.create_stream(StreamName="brief", ShardCount=1)
        k.delete_stream(StreamName="brief")
        k.get_waiter("stream_not_exists").wait(
            StreamName="brief", WaiterConfig={"Delay": 0.1, "MaxAttempts": 100}
        )

    def test_describe_list_and_pagination(self):
        k = client()
        for i in range(5):
            k.create_stream(StreamName=f"page-{i}", ShardCount=1)
        k.create_stream(StreamName="wide", ShardCount=7)
        for name in [f"page-{i}" for i in range(5)] + ["wide"]:
            wait_active(k, name)
        names = []
        for page in k.get_paginator("list_streams").paginate(PaginationConfig={"PageSize": 2}):
            names += page["StreamNames"]
        for i in range(5):
            self.assertIn(f"page-{i}", names)
        self.assertEqual(names, sorted(names))
        self.assertEqual(len(names), len(set(names)))

        shards = []
        resp = k.list_shards(StreamName="wide", MaxResults=3)
        shards += resp["Shards"]
        while "NextToken" in resp:
            resp = k.list_shards(NextToken=resp["NextToken"], MaxResults=3)
            shards += resp["Shards"]
        self.assertEqual([s["ShardId"] for s in shards], [f"shardId-{i:012d}" for i in range(7)])
        # Hash ranges tile the space.
        self.assertEqual(shards[0]["HashKeyRange"]["StartingHashKey"], "0")
        self.assertEqual(shards[-1]["HashKeyRange"]["EndingHashKey"], str(2**128 - 1))
        for a, b in zip(shards, shards[1:]):
            self.assertEqual(int(a["HashKeyRange"]["EndingHashKey"]) + 1, int(b["HashKeyRange"]["StartingHashKey"]))
        after = k.list_shards(StreamName="wide", ShardFilter={"Type": "AFTER_SHARD_ID", "ShardId": "shardId-000000000004"})
        self.assertEqual([s["ShardId"] for s in after["Shards"]], ["shardId-000000000005", "shardId-000000000006"])
        code, _ = error_of(lambda: k.list_shards(StreamName="wide", NextToken=resp.get("NextToken", "eyJ9")))
        self.assertEqual(code, "InvalidArgumentException")

        d = k.describe_stream(StreamName="wide", Limit=4)["StreamDescription"]
        self.assertTrue(d["HasMoreShards"])
        self.assertEqual(len(d["Shards"]), 4)
        self.assertEqual(d["RetentionPeriodHours"], 24)
        arn = d["StreamARN"]
        self.assertEqual(arn, "arn:aws:kinesis:us-east-1:000000000000:stream/wide")
        # StreamARN works wherever StreamName does.
        self.assertEqual(k.describe_stream_summary(StreamARN=arn)["StreamDescriptionSummary"]["OpenShardCount"], 7)
        limits = k.describe_limits()
        self.assertEqual(limits["ShardLimit"], 500)
        self.assertGreaterEqual(limits["OpenShardCount"], 8)

    def test_put_and_get_records_every_iterator_type(self):
        k = client()
        k.create_stream(StreamName="rw", ShardCount=1)
        wait_active(k, "rw")
        payloads = [bytes([i]) * (i + 1) + b"\x00\xff" for i in range(10)]
        seqs = []
        for i, p in enumerate(payloads):
            if i == 5:
                # botocore sends timestamps as whole epoch seconds: cross a second boundary.
                mid = int(time.time()) + 1
                time.sleep(mid - time.time() + 0.05)
            seqs.append(k.put_record(StreamName="rw", Data=p, PartitionKey=f"k{i}")["SequenceNumber"])
        self.assertEqual(seqs, sorted(seqs, key=int))

        def read(**kw):
            it = k.get_shard_iterator(StreamName="rw", ShardId="shardId-000000000000", **kw)["ShardIterator"]
            return k.get_records(ShardIterator=it)

        r = read(ShardIteratorType="TRIM_HORIZON")
        self.assertEqual([x["Data"] for x in r["Records"]], payloads)
        self.assertEqual(r["MillisBehindLatest"], 0)
        self.assertIsInstance(r["Records"][0]["ApproximateArrivalTimestamp"].year, int)
        self.assertEqual([x["Data"] for x in read(ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[3])["Records"]], payloads[3:])
        self.assertEqual([x["Data"] for x in read(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[3])["Records"]], payloads[4:])
        self.assertEqual([x["Data"] for x in read(ShardIteratorType="AT_TIMESTAMP", Timestamp=mid)["Records"]], payloads[5:])
        latest = k.get_shard_iterator(StreamName="rw", ShardId="shardId-000000000000", ShardIteratorType="LATEST")["ShardIterator"]
        self.assertEqual(k.get_records(ShardIterator=latest)["Records"], [])
        # Limit and NextShardIterator walk the shard.
        it = k.get_shard_iterator(StreamName="rw", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        got = []
        for _ in range(5):
            r = k.get_records(ShardIterator=it, Limit=3)
            self.assertLessEqual(len(r["Records"]), 3)
            got += [x["Data"] for x in r["Records"]]
            it = r["NextShardIterator"]
        self.assertEqual(got, payloads)
        # ExplicitHashKey picks the shard.
        k.create_stream(StreamName="hashed", ShardCount=4)
        wait_active(k, "hashed")
        r = k.put_record(StreamName="hashed", Data=b"x", PartitionKey="a", ExplicitHashKey=str(2**127 + 1))
        self.assertEqual(r["ShardId"], "shardId-000000000002")

    def test_put_records_and_partial_failures(self):
        k = client()
        resp = k.put_records(StreamName="example-stream", Records=[{"Data": f"r{i}".encode(), "PartitionKey": str(i)} for i in range(3)])
        self.assertEqual(resp["FailedRecordCount"], 0)
        self.assertEqual(len(resp["Records"]), 3)
        # `limited` enforces 1,000 records/s on its one shard: 3 x 500 at once overflows.
        failed = 0
        codes = set()
        for _ in range(3):
            r = k.put_records(StreamName="limited", Records=[{"Data": b"x", "PartitionKey": str(i)} for i in range(500)])
            failed += r["FailedRecordCount"]
            for rec in r["Records"]:
                if "ErrorCode" in rec:
                    codes.add(rec["ErrorCode"])
                    self.assertIn("Rate exceeded for shard shardId-000000000000", rec["ErrorMessage"])
                else:
                    self.assertIn("SequenceNumber", rec)
        self.assertGreater(failed, 0)
        self.assertEqual(codes, {"ProvisionedThroughputExceededException"})
        code, _ = error_of(lambda: k.put_records(StreamName="nope", Records=[{"Data": b"x", "PartitionKey": "a"}]))
        self.assertEqual(code, "ResourceNotFoundException")
        code, msg = error_of(lambda: k.put_records(StreamName="example-stream", Records=[{"Data": b"x", "PartitionKey": "a"}] * 501))
        self.assertEqual(code, "ValidationException")
        self.assertIn("Member must have length less than or equal to 500", msg)
        # Reads too: 5 GetRecords per second per shard.
        it = k.get_shard_iterator(StreamName="limited", ShardId="shardId-000000000000", ShardIteratorType="LATEST")["ShardIterator"]
        codes = []
        for _ in range(12):
            try:
                it = k.get_records(ShardIterator=it, Limit=1)["NextShardIterator"]
                codes.append("ok")
            except botocore.exceptions.ClientError as e:
                codes.append(e.response["Error"]["Code"])
        self.assertIn("ProvisionedThroughputExceededException", codes)
        self.assertGreaterEqual(codes.count("ok"), 5)
        big = b"x" * (1024 * 1024)
        code, _ = error_of(lambda: k.put_records(StreamName="example-stream", Records=[{"Data": big, "PartitionKey": "a"}] * 6))
        self.assertIn(code, ("InvalidArgumentException", "ValidationException"))

    def test_errors_have_kinesis_types_and_wording(self):
        k = client()
        code, msg = error_of(lambda: k.describe_stream(StreamName="missing"))
        self.assertEqual((code, msg), ("ResourceNotFoundException", "Stream missing under account 000000000000 not found."))
        code, msg = error_of(lambda: k.get_records(ShardIterator="AAAAnot-an-iterator"))
        self.assertEqual((code, msg), ("InvalidArgumentException", "Invalid ShardIterator."))
        code, _ = error_of(lambda: k.create_stream(StreamName="huge", ShardCount=100000))
        self.assertEqual(code, "LimitExceededException")
        code, msg = error_of(lambda: k.create_stream(StreamName="bad name!", ShardCount=1))
        self.assertEqual(code, "ValidationException")
        self.assertEqual(msg, "1 validation error detected: Value 'bad name!' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")
        code, _ = error_of(lambda: k.get_shard_iterator(StreamName="example-stream", ShardId="shardId-000000000009", ShardIteratorType="LATEST"))
        self.assertEqual(code, "ResourceNotFoundException")
        code, _ = error_of(lambda: k.get_shard_iterator(StreamName="example-stream", ShardId="shardId-000000000000", ShardIteratorType="AT_SEQUENCE_NUMBER"))
        self.assertEqual(code, "InvalidArgumentException")
        code, msg = error_of(lambda: k.increase_stream_retention_period(StreamName="example-stream", RetentionPeriodHours=9000))
        self.assertEqual(code, "ValidationException")
        self.assertIn("Member must have value less than or equal to 8760", msg)

        r = raw("Kinesis_20131202.ListStreams", "{not json")
        self.assertEqual(r.status_code, 400)
        self.assertEqual(r.json()["__type"], "SerializationException")
        r = raw("Kinesis_20131202.Frobnicate", "{}")
        self.assertEqual(r.json()["__type"], "UnknownOperationException")
        r = raw("Kinesis_20131202.ListStreams", "{}", auth=False)
        self.assertEqual(r.json(), {"__type": "MissingAuthenticationTokenException", "message": "Missing Authentication Token"})
        self.assertEqual(r.headers["Content-Type"], "application/x-amz-json-1.1")
        r = raw("Kinesis_20131202.PutRecord", json.dumps({"StreamName": 5}))
        self.assertEqual(r.json()["__type"], "SerializationException")

    def test_tags_and_retention(self):
        k = client()
        k.create_stream(StreamName="tagged", ShardCount=1)
        wait_active(k, "tagged")
        k.add_tags_to_stream(StreamName="tagged", Tags={"team": "data", "env": "test", "z": "1"})
        tags = k.list_tags_for_stream(StreamName="tagged", Limit=2)
        self.assertEqual([t["Key"] for t in tags["Tags"]], ["env", "team"])
        self.assertTrue(tags["HasMoreTags"])
        k.remove_tags_from_stream(StreamName="tagged", TagKeys=["env"])
        tags = k.list_tags_for_stream(StreamName="tagged")["Tags"]
        self.assertEqual({t["Key"]: t["Value"] for t in tags}, {"team": "data", "z": "1"})
        # Two tags now; four batches of ten reach 42, a fifth would pass 50.
        for batch in "abcd":
            k.add_tags_to_stream(StreamName="tagged", Tags={f"{batch}{i}": "v" for i in range(10)})
        code, _ = error_of(lambda: k.add_tags_to_stream(StreamName="tagged", Tags={f"e{i}": "v" for i in range(10)}))
        self.assertEqual(code, "InvalidArgumentException")
        self.assertEqual(len(k.list_tags_for_stream(StreamName="tagged")["Tags"]), 42)

        k.increase_stream_retention_period(StreamName="tagged", RetentionPeriodHours=48)
        self.assertEqual(k.describe_stream_summary(StreamName="tagged")["StreamDescriptionSummary"]["RetentionPeriodHours"], 48)
        code, msg = error_of(lambda: k.increase_stream_retention_period(StreamName="tagged", RetentionPeriodHours=30))
        self.assertEqual(code, "InvalidArgumentException")
        self.assertIn("can not be shorter", msg)
        k.decrease_stream_retention_period(StreamName="tagged", RetentionPeriodHours=24)
        self.assertEqual(k.describe_stream(StreamName="tagged")["StreamDescription"]["RetentionPeriodHours"], 24)

    def test_one_stream_two_doors(self):
        k = client()
        # A record posted to the ingest route is readable through GetRecords...
        posted = requests.post(ENDPOINT + "/dev", data=b'{"message": "through the front door"}', timeout=10).json()
        it = k.get_shard_iterator(StreamName="example-stream", ShardId=posted["ShardId"], ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=posted["SequenceNumber"])["ShardIterator"]
        self.assertEqual(k.get_records(ShardIterator=it, Limit=1)["Records"][0]["Data"], b'{"message": "through the front door"}')
        # ... and a record put through the API reaches the mapping and the table.
        k.put_record(StreamName="example-stream", Data=b'{"message": "through the API"}', PartitionKey="api")
        deadline = time.time() + 20
        while time.time() < deadline:
            items = requests.get(ENDPOINT + "/_spillway/tables/example-table?limit=1000", timeout=10).json()["items"]
            if any(i["Message"]["S"] == "through the API" for i in items):
                break
            time.sleep(0.1)
        else:
            self.fail("the API's record never reached the table")

    def test_resharding_split_merge_and_update_shard_count(self):
        k = client()
        k.create_stream(StreamName="re", ShardCount=1)
        wait_active(k, "re")
        before = [k.put_record(StreamName="re", Data=f"b{i}".encode(), PartitionKey=f"k{i}")["SequenceNumber"] for i in range(20)]
        k.split_shard(StreamName="re", ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**127))
        wait_active(k, "re")
        shards = {s["ShardId"]: s for s in k.describe_stream(StreamName="re")["StreamDescription"]["Shards"]}
        self.assertEqual(len(shards), 3)
        parent = shards["shardId-000000000000"]
        self.assertEqual(parent["SequenceNumberRange"]["EndingSequenceNumber"], before[-1])
        for child in ("shardId-000000000001", "shardId-000000000002"):
            self.assertEqual(shards[child]["ParentShardId"], "shardId-000000000000")
            self.assertNotIn("EndingSequenceNumber", shards[child]["SequenceNumberRange"])
        self.assertEqual(shards["shardId-000000000001"]["HashKeyRange"], {"StartingHashKey": "0", "EndingHashKey": str(2**127 - 1)})
        # New records go to the children only.
        for i in range(20):
            r = k.put_record(StreamName="re", Data=f"a{i}".encode(), PartitionKey=f"k{i}")
            self.assertIn(r["ShardId"], ("shardId-000000000001", "shardId-000000000002"))
        # The parent reads to its end, then says where to go next.
        it = k.get_shard_iterator(StreamName="re", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        r = k.get_records(ShardIterator=it)
        self.assertEqual([x["SequenceNumber"] for x in r["Records"]], before)
        self.assertIsNone(r.get("NextShardIterator"))
        self.assertEqual(sorted(c["ShardId"] for c in r["ChildShards"]), ["shardId-000000000001", "shardId-000000000002"])
        latest = [s["ShardId"] for s in k.list_shards(StreamName="re", ShardFilter={"Type": "AT_LATEST"})["Shards"]]
        self.assertEqual(latest, ["shardId-000000000001", "shardId-000000000002"])
        code, _ = error_of(lambda: k.split_shard(StreamName="re", ShardToSplit="shardId-000000000000", NewStartingHashKey="5"))
        self.assertEqual(code, "ResourceInUseException")
        # Merge the children back.
        k.merge_shards(StreamName="re", ShardToMerge="shardId-000000000001", AdjacentShardToMerge="shardId-000000000002")
        wait_active(k, "re")
        merged = k.list_shards(StreamName="re")["Shards"][-1]
        self.assertEqual(merged["ShardId"], "shardId-000000000003")
        self.assertEqual(merged["ParentShardId"], "shardId-000000000001")
        self.assertEqual(merged["AdjacentParentShardId"], "shardId-000000000002")
        self.assertEqual(merged["HashKeyRange"], {"StartingHashKey": "0", "EndingHashKey": str(2**128 - 1)})
        code, _ = error_of(lambda: k.merge_shards(StreamName="re", ShardToMerge="shardId-000000000003", AdjacentShardToMerge="shardId-000000000000"))
        self.assertEqual(code, "ResourceInUseException")
        up = k.update_shard_count(StreamName="re", TargetShardCount=2, ScalingType="UNIFORM_SCALING")
        self.assertEqual((up["CurrentShardCount"], up["TargetShardCount"]), (1, 2))
        wait_active(k, "re")
        self.assertEqual(k.describe_stream_summary(StreamName="re")["StreamDescriptionSummary"]["OpenShardCount"], 2)
        code, _ = error_of(lambda: k.update_shard_count(StreamName="re", TargetShardCount=5, ScalingType="UNIFORM_SCALING"))
        self.assertEqual(code, "InvalidArgumentException")

    def test_subscribe_to_shard_pushes_records_as_they_arrive(self):
        k = client()
        name = "fanout"
        k.create_stream(StreamName=name, ShardCount=1)
        wait_active(k, name)
        arn = k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"][
            "StreamARN"
        ]
        consumer = k.register_stream_consumer(StreamARN=arn, ConsumerName="app")[
            "Consumer"
        ]["ConsumerARN"]
        for _ in range(100):
            d = k.describe_stream_consumer(ConsumerARN=consumer)["ConsumerDescription"]
            if d["ConsumerStatus"] == "ACTIVE":
                break
            time.sleep(0.1)
        first = k.put_record(StreamName=name, Data=b"before", PartitionKey="a")
        shard = "shardId-000000000000"
        sub = k.subscribe_to_shard(
            ConsumerARN=consumer,
            ShardId=shard,
            StartingPosition={"Type": "TRIM_HORIZON"},
        )
        got, continuation, sent_after = [], None, False
        started = time.time()
        for ev in sub["EventStream"]:
            e = ev["SubscribeToShardEvent"]
            got.extend(r["Data"] for r in e["Records"])
            continuation = e["ContinuationSequenceNumber"]
            self.assertGreaterEqual(e["MillisBehindLatest"], 0)
            if not sent_after:
                # Pushed while the subscription is open.
                k.put_record(StreamName=name, Data=b"after", PartitionKey="b")
                sent_after = True
            if b"after" in got or time.time() - started > 20:
                break
        sub["EventStream"].close()
        self.assertEqual(got, [b"before", b"after"])

        # Resuming after the continuation sees nothing old; at the first record, all.
        again = k.subscribe_to_shard(
            ConsumerARN=consumer,
            ShardId=shard,
            StartingPosition={"Type": "AT_SEQUENCE_NUMBER", "SequenceNumber": first["SequenceNumber"]},
        )
        e = next(iter(again["EventStream"]))["SubscribeToShardEvent"]
        again["EventStream"].close()
        self.assertEqual([r["Data"] for r in e["Records"]], [b"before", b"after"])
        self.assertEqual(e["ContinuationSequenceNumber"], continuation)
        resumed = k.subscribe_to_shard(
            ConsumerARN=consumer,
            ShardId=shard,
            StartingPosition={"Type": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": continuation},
        )
        e = next(iter(resumed["EventStream"]))["SubscribeToShardEvent"]
        resumed["EventStream"].close()
        self.assertEqual(e["Records"], [])

        # Refusals come before the stream, as plain errors.
        missing = arn + "/consumer/nobody:1"
        code, _ = error_of(
            lambda: k.subscribe_to_shard(
                ConsumerARN=missing, ShardId=shard, StartingPosition={"Type": "LATEST"}
            )
        )
        self.assertEqual(code, "ResourceNotFoundException")
        code, _ = error_of(
            lambda: k.subscribe_to_shard(
                ConsumerARN=consumer,
                ShardId="shardId-000000000009",
                StartingPosition={"Type": "LATEST"},
            )
        )
        self.assertEqual(code, "ResourceNotFoundException")
        code, _ = error_of(
            lambda: k.subscribe_to_shard(
                ConsumerARN=consumer,
                ShardId=shard,
                StartingPosition={"Type": "AT_TIMESTAMP", "Timestamp": time.time() + 3600},
            )
        )
        self.assertEqual(code, "InvalidArgumentException")

    def test_the_aws_cli(self):
        def aws(*args):
            out = subprocess.run(["aws", "--endpoint-url", ENDPOINT, "kinesis", *args], capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stderr)
            return json.loads(out.stdout) if out.stdout.strip() else None

        aws("create-stream", "--stream-name", "cli", "--shard-count", "2")
        aws("wait", "stream-exists", "--stream-name", "cli")
        put = aws("put-record", "--stream-name", "cli", "--partition-key", "a", "--data", "aGVsbG8=")
        self.assertTrue(put["ShardId"].startswith("shardId-"))
        self.assertIn("cli", aws("list-streams")["StreamNames"])
        it = aws("get-shard-iterator", "--stream-name", "cli", "--shard-id", put["ShardId"], "--shard-iterator-type", "TRIM_HORIZON")["ShardIterator"]
        recs = aws("get-records", "--shard-iterator", it)["Records"]
        self.assertEqual(len(recs), 1)
        self.assertEqual(recs[0]["PartitionKey"], "a")


if __name__ == "__main__":
    unittest.main(verbosity=2)
