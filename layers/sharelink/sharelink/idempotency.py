"""Exactly-once effects with Powertools idempotency on DynamoDB: HTTP Idempotency-Key and storage requests."""

from __future__ import annotations

import os
from collections.abc import Callable

import boto3
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, SerializeAsAny

from sharelink.attempts import DEFAULT_SETTLE_S, ONE_DAY, Attempts
from sharelink.errors import IdempotencyConflict
from sharelink.providers.base import RequestModel, ShareProvider
from sharelink.share import Share


def persistence_from_env(session: boto3.Session) -> DynamoDBPersistenceLayer:
    """The table named by IDEMPOTENCY_TABLE (key `id`, TTL attribute `expiration`)."""
    return DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE"], boto3_session=session)


def attempts_from_env(session: boto3.Session) -> Attempts:
    """Attempt records and claims live in the same table."""
    settle_s = float(os.environ.get("PROVIDER_SETTLE_S") or DEFAULT_SETTLE_S)
    return Attempts(session.client("dynamodb"), os.environ["IDEMPOTENCY_TABLE"], settle_s=settle_s)


class Keyed(BaseModel):
    """What an Idempotency-Key protects: the key itself, and the body it was first sent with."""

    key: str
    body: SerializeAsAny[BaseModel]


def by_idempotency_key[Request: RequestModel, Answer: Share](
    provider: ShareProvider, answer_model: type[Answer], session: boto3.Session, name: str
) -> Callable[[str | None, Request, LambdaContext], Answer]:
    """The provider's create, made replayable by key: same key and body answer the first answer, another body is
    409, and a retry after an unknown outcome reconciles with the provider before it creates (sharelink.attempts)."""
    store = persistence_from_env(session)
    attempts = attempts_from_env(session)
    config = IdempotencyConfig(
        event_key_jmespath="key", payload_validation_jmespath="body", expires_after_seconds=ONE_DAY
    )

    @idempotent_function(
        data_keyword_argument="keyed",
        persistence_store=store,
        config=config,
        output_serializer=PydanticSerializer(answer_model),
        key_prefix=name,
    )
    def replayable(keyed: Keyed) -> Answer:
        return attempts.create_once(f"{name}:{keyed.key}", keyed.body, provider)  # type: ignore[return-value, arg-type]

    def run(key: str | None, request: Request, context: LambdaContext) -> Answer:
        if not key:
            return provider.create_share(request)  # type: ignore[return-value]
        config.register_lambda_context(context)
        try:
            return replayable(keyed=Keyed(key=key, body=request))
        except IdempotencyValidationError:
            raise IdempotencyConflict("this Idempotency-Key was used with another body") from None
        except IdempotencyAlreadyInProgressError:
            raise IdempotencyConflict("a request with this Idempotency-Key is still in progress") from None

    return run
