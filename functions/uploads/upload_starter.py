"""Files dropped under uploads/<provider>/ (S3 -> SQS): start each version's durable upload, once."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from sharelink import aws
from sharelink.observability import logger, metrics, tracer
from sharelink.upload_starts import UploadStarts

upload_starts = UploadStarts.from_env(aws.session())


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return upload_starts.handle(event, context)
