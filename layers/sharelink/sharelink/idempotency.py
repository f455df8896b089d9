"""Exactly-once effects with Powertools idempotency on DynamoDB: HTTP Idempotency-Key and storage requests."""

from __future__ import annotations

import os
from collections.abc import Callable

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

from sharelink.errors import IdempotencyConflict

ONE_DAY = 24 * 3600


def persistence_from_env() -> DynamoDBPersistenceLayer:
    """The table named by IDEMPOTENCY_TABLE (key `id`, TTL attribute `expiration`)."""
    return DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE"])


class Keyed(BaseModel):
    """What an Idempotency-Key protects: the key itself, and the body it was first sent with."""

    key: str
    body: SerializeAsAny[BaseModel]


def by_idempotency_key[Request: BaseModel, Answer: BaseModel](
    call: Callable[[Request], Answer],
    answer_model: type[Answer],
    store: DynamoDBPersistenceLayer,
    name: str,
) -> Callable[[str | None, Request, LambdaContext], Answer]:
    """`call`, made replayable by key: same key and body answer the first answer, another body is 409."""
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
        return call(keyed.body)  # type: ignore[arg-type]

    def run(key: str | None, request: Request, context: LambdaContext) -> Answer:
        if not key:
            return call(request)
        config.register_lambda_context(context)
        try:
            return replayable(keyed=Keyed(key=key, body=request))
        except IdempotencyValidationError:
            raise IdempotencyConflict("this Idempotency-Key was used with another body") from None
        except IdempotencyAlreadyInProgressError:
            raise IdempotencyConflict("a request with this Idempotency-Key is still in progress") from None

    return run
