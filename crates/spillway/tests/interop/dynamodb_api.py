"""The DynamoDB API of a running spillway, driven by boto3 (resource and client), the
AWS CLI and raw requests. Run by tests/dynamodb_api.rs with SPILLWAY_ENDPOINT set."""
import json
import os
import subprocess
import time
import unittest
from decimal import Decimal

import boto3
import botocore
import requests
from boto3.dynamodb.conditions import Attr, Key
from botocore.config import Config

ENDPOINT = os.environ["SPILLWAY_ENDPOINT"]
CFG = Config(retries={"total_max_attempts": 1, "mode": "standard"})


def resource():
    return boto3.resource("dynamodb", endpoint_url=ENDPOINT, region_name="us-east-1", config=CFG)


def client():
    return boto3.client("dynamodb", endpoint_url=ENDPOINT, region_name="us-east-1", config=CFG)


def error_of(call):
    try:
        call()
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"], e.response["Error"]["Message"]
    raise AssertionError("no error")


class DynamoDbApi(unittest.TestCase):
    def test_the_reference_function_call(self):
        # Exactly as the reference's Python function writes.
        table = resource().Table("example-table")
        table.put_item(Item={"ID": "ref-1", "Message": "Test message 1"})
        self.assertEqual(table.get_item(Key={"ID": "ref-1"})["Item"], {"ID": "ref-1", "Message": "Test message 1"})
        # And items the pipeline wrote are readable the same way.
        posted = requests.post(ENDPOINT + "/dev", data=b'{"message": "via the pipeline"}', timeout=10)
        self.assertEqual(posted.status_code, 200)
        deadline = time.time() + 20
        while time.time() < deadline:
            items = table.scan(FilterExpression=Attr("Message").eq("via the pipeline"))["Items"]
            if items:
                break
            time.sleep(0.1)
        self.assertEqual(len(items), 1)

    def test_tables_queries_and_expressions(self):
        db = resource()
        c = client()
        t = db.create_table(
            TableName="orders",
            KeySchema=[{"AttributeName": "customer", "KeyType": "HASH"}, {"AttributeName": "at", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "customer", "AttributeType": "S"}, {"AttributeName": "at", "AttributeType": "N"}],
            BillingMode="PAY_PER_REQUEST",
        )
        t.wait_until_exists()
        self.assertIn("orders", c.list_tables()["TableNames"])
        code, msg = error_of(lambda: c.create_table(
            TableName="orders", KeySchema=[{"AttributeName": "x", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "x", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST"))
        self.assertEqual(code, "ResourceInUseException")

        with t.batch_writer() as w:
            for i in range(30):
                w.put_item(Item={"customer": "c1" if i < 20 else "c2", "at": i, "total": Decimal(f"{i}.50"), "status": "open" if i % 2 else "done", "tags": {"a", f"t{i}"}})
        desc = c.describe_table(TableName="orders")["Table"]
        self.assertEqual(desc["ItemCount"], 30)
        self.assertEqual(desc["KeySchema"][1], {"AttributeName": "at", "KeyType": "RANGE"})
        self.assertTrue(desc["TableArn"].endswith(":table/orders"))

        r = t.query(KeyConditionExpression=Key("customer").eq("c1") & Key("at").between(5, 9))
        self.assertEqual([int(i["at"]) for i in r["Items"]], [5, 6, 7, 8, 9])
        r = t.query(KeyConditionExpression=Key("customer").eq("c1"), ScanIndexForward=False, Limit=3)
        self.assertEqual([int(i["at"]) for i in r["Items"]], [19, 18, 17])
        # Paging never skips or repeats.
        seen, kw = [], {}
        while True:
            r = t.query(KeyConditionExpression=Key("customer").eq("c1"), Limit=7, **kw)
            seen += [int(i["at"]) for i in r["Items"]]
            if "LastEvaluatedKey" not in r:
                break
            kw = {"ExclusiveStartKey": r["LastEvaluatedKey"]}
        self.assertEqual(seen, list(range(20)))
        r = t.query(KeyConditionExpression=Key("customer").eq("c1"), FilterExpression=Attr("status").eq("open") & Attr("total").gt(Decimal("10")), ProjectionExpression="#a", ExpressionAttributeNames={"#a": "at"})
        self.assertEqual(r["Items"], [{"at": n} for n in (11, 13, 15, 17, 19)])
        self.assertEqual(r["ScannedCount"], 20)
        r = t.scan(FilterExpression=Attr("tags").contains("t3") | Attr("at").is_in([25, 26]), Select="COUNT")
        self.assertEqual(r["Count"], 3)
        # Parallel scan: the segments partition the table.
        parts = [t.scan(Segment=s, TotalSegments=3)["Items"] for s in range(3)]
        self.assertEqual(sorted((i["customer"], int(i["at"])) for p in parts for i in p), sorted(("c1" if i < 20 else "c2", i) for i in range(30)))

        r = t.update_item(
            Key={"customer": "c1", "at": 1},
            UpdateExpression="SET #t = #t + :d, notes = list_append(if_not_exists(notes, :empty), :n) REMOVE #s ADD tags :x",
            ExpressionAttributeNames={"#s": "status", "#t": "total"},
            ExpressionAttributeValues={":d": Decimal("0.25"), ":empty": [], ":n": ["first"], ":x": {"new"}},
            ReturnValues="ALL_NEW",
        )
        a = r["Attributes"]
        self.assertEqual(a["total"], Decimal("1.75"))
        self.assertEqual(a["notes"], ["first"])
        self.assertNotIn("status", a)
        self.assertEqual(a["tags"], {"a", "t1", "new"})
        # A reserved word used as a name is refused, as DynamoDB refuses it.
        code, msg = error_of(lambda: t.update_item(Key={"customer": "c1", "at": 1}, UpdateExpression="SET total = :v", ExpressionAttributeValues={":v": 5}))
        self.assertEqual((code, msg), ("ValidationException", "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: total"))
        r = t.update_item(Key={"customer": "c1", "at": 1}, UpdateExpression="SET #t = :v", ExpressionAttributeNames={"#t": "total"}, ExpressionAttributeValues={":v": 5}, ReturnValues="UPDATED_OLD")
        self.assertEqual(r["Attributes"], {"total": Decimal("1.75")})
        code, msg = error_of(lambda: t.update_item(Key={"customer": "c1", "at": 1}, UpdateExpression="SET customer = :v", ExpressionAttributeValues={":v": "x"}))
        self.assertEqual(code, "ValidationException")
        self.assertIn("part of the key", msg)

        # Conditions.
        code, _ = error_of(lambda: t.put_item(Item={"customer": "c1", "at": 2}, ConditionExpression=Attr("customer").not_exists()))
        self.assertEqual(code, "ConditionalCheckFailedException")
        t.put_item(Item={"customer": "c9", "at": 1}, ConditionExpression="attribute_not_exists(customer)")
        old = t.delete_item(Key={"customer": "c9", "at": 1}, ReturnValues="ALL_OLD")["Attributes"]
        self.assertEqual(old, {"customer": "c9", "at": 1})
        code, _ = error_of(lambda: t.delete_item(Key={"customer": "c1", "at": 3}, ConditionExpression=Attr("status").eq("done")))
        self.assertEqual(code, "ConditionalCheckFailedException")

        # Exact numbers: 38 digits round-trip.
        big = Decimal("12345678901234567890123456789012345678")
        t.put_item(Item={"customer": "n", "at": 1, "big": big, "small": Decimal("-0.000000000000000000000000000000000001")})
        got = t.get_item(Key={"customer": "n", "at": 1})["Item"]
        self.assertEqual(got["big"], big)
        code, msg = error_of(lambda: c.put_item(TableName="orders", Item={"customer": {"S": "n"}, "at": {"N": "1"}, "bad": {"N": "1e400"}}))
        self.assertEqual(code, "ValidationException")

        got = db.batch_get_item(RequestItems={"orders": {"Keys": [{"customer": "c2", "at": 25}, {"customer": "c2", "at": 99}]}})
        self.assertEqual([int(i["at"]) for i in got["Responses"]["orders"]], [25])
        t.delete()
        code, _ = error_of(lambda: c.describe_table(TableName="orders"))
        self.assertEqual(code, "ResourceNotFoundException")

    def test_transactions_all_or_nothing(self):
        c = client()
        t = resource().Table("example-table")
        t.put_item(Item={"ID": "acct-a", "balance": 100})
        t.put_item(Item={"ID": "acct-b", "balance": 0})
        t.put_item(Item={"ID": "bank-open"})

        def transfer(amount):
            c.transact_write_items(TransactItems=[
                {"Update": {"TableName": "example-table", "Key": {"ID": {"S": "acct-a"}},
                            "UpdateExpression": "SET balance = balance - :x",
                            "ConditionExpression": "balance >= :x",
                            "ExpressionAttributeValues": {":x": {"N": str(amount)}}}},
                {"Update": {"TableName": "example-table", "Key": {"ID": {"S": "acct-b"}},
                            "UpdateExpression": "SET balance = balance + :x",
                            "ExpressionAttributeValues": {":x": {"N": str(amount)}}}},
                {"ConditionCheck": {"TableName": "example-table", "Key": {"ID": {"S": "bank-open"}},
                                    "ConditionExpression": "attribute_exists(ID)"}},
            ])

        transfer(60)
        try:
            transfer(60)
            self.fail("the second transfer should be canceled")
        except botocore.exceptions.ClientError as e:
            self.assertEqual(e.response["Error"]["Code"], "TransactionCanceledException")
            self.assertEqual([r["Code"] for r in e.response["CancellationReasons"]], ["ConditionalCheckFailed", "None", "None"])
        got = c.transact_get_items(TransactItems=[
            {"Get": {"TableName": "example-table", "Key": {"ID": {"S": "acct-a"}}}},
            {"Get": {"TableName": "example-table", "Key": {"ID": {"S": "acct-b"}}}},
            {"Get": {"TableName": "example-table", "Key": {"ID": {"S": "nobody"}}}},
        ])["Responses"]
        self.assertEqual([r.get("Item", {}).get("balance", {}).get("N") for r in got], ["40", "60", None])
        code, msg = error_of(lambda: c.transact_write_items(TransactItems=[
            {"Delete": {"TableName": "example-table", "Key": {"ID": {"S": "acct-a"}}}},
            {"Delete": {"TableName": "example-table", "Key": {"ID": {"S": "acct-a"}}}},
        ]))
        self.assertEqual(code, "ValidationException")
        self.assertIn("multiple operations on one item", msg)

    def test_secondary_indexes(self):
        db = resource()
        t = db.create_table(
            TableName="events",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}, {"AttributeName": "user", "AttributeType": "S"}, {"AttributeName": "ts", "AttributeType": "N"}],
            GlobalSecondaryIndexes=[{"IndexName": "by-user", "KeySchema": [{"AttributeName": "user", "KeyType": "HASH"}, {"AttributeName": "ts", "KeyType": "RANGE"}], "Projection": {"ProjectionType": "KEYS_ONLY"}}],
            BillingMode="PAY_PER_REQUEST",
        )
        t.wait_until_exists()
        with t.batch_writer() as w:
            for i in range(12):
                w.put_item(Item={"id": f"e{i}", "user": "u1" if i % 3 else "u2", "ts": 100 - i, "payload": "x" * i})
            w.put_item(Item={"id": "no-user", "ts": 5})
        desc = client().describe_table(TableName="events")["Table"]
        self.assertEqual(desc["GlobalSecondaryIndexes"][0]["IndexName"], "by-user")
        r = t.query(IndexName="by-user", KeyConditionExpression=Key("user").eq("u2"))
        self.assertEqual([int(i["ts"]) for i in r["Items"]], [91, 94, 97, 100])
        self.assertEqual(set(r["Items"][0]), {"id", "user", "ts"}, "KEYS_ONLY projection")
        r = t.query(IndexName="by-user", KeyConditionExpression=Key("user").eq("u1") & Key("ts").gte(95), ScanIndexForward=False)
        self.assertEqual([int(i["ts"]) for i in r["Items"]], [99, 98, 96, 95])
        seen, kw = [], {}
        while True:
            r = t.query(IndexName="by-user", KeyConditionExpression=Key("user").eq("u1"), Limit=3, **kw)
            seen += [int(i["ts"]) for i in r["Items"]]
            if "LastEvaluatedKey" not in r:
                break
            kw = {"ExclusiveStartKey": r["LastEvaluatedKey"]}
        self.assertEqual(seen, sorted(100 - i for i in range(12) if i % 3))
        self.assertEqual(t.scan(IndexName="by-user", Select="COUNT")["Count"], 12)
        code, _ = error_of(lambda: t.query(IndexName="nope", KeyConditionExpression=Key("user").eq("u1")))
        self.assertEqual(code, "ValidationException")

    def test_table_quota(self):
        c = client()
        made, code = [], None
        for i in range(10):
            try:
                c.create_table(TableName=f"quota-{i}", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                               AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
                made.append(f"quota-{i}")
            except botocore.exceptions.ClientError as e:
                code = e.response["Error"]["Code"]
                break
        self.assertEqual(code, "LimitExceededException")
        self.assertLessEqual(len(c.list_tables()["TableNames"]), 8)
        for name in made:
            c.delete_table(TableName=name)

    def test_errors(self):
        c = client()
        code, msg = error_of(lambda: c.get_item(TableName="missing", Key={"ID": {"S": "x"}}))
        self.assertEqual((code, msg), ("ResourceNotFoundException", "Requested resource not found"))
        code, msg = error_of(lambda: c.get_item(TableName="example-table", Key={"Nope": {"S": "x"}}))
        self.assertEqual((code, msg), ("ValidationException", "The provided key element does not match the schema"))
        code, msg = error_of(lambda: c.scan(TableName="example-table", FilterExpression="Message = :m"))
        self.assertIn("attribute value: :m", msg)
        code, msg = error_of(lambda: c.scan(TableName="example-table", FilterExpression="Message = :m", ExpressionAttributeValues={":m": {"S": "x"}, ":unused": {"S": "y"}}))
        self.assertIn("unused in expressions", msg)
        headers = {"X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": "application/x-amz-json-1.0", "Authorization": "AWS4-HMAC-SHA256 Credential=x/20261125/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0"}
        r = requests.post(ENDPOINT + "/", data="{oops", headers=headers, timeout=10)
        self.assertEqual(r.json()["__type"], "com.amazon.coral.service#SerializationException")
        r = requests.post(ENDPOINT + "/", data=json.dumps({"TableName": "missing"}), headers=headers | {"X-Amz-Target": "DynamoDB_20120810.DescribeTable"}, timeout=10)
        self.assertEqual(r.json()["__type"], "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException")
        self.assertIn("x-amz-crc32", r.headers)

    def test_the_aws_cli(self):
        out = subprocess.run(["aws", "--endpoint-url", ENDPOINT, "dynamodb", "put-item", "--table-name", "example-table", "--item", '{"ID": {"S": "cli"}, "Message": {"S": "from the cli"}}'], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        out = subprocess.run(["aws", "--endpoint-url", ENDPOINT, "dynamodb", "scan", "--table-name", "example-table"], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("from the cli", out.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
