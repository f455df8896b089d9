"""123pan share requests from S3, through SQS: one batch at a time, failures reported per record."""

# Imported before anything loads pydantic: Powertools' batch utility builds its parser models (SQS, Kinesis,
# DynamoDB streams, Kafka; ~36 ms of cold start) when it finds pydantic loaded, and this function uses none of them.
import aws_lambda_powertools.utilities.batch  # noqa: F401
from aws_lambda_powertools.utilities.typing import LambdaContext

from sharelink import aws
from sharelink.observability import logger, metrics, tracer
from sharelink.providers.pan123 import Pan123
from sharelink.storage_events import ShareRequests

session = aws.session()
share_requests = ShareRequests.from_env(Pan123.from_env(session), session)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return share_requests.handle(event, context)
