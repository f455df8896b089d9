"""Scheduled: renew provider tokens that expire soon, and write the secrets back (their single writer)."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from sharelink import aws
from sharelink.observability import logger, metrics, tracer
from sharelink.providers.kdocs import Kdocs
from sharelink.providers.pan123 import Pan123
from sharelink.token_refresh import TokenRefresher

session = aws.session()
refresher = TokenRefresher.from_env(
    {"PAN123_SECRET_ID": Pan123.from_env(session), "KDOCS_SECRET_ID": Kdocs.from_env(session)}, session
)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return refresher.handle(event, context)
