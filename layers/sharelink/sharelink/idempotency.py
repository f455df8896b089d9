"""Exactly-once effects with Powertools idempotency on DynamoDB: HTTP Idempotency-Key and storage requests."""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, SerializeAsAny

from sharelink.attempts import DEFAULT_SETTLE_S, ONE_DAY, Attempts
from sharelink.aws import Session
from sharelink.errors import IdempotencyConflict
from sharelink.providers.base import RequestModel, ShareProvider
from sharelink.share import Share

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

# botocore's default pool is 10 connections; a client shared by more threads than that waits for one.
DEFAULT_CONNECTIONS = 10


def dynamodb(session: Session, connections: int = DEFAULT_CONNECTIONS) -> Any:
    """The one DynamoDB client of a function: Powertools' idempotency records and the attempts share it."""
    from botocore.config import Config

    return session.client("dynamodb", config=Config(max_pool_connections=connections))


def persistence_from_env(table_client: Any) -> DynamoDBPersistenceLayer:
    """The table named by IDEMPOTENCY_TABLE (key `id`, TTL attribute `expiration`)."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer  # imports boto3

    return DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE"], boto3_client=table_client)


def attempts_from_env(table_client: Any) -> Attempts:
    """Attempt records and claims live in the same table."""
    settle_s = float(os.environ.get("PROVIDER_SETTLE_S") or DEFAULT_SETTLE_S)
    return Attempts(table_client, os.environ["IDEMPOTENCY_TABLE"], settle_s=settle_s)


class Keyed(BaseModel):
    """What an Idempotency-Key protects: the key itself, and the body it was first sent with."""

    key: str
    body: SerializeAsAny[BaseModel]


class ByIdempotencyKey[Request: RequestModel, Answer: Share]:
    """The provider's create, made replayable by key: same key and body answer the first answer, another body is
    409, and a retry after an unknown outcome reconciles with the provider before it creates (sharelink.attempts).
    A request without a key creates directly: Powertools idempotency, boto3 and the table's client load on the
    first keyed request, so the others never pay for them."""

    def __init__(self, provider: ShareProvider, answer_model: type[Answer], session: Session, name: str) -> None:
        self.provider = provider
        self.answer_model = answer_model
        self.session = session
        self.name = name

    def __call__(self, key: str | None, request: Request, context: LambdaContext) -> Answer:
        if not key:
            return self.provider.create_share(request)  # type: ignore[return-value]
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyValidationError,
        )

        self.config.register_lambda_context(context)
        try:
            return self.replayable(keyed=Keyed(key=key, body=request))
        except IdempotencyValidationError:
            raise IdempotencyConflict("this Idempotency-Key was used with another body") from None
        except IdempotencyAlreadyInProgressError:
            raise IdempotencyConflict("a request with this Idempotency-Key is still in progress") from None

    @cached_property
    def config(self) -> IdempotencyConfig:
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

        return IdempotencyConfig(
            event_key_jmespath="key", payload_validation_jmespath="body", expires_after_seconds=ONE_DAY
        )

    @cached_property
    def replayable(self) -> Any:
        from aws_lambda_powertools.utilities.idempotency import idempotent_function
        from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer

        table = dynamodb(self.session)
        attempts = attempts_from_env(table)

        @idempotent_function(
            data_keyword_argument="keyed",
            persistence_store=persistence_from_env(table),
            config=self.config,
            output_serializer=PydanticSerializer(self.answer_model),
            key_prefix=self.name,
        )
        def replayable(keyed: Keyed) -> Share:
            return attempts.create_once(f"{self.name}:{keyed.key}", keyed.body, self.provider)  # type: ignore[arg-type]

        return replayable
