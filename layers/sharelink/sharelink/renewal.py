"""Asking the tokens function (the single writer of the secrets) to renew a token the provider rejects now."""

from __future__ import annotations

import hashlib
import json
import os
from functools import cached_property
from typing import Any

from sharelink.aws import Session
from sharelink.observability import logger


def fingerprint(token: str) -> str:
    """Names a token without revealing it: the tokens function renews only if the stored token is still this one."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class RenewalRequests:
    """A message per rejected token on the tokens function's queue (TOKEN_RENEWAL_QUEUE_URL)."""

    def __init__(self, session: Session, queue_url: str) -> None:
        self.session = session
        self.queue_url = queue_url

    @classmethod
    def from_env(cls, session: Session) -> RenewalRequests | None:
        queue_url = os.environ.get("TOKEN_RENEWAL_QUEUE_URL")
        return cls(session, queue_url) if queue_url else None

    @cached_property
    def sqs(self) -> Any:
        return self.session.client("sqs")

    def ask(self, provider: str, rejected_token: str) -> None:
        """Best effort: the caller's answer is the same whether or not the request could be queued."""
        from botocore.exceptions import BotoCoreError, ClientError  # the AWS SDK only on this rare path

        body = json.dumps({"provider": provider, "rejected": fingerprint(rejected_token)})
        try:
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)
        except (BotoCoreError, ClientError) as error:
            logger.error("could not ask for a token renewal", extra={"provider": provider, "reason": str(error)})
        else:
            logger.warning("asked the tokens function to renew the rejected token", extra={"provider": provider})
