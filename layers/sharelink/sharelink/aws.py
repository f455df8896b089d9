"""The one boto3 Session of a function, made on first use: a function that never calls AWS never imports boto3."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from sharelink.observability import tracer

if TYPE_CHECKING:
    import boto3

CREDENTIALS = {
    "aws_access_key_id": "AWS_ACCESS_KEY_ID",
    "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "aws_session_token": "AWS_SESSION_TOKEN",
}


class Session:
    """Every AWS client of a function (Powertools' included) comes from one boto3 Session, made on the first
    `client()` call with the credentials the environment held when this object was made: whenever a client is
    made, it acts as the function's role (Lambda's credentials are fixed for the life of an execution environment)."""

    def __init__(self) -> None:
        self._credentials = {argument: os.environ.get(name) for argument, name in CREDENTIALS.items()}
        self._making = threading.Lock()
        self._made: boto3.Session | None = None

    @property
    def boto3(self) -> boto3.Session:
        with self._making:
            if self._made is None:
                import boto3  # not at the top: a request without Idempotency-Key needs no AWS SDK

                tracer.patch(["botocore"])
                self._made = boto3.Session(**self._credentials)
            return self._made

    def client(self, service_name: str, **kwargs: Any) -> Any:
        return self.boto3.client(service_name, **kwargs)


def session() -> Session:
    return Session()
