# The reference write-up's Python function, as it runs on AWS Lambda (python3.12,
# handler lambda_function.lambda_handler), unchanged but for this comment: boto3's
# Table.put_item once per record with a random uuid4 ID. Under spillway it runs through
# the Lambda Runtime API (`python3 -m awslambdaric reference_handler.lambda_handler`),
# and boto3 finds spillway's DynamoDB API through AWS_ENDPOINT_URL.
import base64
import json
import uuid

import boto3

# DynamoDB resource, made once per instance (at init)
dynamodb = boto3.resource('dynamodb')
table = dynamodb.Table('example-table')


def lambda_handler(event, context):
    """Decodes each base64 Kinesis record and writes it to example-table."""
    for record in event['Records']:
        payload = base64.b64decode(record['kinesis']['data'])
        payload_str = payload.decode('utf-8')
        try:
            data = json.loads(payload_str)
        except json.JSONDecodeError:
            data = {"message": payload_str}

        item_id = str(uuid.uuid4())

        table.put_item(
            Item={
                "ID": item_id,
                "Message": data.get("message", "NoMessage"),
            }
        )

    return {
        "statusCode": 200,
        "body": json.dumps({"result": "ok"})
    }
