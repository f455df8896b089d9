"""KDocs share links over the HTTP API: parse, call the layer, return."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from sharelink import aws
from sharelink.api import IdempotencyKey, create_app, responses
from sharelink.idempotency import ByIdempotencyKey
from sharelink.observability import logger, metrics
from sharelink.providers.kdocs import FILE_TOKEN_PATTERN, MAX_FILE_TOKEN, CreateLinkRequest, Kdocs, KdocsShare

app = create_app()
session = aws.session()
kdocs = Kdocs.from_env(session)
create_link_once: ByIdempotencyKey[CreateLinkRequest, KdocsShare] = ByIdempotencyKey(
    kdocs, KdocsShare, session, name="kdocs-create"
)
FileTokenInPath = Annotated[str, Path(pattern=FILE_TOKEN_PATTERN, max_length=MAX_FILE_TOKEN)]


@app.post(
    "/v1/shares/kdocs",
    tags=["KDocs"],
    summary="Create or update the share link of one KDocs file",
    responses=responses(200, "The file's link", errors=(403, 404, 409, 503)),
)
def create_or_update_link(
    request: Annotated[CreateLinkRequest, Body()], idempotency_key: IdempotencyKey = None
) -> KdocsShare:
    share = create_link_once(idempotency_key, request, app.lambda_context)
    metrics.add_metric(name="SharesCreated", unit=MetricUnit.Count, value=1)
    return share


@app.get(
    "/v1/shares/kdocs/<file_token>",
    tags=["KDocs"],
    summary="Read a KDocs file's current share link",
    responses=responses(200, "The file's link", errors=(403, 404)),
)
def read_link(file_token: FileTokenInPath) -> KdocsShare:
    return kdocs.read_share(file_token)


@app.delete(
    "/v1/shares/kdocs/<file_token>",
    tags=["KDocs"],
    summary="Close a KDocs file's share link (status close)",
    responses=responses(200, "The closed link", errors=(403, 404)),
)
def close_link(file_token: FileTokenInPath) -> KdocsShare:
    return kdocs.close_share(file_token)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
