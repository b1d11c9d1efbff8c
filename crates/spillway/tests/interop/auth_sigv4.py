"""SigV4 verification of a running spillway, signed by botocore (boto3's signer).

Run by tests/auth.rs with SPILLWAY_ENDPOINT set; the server's config has the default
pipeline, region us-east-1 and [security] verify_signatures = true with the credentials
below (RIGHT, and TEMP with its session token).
"""
import datetime
import os
import re
import unittest
from unittest import mock

import boto3
import botocore
import botocore.auth
import requests
from botocore.auth import S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

ENDPOINT = os.environ["SPILLWAY_ENDPOINT"]
REGION = "us-east-1"
RIGHT = Credentials("AKIDSPILLWAYTEST", "right-secret")
WRONG = Credentials("AKIDSPILLWAYTEST", "wrong-secret")
UNKNOWN = Credentials("AKIDNOBODYKNOWS", "right-secret")
TEMP = Credentials("ASIASPILLWAYTEMP", "temp-secret", "session-token-1")

MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
INVALID_TOKEN = "The security token included in the request is invalid."
JSON_11 = "application/x-amz-json-1.1"
JSON_10 = "application/x-amz-json-1.0"


def client(service, creds=RIGHT, region=REGION):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=region,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        aws_session_token=creds.token,
        # One attempt: botocore would otherwise retry (and correct its clock) on
        # some of these refusals.
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def error_of(call):
    try:
        call()
    except botocore.exceptions.ClientError as e:
        err = e.response["Error"]
        return e.response["ResponseMetadata"]["HTTPStatusCode"], err["Code"], err["Message"]
    raise AssertionError("no error")


def at(minutes_ago):
    """Patches botocore's clock to `minutes_ago` minutes in the past."""
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=minutes_ago)
    return mock.patch.object(botocore.auth, "get_current_datetime", return_value=when)


def target_of(service):
    return "Kinesis_20131202" if service == "kinesis" else "DynamoDB_20120810"


def signed_post(service, action, body=b"{}", creds=RIGHT, region=REGION,
                sign_as=None, content_type=None, extra_headers=None):
    """POST / signed by botocore's SigV4Auth with the header form."""
    headers = {
        "X-Amz-Target": f"{target_of(service)}.{action}",
        "Content-Type": content_type or (JSON_11 if service == "kinesis" else JSON_10),
    }
    headers.update(extra_headers or {})
    req = AWSRequest(method="POST", url=ENDPOINT + "/", data=body, headers=headers)
    SigV4Auth(creds, sign_as or service, region).add_auth(req)
    return requests.post(ENDPOINT + "/", data=body, headers=dict(req.headers.items()), timeout=10)


def presigned_post(service, action, creds=RIGHT, expires=300, unsigned_payload=False):
    """POST / signed in the query-string form by botocore, the target and content type
    as signed headers. SigV4QueryAuth hashes the (empty) body; with `unsigned_payload`,
    S3SigV4QueryAuth signs UNSIGNED-PAYLOAD (as presigned URLs usually do) and the
    request carries a body after all."""
    headers = {
        "X-Amz-Target": f"{target_of(service)}.{action}",
        "Content-Type": JSON_11 if service == "kinesis" else JSON_10,
    }
    req = AWSRequest(method="POST", url=ENDPOINT + "/", headers=headers)
    signer = S3SigV4QueryAuth if unsigned_payload else SigV4QueryAuth
    signer(creds, service, REGION, expires=expires).add_auth(req)
    assert "X-Amz-Signature=" in req.url, req.url
    body = b"{}" if unsigned_payload else b""
    return requests.post(req.url, data=body, headers=headers, timeout=10)


class RightSecret(unittest.TestCase):
    def test_boto3_with_the_right_secret_uses_both_apis(self):
        k = client("kinesis")
        k.create_stream(StreamName="signed", ShardCount=1)
        k.get_waiter("stream_exists").wait(StreamName="signed", WaiterConfig={"Delay": 0.1})
        put = k.put_record(StreamName="signed", Data=b"hello", PartitionKey="p")
        self.assertEqual(put["ShardId"], "shardId-000000000000")
        self.assertIn("signed", k.list_streams()["StreamNames"])

        d = client("dynamodb")
        d.put_item(TableName="example-table", Item={"ID": {"S": "a"}, "Message": {"S": "hi"}})
        got = d.get_item(TableName="example-table", Key={"ID": {"S": "a"}})
        self.assertEqual(got["Item"]["Message"], {"S": "hi"})
        self.assertIn("example-table", d.list_tables()["TableNames"])

    def test_cbor_bodies_are_verified(self):
        # {} in CBOR, as the Java SDK sends ListStreams.
        r = signed_post("kinesis", "ListStreams", body=b"\xa0", content_type="application/x-amz-cbor-1.1")
        self.assertEqual(r.status_code, 200, r.content)
        self.assertEqual(r.headers["Content-Type"], "application/x-amz-cbor-1.1")
        r = signed_post("kinesis", "ListStreams", body=b"\xa0", creds=WRONG,
                        content_type="application/x-amz-cbor-1.1")
        self.assertEqual(r.status_code, 400)
        self.assertEqual(r.headers["Content-Type"], "application/x-amz-cbor-1.1")
        self.assertIn(b"InvalidSignatureException", r.content)

    def test_query_string_signatures_work(self):
        # Kinesis refuses an empty body (SerializationException) before it looks at the
        # signature, so its requests carry "{}" under UNSIGNED-PAYLOAD.
        r = presigned_post("kinesis", "ListStreams", unsigned_payload=True)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertIn("example-stream", r.json()["StreamNames"])
        r = presigned_post("dynamodb", "ListTables")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertIn("example-table", r.json()["TableNames"])
        r = presigned_post("dynamodb", "ListTables", unsigned_payload=True)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertIn("example-table", r.json()["TableNames"])
        r = presigned_post("kinesis", "ListStreams", creds=WRONG, unsigned_payload=True)
        self.assertEqual(r.json()["__type"], "InvalidSignatureException")
        # X-Amz-Expires bounds a query-string signature's life.
        with at(minutes_ago=2):
            r = presigned_post("kinesis", "ListStreams", expires=60, unsigned_payload=True)
        self.assertEqual(r.status_code, 400)
        self.assertEqual(r.json()["__type"], "InvalidSignatureException")
        self.assertRegex(r.json()["message"], r"^Signature expired: \d{8}T\d{6}Z is now earlier than ")


class Refused(unittest.TestCase):
    def test_a_wrong_secret_is_refused_and_deletes_nothing(self):
        status, code, message = error_of(
            lambda: client("kinesis", WRONG).delete_stream(StreamName="example-stream"))
        self.assertEqual((status, code), (400, "InvalidSignatureException"))
        self.assertTrue(message.startswith(MISMATCH), message)
        status, code, message = error_of(
            lambda: client("dynamodb", WRONG).delete_table(TableName="example-table"))
        self.assertEqual((status, code), (400, "InvalidSignatureException"))
        self.assertTrue(message.startswith(MISMATCH), message)
        r = signed_post("dynamodb", "DeleteTable", b'{"TableName": "example-table"}', creds=WRONG)
        self.assertEqual(r.json()["__type"], "com.amazon.coral.service#InvalidSignatureException")

        desc = client("kinesis").describe_stream_summary(StreamName="example-stream")
        self.assertEqual(desc["StreamDescriptionSummary"]["StreamStatus"], "ACTIVE")
        self.assertEqual(client("dynamodb").describe_table(TableName="example-table")["Table"]["TableStatus"], "ACTIVE")

    def test_garbage_authorization_is_an_incomplete_signature(self):
        r = requests.post(ENDPOINT + "/", data="{}", timeout=10, headers={
            "X-Amz-Target": "Kinesis_20131202.DeleteStream", "Content-Type": JSON_11,
            "Authorization": "garbage"})
        self.assertEqual(r.status_code, 400)
        self.assertEqual(r.json(), {
            "__type": "IncompleteSignatureException",
            "message": "Authorization header requires 'Credential' parameter. "
                       "Authorization header requires 'Signature' parameter. "
                       "Authorization header requires 'SignedHeaders' parameter. "
                       "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
                       "Authorization=garbage"})
        # DynamoDB looks only into SigV4's header: anything else is no token at all.
        r = requests.post(ENDPOINT + "/", data="{}", timeout=10, headers={
            "X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": JSON_10,
            "Authorization": "garbage"})
        self.assertEqual((r.status_code, r.json()["__type"]),
                         (400, "com.amazon.coral.service#MissingAuthenticationTokenException"))
        r = requests.post(ENDPOINT + "/", data="{}", timeout=10, headers={
            "X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": JSON_10,
            "Authorization": "AWS4-HMAC-SHA256 garbage", "X-Amz-Date": "20261130T000000Z"})
        self.assertEqual(r.status_code, 400)
        self.assertEqual(r.json(), {
            "__type": "com.amazon.coral.service#IncompleteSignatureException",
            "message": "Authorization header requires 'Credential' parameter. "
                       "Authorization header requires 'Signature' parameter. "
                       "Authorization header requires 'SignedHeaders' parameter. "
                       "Authorization=AWS4-HMAC-SHA256 garbage"})

    def test_an_unknown_access_key_is_an_unrecognized_client(self):
        status, code, message = error_of(lambda: client("kinesis", UNKNOWN).list_streams())
        self.assertEqual((status, code, message), (400, "UnrecognizedClientException", INVALID_TOKEN))
        status, code, message = error_of(lambda: client("dynamodb", UNKNOWN).list_tables())
        self.assertEqual((status, code, message), (400, "UnrecognizedClientException", INVALID_TOKEN))

    def test_a_request_signed_20_minutes_ago_has_expired(self):
        with at(minutes_ago=20):
            r = signed_post("kinesis", "ListStreams")
        self.assertEqual(r.status_code, 400)
        body = r.json()
        self.assertEqual(body["__type"], "InvalidSignatureException")
        self.assertRegex(body["message"],
                         r"^Signature expired: (\d{8}T\d{6}Z) is now earlier than \d{8}T\d{6}Z "
                         r"\(\d{8}T\d{6}Z - 15 min\.\)$")
        self.assertEqual(re.match(r"Signature expired: (\S+)", body["message"]).group(1),
                         r.request.headers["X-Amz-Date"])
        with at(minutes_ago=20):
            r = signed_post("dynamodb", "ListTables")
        self.assertEqual(r.json()["__type"], "com.amazon.coral.service#InvalidSignatureException")
        self.assertTrue(r.json()["message"].startswith("Signature expired: "))
        # Within the 15 minutes: fine.
        with at(minutes_ago=10):
            self.assertEqual(signed_post("kinesis", "ListStreams").status_code, 200)

    def test_the_scope_must_name_this_region_and_the_targets_service(self):
        status, code, message = error_of(lambda: client("kinesis", region="eu-west-1").list_streams())
        self.assertEqual((status, code), (400, "InvalidSignatureException"))
        self.assertEqual(message, "Credential should be scoped to a valid region, not 'eu-west-1'.")
        status, code, message = error_of(lambda: client("dynamodb", region="eu-west-1").list_tables())
        self.assertEqual((status, code), (400, "InvalidSignatureException"))

        r = signed_post("kinesis", "ListStreams", sign_as="dynamodb")
        self.assertEqual(r.json(), {"__type": "InvalidSignatureException",
                                    "message": "Credential should be scoped to correct service: 'kinesis'."})
        r = signed_post("dynamodb", "ListTables", sign_as="kinesis")
        self.assertEqual(r.json(), {"__type": "com.amazon.coral.service#InvalidSignatureException",
                                    "message": "Credential should be scoped to correct service: 'dynamodb'."})

    def test_unsigned_requests_are_still_missing_a_token(self):
        r = requests.post(ENDPOINT + "/", data="{}", timeout=10, headers={
            "X-Amz-Target": "Kinesis_20131202.ListStreams", "Content-Type": JSON_11})
        self.assertEqual(r.json(), {"__type": "MissingAuthenticationTokenException",
                                    "message": "Missing Authentication Token"})


class SessionTokens(unittest.TestCase):
    def test_a_temporary_credential_needs_its_session_token(self):
        self.assertIn("example-stream", client("kinesis", TEMP).list_streams()["StreamNames"])
        wrong_token = Credentials(TEMP.access_key, TEMP.secret_key, "another-token")
        status, code, message = error_of(lambda: client("kinesis", wrong_token).list_streams())
        self.assertEqual((status, code), (400, "UnrecognizedClientException"))
        self.assertEqual(message, "The security token included in the request is invalid")
        no_token = Credentials(TEMP.access_key, TEMP.secret_key)
        status, code, message = error_of(lambda: client("dynamodb", no_token).list_tables())
        self.assertEqual((status, code, message), (400, "UnrecognizedClientException", INVALID_TOKEN))


if __name__ == "__main__":
    unittest.main(verbosity=2)
