#!/usr/bin/env python3
"""Extracts what spillway's request layer (crates/spillway/src/api/model) needs from AWS's
service models, which botocore ships as JSON.

Run it again whenever botocore is upgraded:

    python3 tools/gen_models.py

It writes crates/spillway/src/api/model/kinesis.json and dynamodb.json (both checked in and
embedded into the binary). For each operation it keeps the input shape's name; for each
shape reachable from an input it keeps only what validation reads: the type, members in
model order, the required members, min/max (length for strings, blobs, lists and maps;
value for numbers), pattern, enum values, a list's member and a map's key and value.
Documentation and output shapes are dropped.

`EITHER` below names the members AWS treats as "one of these must be present" although the
model marks neither as required (Kinesis' StreamName / StreamARN): when both are missing the
layer reports the first as `Member must not be null`, as Kinesis answers.
"""
import gzip
import json
import os
import sys

import botocore

SERVICES = [
    ("kinesis", "2013-12-02", "com.amazonaws.kinesis.v20131202"),
    ("dynamodb", "2012-08-10", "com.amazonaws.dynamodb.v20120810"),
]
EITHER = {"kinesis": [["StreamName", "StreamARN"]]}
# Inputs where that rule does not hold (ListShards names its stream by NextToken too).
EITHER_EXEMPT = {"ListShardsInput"}
# Constraints Kinesis enforces in its own validation layer that botocore's copy of the model
# no longer carries (the suite checked against AWS shows them in ValidationException
# messages). The values are today's limits: retention goes to 8,760 hours (one year).
SHAPE_OVERRIDES = {
    "kinesis": {
        "RetentionPeriodHours": {"min": 1, "max": 8760},
        "PositiveIntegerObject": {"max": 100000},
    },
    # Today's model gives the TableName of every action the TableArn shape (1 to 1024
    # characters, no pattern: an ARN may stand for the name). Before ARNs were accepted
    # (the years the dynalite suite was checked against AWS) a name was held to the table
    # name rules, and spillway resolves no ARNs in TableName: the name rules apply.
    # tests/conformance/DEVIATIONS.md says so.
    "dynamodb": {
        "TableArn": {"min": 3, "max": 255, "pattern": "[a-zA-Z0-9_.-]+"},
    },
}
# AWS lists an enum's values in its messages in the order of a Java hash set, which the
# model does not give. Where the suites checked against AWS show that order (kinesalite's and
# dynalite's expected messages), it is recorded here; other enums keep the model's order.
ENUM_ORDER = {
    "kinesis": {
        "ShardIteratorType": ["AFTER_SEQUENCE_NUMBER", "LATEST", "AT_TIMESTAMP", "AT_SEQUENCE_NUMBER", "TRIM_HORIZON"],
    },
    "dynamodb": {
        "BillingMode": ["PROVISIONED", "PAY_PER_REQUEST"],
        "ComparisonOperator": ["IN", "NULL", "BETWEEN", "LT", "NOT_CONTAINS", "EQ", "GT", "NOT_NULL", "NE", "LE",
                               "BEGINS_WITH", "GE", "CONTAINS"],
        "ConditionalOperator": ["OR", "AND"],
        "KeyType": ["HASH", "RANGE"],
        "ProjectionType": ["ALL", "INCLUDE", "KEYS_ONLY"],
        "ReturnConsumedCapacity": ["INDEXES", "TOTAL", "NONE"],
        "ReturnItemCollectionMetrics": ["SIZE", "NONE"],
        "ReturnValue": ["ALL_NEW", "UPDATED_OLD", "ALL_OLD", "NONE", "UPDATED_NEW"],
        "ScalarAttributeType": ["B", "N", "S"],
        "Select": ["SPECIFIC_ATTRIBUTES", "COUNT", "ALL_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES"],
    },
}
KEEP = ("min", "max", "pattern", "enum")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "spillway", "src", "api", "model")


def load(service, version):
    base = os.path.join(os.path.dirname(botocore.__file__), "data", service, version, "service-2.json")
    if os.path.exists(base):
        with open(base) as f:
            return json.load(f)
    with gzip.open(base + ".gz") as f:
        return json.load(f)


def extract(service, version, namespace):
    model = load(service, version)
    shapes = model["shapes"]
    ops = {}
    out = {}

    def visit(name):
        if name in out:
            return
        s = shapes[name]
        t = s["type"]
        d = {"type": t}
        for k in KEEP:
            if k in s:
                d[k] = s[k]
        d.update(SHAPE_OVERRIDES.get(service, {}).get(name, {}))
        if "enum" in d and name in ENUM_ORDER.get(service, {}):
            order = ENUM_ORDER[service][name]
            assert sorted(order) == sorted(d["enum"]), (service, name)
            d["enum"] = order
        out[name] = d
        if t == "structure":
            d["members"] = [[m, v["shape"]] for m, v in s.get("members", {}).items()]
            if s.get("required"):
                d["required"] = s["required"]
            either = [e for e in EITHER.get(service, []) if all(m in s.get("members", {}) for m in e)]
            either = [] if name in EITHER_EXEMPT else either
            either = [e for e in either if not any(m in s.get("required", []) for m in e)]
            if either:
                d["either"] = either
            for _, v in d["members"]:
                visit(v)
        elif t == "list":
            d["member"] = s["member"]["shape"]
            visit(d["member"])
        elif t == "map":
            d["key"] = s["key"]["shape"]
            d["value"] = s["value"]["shape"]
            visit(d["key"])
            visit(d["value"])

    for op, o in sorted(model["operations"].items()):
        if "input" in o:
            ops[op] = o["input"]["shape"]
            visit(ops[op])
        else:
            ops[op] = None
    return {
        "service": service,
        "version": version,
        "namespace": namespace,
        "operations": ops,
        "shapes": dict(sorted(out.items())),
    }


def main():
    for service, version, namespace in SERVICES:
        data = extract(service, version, namespace)
        path = os.path.join(OUT, service + ".json")
        with open(path, "w") as f:
            json.dump(data, f, indent=0, separators=(",", ":"), ensure_ascii=True)
            f.write("\n")
        print(f"{path}: {len(data['operations'])} operations, {len(data['shapes'])} shapes", file=sys.stderr)


if __name__ == "__main__":
    main()
