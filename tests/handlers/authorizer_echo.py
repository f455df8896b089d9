"""An HTTP API function for the gateway authorization tests: it answers its event's requestContext.authorizer."""

import json


def lambda_handler(event, context):
    authorizer = event["requestContext"].get("authorizer")
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(authorizer)}
