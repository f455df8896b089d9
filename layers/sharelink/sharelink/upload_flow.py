"""Upload and share as a Lambda durable execution: every step is checkpointed, so a replay after an interruption
(a timeout, a crash, the end of an invocation) skips what is done and resumes at the first unfinished step.

An execution is started once per object version (sharelink.upload_starts). Its steps: read the share settings
from the object's metadata (refusing what can never succeed before any provider call), then the provider's own
steps (123pan: hash, folder, create, a step per slice, complete polled through "verifying" with durable
waits between polls; KDocs: one upload), the share (reconciled like any create, sharelink.attempts), and last the
tag, the result object and the event.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

from aws_durable_execution_sdk_python import DurableContext
from aws_durable_execution_sdk_python.config import Duration, MapConfig, StepConfig
from aws_durable_execution_sdk_python.exceptions import DurableOperationError
from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy
from pydantic import ValidationError

from sharelink.attempts import Attempts
from sharelink.aws import Session
from sharelink.errors import OutcomeUnknown, SharelinkError
from sharelink.idempotency import attempts_from_env, dynamodb
from sharelink.observability import logger
from sharelink.providers.base import RequestModel, ShareProvider
from sharelink.providers.kdocs import CreateLinkRequest
from sharelink.providers.pan123 import CreateShareRequest
from sharelink.results import Results
from sharelink.share import rfc3339
from sharelink.upload_starts import UPLOADS
from sharelink.uploads import StoredObject, UploadRejected
from sharelink.uploads.kdocs import KdocsUploads
from sharelink.uploads.pan123 import Pan123Uploads
from sharelink.validation import validation_error

RESULTS = "results/uploads/"
S3_KEY_MAX_BYTES = 1024
URL_TAG = "sharelink-url"
# S3 object tags: 10 an object at most, a value of at most 256 letters, digits, spaces and + - = . _ : / @.
MAX_OBJECT_TAGS = 10
TAG_VALUE = re.compile(r"[\w\s+\-=.:/@]{0,256}")
VERIFY_POLL_S = 2
MAX_PAN123_BYTES = 10 * 1024**3
MAX_VERIFY_POLLS = 600


class TransientError(Exception):
    """A step failed for a passing reason (timeout, 5xx, rate limit, token): it is tried again after a durable wait."""


TRANSIENT_RETRIES = StepConfig(
    retry_strategy=create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=8,
            initial_delay=Duration.from_seconds(5),
            max_delay=Duration.from_minutes(5),
            retryable_errors=[],
            retryable_error_types=[TransientError],
        )
    )
)


@dataclass(frozen=True)
class ShareDefaults:
    """The stack's defaults for what an object's metadata does not say."""

    expire_days: int
    permission: str
    allow_comment: bool
    pan123_folder: str

    @classmethod
    def from_env(cls) -> ShareDefaults:
        return cls(
            expire_days=int(os.environ.get("UPLOAD_EXPIRE_DAYS") or 7),
            permission=os.environ.get("UPLOAD_PERMISSION") or "read",
            allow_comment=(os.environ.get("UPLOAD_ALLOW_COMMENT") or "false") == "true",
            pan123_folder=os.environ.get("PAN123_UPLOAD_FOLDER") or "/sharelink",
        )


@dataclass(frozen=True)
class Upload:
    """The object version an execution uploads, and where its file lands on the provider."""

    obj: StoredObject
    provider: str

    @property
    def relative(self) -> list[str]:
        return self.obj.key.removeprefix(f"{UPLOADS}{self.provider}/").split("/")

    @property
    def filename(self) -> str:
        return self.relative[-1]

    @property
    def folders(self) -> list[str]:
        return self.relative[:-1]

    @property
    def result_key(self) -> str:
        """results/uploads/<provider>/<path>.json. An upload's key may take all of S3's 1,024 bytes, and its result's
        13 more: a path too long is cut and ends with ~ and 16 hex digits of its SHA-256, so it still has its own."""
        path = "/".join(self.relative)
        key = f"{RESULTS}{self.provider}/{path}.json"
        if len(key.encode()) <= S3_KEY_MAX_BYTES:
            return key
        digest = hashlib.sha256(path.encode()).hexdigest()[:16]
        room = S3_KEY_MAX_BYTES - len(f"{RESULTS}{self.provider}/~{digest}.json")
        return f"{RESULTS}{self.provider}/{path.encode()[:room].decode(errors='ignore')}~{digest}.json"

    def describe(self, md5: str | None = None) -> dict[str, Any]:
        return {
            "bucket": self.obj.bucket,
            "key": self.obj.key,
            "version_id": self.obj.version_id,
            "size": self.obj.size,
            "md5": md5,
        }


class ProviderSteps(Protocol):
    """What a provider adds to the flow: its settings and its upload steps."""

    name: ClassVar[str]

    def share_request(self, upload: Upload, metadata: dict[str, str], defaults: ShareDefaults) -> dict[str, Any]:
        """The share's body from metadata and defaults, checked before any upload (raises UploadRejected)."""
        ...

    def upload(self, upload: Upload, defaults: ShareDefaults, steps: Checkpoints) -> dict[str, Any]:
        """Upload the file, a checkpointed step at a time: {"provider_file_id", "path", "instant", "md5"}."""
        ...

    def with_file(self, body: dict[str, Any], file_id: str) -> dict[str, Any]:
        """The share's body naming the uploaded file."""
        ...


class Checkpoints:
    """The durable context as the flow uses it: named steps whose permanent refusals end the flow, and waits."""

    def __init__(self, context: DurableContext) -> None:
        self.context = context

    def run(self, name: str, work: Callable[[], Any], *, idempotent: bool = True) -> Any:
        """Transient failures are retried after durable waits; a permanent one raises Rejected. A step that is not
        `idempotent` is not sent again after a failure that may have taken effect (a timeout, a dropped answer)."""
        outcome = self.context.step(lambda _: _as_outcome(work, idempotent), name=name, config=TRANSIENT_RETRIES)
        if "rejected" in outcome:
            raise Rejected(outcome["rejected"])
        return outcome["value"]

    def each(self, name: str, items: list[Any], work: Callable[[Any], Any], *, concurrency: int) -> None:
        """`work` for every item, `concurrency` at a time, each its own checkpointed step: after an interruption
        only the items not done yet run again."""
        if not items:
            return
        config: MapConfig[Any] = MapConfig(max_concurrency=concurrency)

        def item_step(child: DurableContext, item: Any, index: int, _: Any) -> Any:
            return Checkpoints(child).run(f"{name}-{item}", lambda: work(item))

        self.context.map(items, item_step, name=name, config=config).get_results()

    def wait(self, name: str, seconds: int) -> None:
        """No compute is spent (or billed) while the execution waits."""
        self.context.wait(Duration.from_seconds(seconds), name=name)


class UploadFlow:
    def __init__(
        self,
        steps: ProviderSteps,
        provider: ShareProvider[Any],
        s3: Any,
        results: Results,
        attempts: Attempts,
        defaults: ShareDefaults,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.steps = steps
        self.provider = provider
        self.s3 = s3
        self.results = results
        self.attempts = attempts
        self.defaults = defaults
        self.clock = clock

    @classmethod
    def from_env(cls, steps: ProviderSteps, provider: ShareProvider[Any], session: Session) -> UploadFlow:
        s3 = session.client("s3")
        results = Results(s3, session.client("events"), os.environ.get("EVENT_BUS_NAME", "default"))
        return cls(steps, provider, s3, results, attempts_from_env(dynamodb(session)), ShareDefaults.from_env())

    def run(self, event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
        upload = Upload(StoredObject(**event["object"]), self.steps.name)
        steps = Checkpoints(context)
        try:
            body = steps.run("settings", lambda: self._settings(upload))
            file = self.steps.upload(upload, self.defaults, steps)
            share = steps.run("share", lambda: self._share(event["execution"], body, file["provider_file_id"]))
            result = {
                "status": "created",
                "upload": upload.describe(file.pop("md5")),
                "file": file,
                "share": share,
            }
        except Rejected as rejected:
            result = {"status": "rejected", "upload": upload.describe(), "error": rejected.error}
        except DurableOperationError as failed:  # a step (or a slice of the map) that used up its retries
            error = _error("upload_failed", f"gave up after retries: {failed.message}")
            result = {"status": "rejected", "upload": upload.describe(), "error": error}
        result["processed_at"] = rfc3339(self.clock())
        steps.run("publish", lambda: self._publish(upload, result))
        return result

    def _settings(self, upload: Upload) -> dict[str, Any]:
        head = self.s3.head_object(Bucket=upload.obj.bucket, Key=upload.obj.key, **_version(upload.obj))
        metadata = {name.lower(): value for name, value in head.get("Metadata", {}).items()}
        return self.steps.share_request(upload, metadata, self.defaults)

    def _share(self, execution: str, body: dict[str, Any], file_id: str) -> dict[str, Any]:
        request = self.provider.create_request.model_validate(self.steps.with_file(body, file_id))
        share = self.attempts.create_once(f"upload:{execution}", request, self.provider)
        return share.model_dump(mode="json")

    def _publish(self, upload: Upload, result: dict[str, Any]) -> None:
        """The tag first: whoever sees the result object or the event finds the object tagged already."""
        if result["status"] == "created":
            self._tag(upload.obj, result["share"]["url"])
        self.results.publish(upload.obj.bucket, upload.result_key, result)

    def _tag(self, obj: StoredObject, url: str) -> None:
        """Add the link to the object's own tags (PutObjectTagging replaces them all). Left out, with a warning, when
        the object has S3's 10 tags already or S3 would not take the link as a tag value: the result carries it."""
        where = {"Bucket": obj.bucket, "Key": obj.key, **_version(obj)}
        kept = [tag for tag in self.s3.get_object_tagging(**where)["TagSet"] if tag["Key"] != URL_TAG]
        if len(kept) >= MAX_OBJECT_TAGS or not TAG_VALUE.fullmatch(url):
            logger.warning("the object is not tagged with its link", extra={"key": obj.key, "its_tags": len(kept)})
            return
        self.s3.put_object_tagging(**where, Tagging={"TagSet": [*kept, {"Key": URL_TAG, "Value": url}]})


def checked_request(model: type[RequestModel], body: dict[str, Any], placeholder: dict[str, Any]) -> dict[str, Any]:
    """`body` validated as the share request it will be, with a placeholder for the file not uploaded yet."""
    try:
        model.model_validate(body | placeholder)
    except ValidationError as invalid:
        error = validation_error(invalid.errors())
        raise UploadRejected(f"the object's metadata: {error.message}", details=error.details) from None
    return body


class Rejected(Exception):
    """A step's permanent refusal, carried out of the durable step as data (a step's exceptions are retried)."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message"))
        self.error = error


def _as_outcome(work: Callable[[], Any], idempotent: bool) -> dict[str, Any]:
    try:
        return {"value": work()}
    except SharelinkError as error:
        if error.may_have_acted and not idempotent:
            unknown = OutcomeUnknown(f"{error.message}: it may have taken effect, so it is not sent again")
            return {"rejected": unknown.to_dict() | {"provider": error.provider}}
        if error.transient:
            raise TransientError(f"{error.code}: {error.message}") from error
        return {"rejected": error.to_dict()}


def _version(obj: StoredObject) -> dict[str, str]:
    return {"VersionId": obj.version_id} if obj.version_id else {}


def _no_provider() -> dict[str, Any]:
    return {"details": [], "provider": None, "provider_code": None}


class Pan123Steps:
    """123pan's V2 flow (upload.md): hash, folder, create, slices (unless instant), complete polled, in steps."""

    name: ClassVar[str] = "123pan"
    # Keep both when the name is taken in the folder: an upload never replaces a file someone already shares.
    KEEP_BOTH = 1

    def __init__(self, uploads: Pan123Uploads, *, slice_concurrency: int = 4) -> None:
        self.uploads = uploads
        self.slice_concurrency = slice_concurrency

    def share_request(self, upload: Upload, metadata: dict[str, str], defaults: ShareDefaults) -> dict[str, Any]:
        if upload.obj.size > MAX_PAN123_BYTES:
            raise UploadRejected(f"the file is over 123pan's {MAX_PAN123_BYTES // 1024**3} GiB")
        body: dict[str, Any] = {
            "name": upload.filename,
            "expire_days": _metadata_int(metadata, "expire-days", defaults.expire_days),
        }
        if "password" in metadata:
            body["password"] = metadata["password"]
        return checked_request(CreateShareRequest, body, {"file_ids": [1]})

    def upload(self, upload: Upload, defaults: ShareDefaults, steps: Checkpoints) -> dict[str, Any]:
        digest = steps.run("hash", lambda: self.uploads.digest(upload.obj))
        parent = steps.run("folder", lambda: self.uploads.folder(upload.folders))
        folders = [part for part in defaults.pan123_folder.split("/") if part] + upload.folders
        created = steps.run("create", lambda: self.uploads.create(parent, upload.filename, digest, self.KEEP_BOTH))
        file_id = created["file_id"] if created["reuse"] else self._transfer(upload, digest, created, steps)
        return {
            "provider_file_id": str(file_id),
            "path": "/" + "/".join([*folders, upload.filename]),
            "instant": bool(created["reuse"]),
            "md5": digest["md5"],
        }

    def with_file(self, body: dict[str, Any], file_id: str) -> dict[str, Any]:
        return body | {"file_ids": [int(file_id)]}

    def _transfer(self, upload: Upload, digest: dict[str, Any], created: dict[str, Any], steps: Checkpoints) -> int:
        slices = list(range(1, math.ceil(upload.obj.size / created["slice_size"]) + 1))

        def one_slice(number: int) -> list[int]:
            return self.uploads.upload_slices(upload.obj, created, digest, [number])

        steps.each("slice", slices, one_slice, concurrency=self.slice_concurrency)
        for poll in range(MAX_VERIFY_POLLS):
            file_id = steps.run(f"complete-{poll}", lambda: self.uploads.complete(created))
            if file_id:
                return int(file_id)
            steps.wait(f"verifying-{poll}", VERIFY_POLL_S)
        raise Rejected(_error("upload_failed", f"123pan still verified the file after {MAX_VERIFY_POLLS} polls"))


class KdocsSteps:
    """KDocs takes documents in one multipart request, under the app's folder plus the key's folders."""

    name: ClassVar[str] = "kdocs"

    def __init__(self, uploads: KdocsUploads) -> None:
        self.uploads = uploads

    def share_request(self, upload: Upload, metadata: dict[str, str], defaults: ShareDefaults) -> dict[str, Any]:
        self.uploads.check_type(upload.filename)
        body: dict[str, Any] = {
            "permission": metadata.get("permission", defaults.permission),
            "expire_days": _metadata_int(metadata, "expire-days", defaults.expire_days),
            "allow_comment": _metadata_bool(metadata, "allow-comment", defaults.allow_comment),
        }
        return checked_request(CreateLinkRequest, body, {"file_token": "placeholder"})

    def with_file(self, body: dict[str, Any], file_id: str) -> dict[str, Any]:
        return body | {"file_token": file_id}

    def upload(self, upload: Upload, defaults: ShareDefaults, steps: Checkpoints) -> dict[str, Any]:
        # One multipart POST makes the file: after a timeout it may exist, and a resend would make a second one.
        token = steps.run(
            "upload", lambda: self.uploads.upload(upload.obj, upload.filename, upload.folders), idempotent=False
        )
        return {
            "provider_file_id": token,
            "path": "/" + "/".join([*upload.folders, upload.filename]),
            "instant": False,
            "md5": None,
        }


def _metadata_int(metadata: dict[str, str], name: str, default: int) -> Any:
    """A metadata value as the number it must be; text that is not one is left for validation to name."""
    value = metadata.get(name)
    if value is None:
        return default
    return int(value) if value.isascii() and value.isdigit() and len(value) < 10 else value


def _metadata_bool(metadata: dict[str, str], name: str, default: bool) -> Any:
    value = metadata.get(name)
    return default if value is None else {"true": True, "false": False}.get(value.lower(), value)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message} | _no_provider()
