"""Files dropped under uploads/<provider>/, notified through SQS: each object version starts one durable execution.

An event source mapping may invoke a function for 15 minutes at most and waits for it, so the upload itself is not
done here: each version starts its provider's durable upload function asynchronously, named after the version.
Lambda answers a start with a name it already ran, and the same payload, with the existing execution: a redelivered
notification starts nothing new.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from sharelink.aws import Session
from sharelink.observability import logger

UPLOADS = "uploads/"
# The upload functions of each provider, by the environment variable naming them.
FUNCTION_VARIABLES = {"123pan": "PAN123_UPLOAD_FUNCTION", "kdocs": "KDOCS_UPLOAD_FUNCTION"}


def execution_name(provider: str, bucket: str, key: str, version_or_etag: str) -> str:
    """One durable execution per object version (at most 64 of [a-zA-Z0-9-_], as Lambda requires)."""
    digest = hashlib.sha256(f"{bucket}\n{key}\n{version_or_etag}".encode()).hexdigest()
    return f"{provider}-{digest[:48]}"


class UploadStarts:
    def __init__(self, lambda_client: Any, functions: dict[str, str]) -> None:
        self.lambda_client = lambda_client
        self.functions = functions

    @classmethod
    def from_env(cls, session: Session) -> UploadStarts:
        functions = {provider: os.environ[variable] for provider, variable in FUNCTION_VARIABLES.items()}
        return cls(session.client("lambda"), functions)

    def handle(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        return dict(process_partial_response(event, self._record, processor, context))

    def _record(self, record: SQSRecord) -> None:
        notification = json.loads(record.body)
        if notification.get("Event") == "s3:TestEvent":
            logger.info("skipping s3:TestEvent", extra={"bucket": notification.get("Bucket")})
            return
        for entry in notification.get("Records", []):
            try:
                self._start(entry["s3"])
            except Exception:
                logger.exception("could not start an upload; the notification will come back")
                raise

    def _start(self, s3: dict[str, Any]) -> None:
        key = unquote_plus(s3["object"]["key"])  # S3 URL-encodes keys in notifications
        provider = key.removeprefix(UPLOADS).split("/", 1)[0] if key.startswith(UPLOADS) else ""
        if provider not in self.functions or key.endswith("/"):
            logger.info("skipping an object that is not an upload", extra={"key": key})
            return
        version = s3["object"].get("versionId")
        obj = {"bucket": s3["bucket"]["name"], "key": key, "version_id": version, "size": int(s3["object"]["size"])}
        name = execution_name(provider, obj["bucket"], key, version or s3["object"].get("eTag", ""))
        try:
            self.lambda_client.invoke(
                FunctionName=self.functions[provider],
                InvocationType="Event",
                DurableExecutionName=name,
                Payload=json.dumps({"object": obj, "execution": name}).encode(),
            )
        except self.lambda_client.exceptions.DurableExecutionAlreadyStartedException:
            logger.info("this version's upload was started already", extra={"key": key, "execution": name})
            return
        logger.info("upload started", extra={"key": key, "execution": name})
