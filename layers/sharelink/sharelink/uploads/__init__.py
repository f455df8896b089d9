"""What uploading an S3 object version to a provider needs whatever the provider: the object, its bytes read from S3
a range at a time in constant memory, and the refusals known before any call."""

from __future__ import annotations

import hashlib
from collections.abc import Generator, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from sharelink.errors import RequestObjectMissing, RequestUnreadable, StorageUnavailable, UploadRejected
from sharelink.transport import FilePart

__all__ = ["StoredObject", "UploadRejected", "file_part", "md5_of", "read_range"]

MISSING_OBJECT_CODES = {"NoSuchKey", "NoSuchVersion"}
# Bytes handed on at a time: large enough for few calls, small enough that a few streams in flight stay small.
CHUNK = 1024 * 1024
# A GET stream that breaks off (a reset, a read timeout) is opened again where it stopped, this many times at most.
STREAM_RESUMES = 3


@dataclass(frozen=True)
class StoredObject:
    """One version of an S3 object (version_id None in a bucket without versioning)."""

    bucket: str
    key: str
    version_id: str | None
    size: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredObject:
        return cls(data["bucket"], data["key"], data.get("version_id"), int(data["size"]))


def read_range(s3: Any, obj: StoredObject, start: int, length: int) -> Generator[bytes]:
    """Bytes [start, start + length) of the object version, a chunk at a time, exactly `length` of them."""
    position, end, breaks = start, start + length, 0
    while position < end:
        body = _open(s3, obj, position, end)
        try:
            while position < end and (chunk := body.read(min(CHUNK, end - position))):
                position += len(chunk)
                yield chunk
        except BotoCoreError:
            pass  # opened again below, from where it stopped
        finally:
            body.close()
        if position < end:
            breaks += 1
            if breaks > STREAM_RESUMES:
                raise StorageUnavailable(f"reading the object from S3 broke off {breaks} times")


def file_part(s3: Any, obj: StoredObject, name: str, filename: str, start: int, length: int) -> FilePart:
    """A form field streaming bytes [start, start + length) of the object version, read again on every resend."""
    return FilePart(name, filename, length, lambda: read_range(s3, obj, start, length))


def md5_of(chunks: Iterable[bytes]) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    for chunk in chunks:
        md5.update(chunk)
    return md5.hexdigest()


def _open(s3: Any, obj: StoredObject, start: int, end: int) -> Any:
    """The body of a ranged GetObject of that version; a refusal for good (gone, not readable) is permanent."""
    version = {"VersionId": obj.version_id} if obj.version_id else {}
    try:
        return s3.get_object(Bucket=obj.bucket, Key=obj.key, Range=f"bytes={start}-{end - 1}", **version)["Body"]
    except ClientError as error:
        raise read_error(error, "the uploaded object") from None
    except BotoCoreError:
        raise StorageUnavailable("S3 could not be reached to read the object") from None


def read_error(error: ClientError, what: str) -> Exception:
    """An object (version) that is gone or may not be read for good is refused for good; anything else is retried."""
    code = error.response.get("Error", {}).get("Code", "")
    if code in MISSING_OBJECT_CODES:
        return RequestObjectMissing(f"{what} (that version of it) is gone")
    if code == "AccessDenied":
        return RequestUnreadable(f"this function may not read {what}")
    return StorageUnavailable(f"S3 refused to read the object for now ({code or 'no error code'})")
