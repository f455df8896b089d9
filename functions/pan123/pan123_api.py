"""123pan share links over the HTTP API: parse, call the layer, return."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import AfterValidator, BeforeValidator

from sharelink import aws
from sharelink.api import IdempotencyKey, create_app, json_response, responses
from sharelink.idempotency import ByIdempotencyKey
from sharelink.observability import logger, metrics
from sharelink.providers.pan123 import CreateShareRequest, Pan123, SharePage, TrafficUpdate, TrafficUpdated
from sharelink.share import Share
from sharelink.validation import ascii_digits, fits_int64

app = create_app()
session = aws.session()
pan123 = Pan123.from_env(session)
create_share_once: ByIdempotencyKey[CreateShareRequest, Share] = ByIdempotencyKey(
    pan123, Share, session, name="pan123-create"
)


@app.post(
    "/v1/shares/123pan",
    tags=["123pan"],
    summary="Create a 123pan share",
    responses=responses(201, "The share", errors=(404, 409, 503)),
)
def create_share(
    request: Annotated[CreateShareRequest, Body()], idempotency_key: IdempotencyKey = None
) -> Response[Share]:
    share = create_share_once(idempotency_key, request, app.lambda_context)
    metrics.add_metric(name="SharesCreated", unit=MetricUnit.Count, value=1)
    return json_response(201, share)


@app.get(
    "/v1/shares/123pan",
    tags=["123pan"],
    summary="List 123pan shares, a page at a time",
    responses=responses(200, "A page of shares"),
)
def list_shares(
    limit: Annotated[int, BeforeValidator(ascii_digits), Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,19}$"), AfterValidator(fits_int64)] = None,
) -> SharePage:
    return pan123.list_shares(limit=limit, cursor=cursor)


@app.patch(
    "/v1/shares/123pan",
    tags=["123pan"],
    summary="Change the traffic settings of up to 100 shares",
    responses=responses(200, "The shares changed"),
)
def update_traffic(request: Annotated[TrafficUpdate, Body()]) -> TrafficUpdated:
    return pan123.update_traffic(request)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
