"""Reading an S3 object version for an upload: ranged, chunked, resumed where a stream broke off, errors typed."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ResponseStreamingError

from sharelink.errors import RequestObjectMissing, RequestUnreadable, StorageUnavailable
from sharelink.uploads import CHUNK, STREAM_RESUMES, StoredObject, md5_of, read_range
from sharelink.uploads.pan123 import Pan123Uploads

OBJ = StoredObject("bucket", "uploads/123pan/a.bin", "v1", 0)
RANGE = re.compile(r"bytes=(\d+)-(\d+)")


class Body:
    def __init__(self, data: bytes, breaks_after: int | None) -> None:
        self.data, self.breaks_after, self.position, self.closed = data, breaks_after, 0, False

    def read(self, size: int) -> bytes:
        if self.breaks_after is not None:
            if self.position >= self.breaks_after:
                raise ResponseStreamingError(error="connection reset")
            size = min(size, self.breaks_after - self.position)
        chunk = self.data[self.position : self.position + size]
        self.position += len(chunk)
        return chunk

    def close(self) -> None:
        self.closed = True


class S3:
    """GetObject with a Range; the first `breaks` streams break off after `break_after` bytes."""

    def __init__(self, data: bytes, *, breaks: int = 0, break_after: int = 10, error: Exception | None = None):
        self.data, self.breaks, self.break_after, self.error = data, breaks, break_after, error
        self.calls: list[dict] = []
        self.bodies: list[Body] = []

    def get_object(self, **params):
        self.calls.append(params)
        if self.error:
            raise self.error
        start, end = map(int, RANGE.fullmatch(params["Range"]).groups())
        breaking = len(self.calls) <= self.breaks
        self.bodies.append(Body(self.data[start : end + 1], self.break_after if breaking else None))
        return {"Body": self.bodies[-1]}


def data(size: int) -> bytes:
    return bytes(index % 241 for index in range(size))


def test_a_range_of_the_version_comes_in_chunks():
    s3 = S3(data(3 * CHUNK))

    chunks = list(read_range(s3, OBJ, 5, 2 * CHUNK + 3))

    assert b"".join(chunks) == data(3 * CHUNK)[5 : 2 * CHUNK + 8]
    assert max(map(len, chunks)) == CHUNK
    assert s3.calls == [
        {"Bucket": "bucket", "Key": "uploads/123pan/a.bin", "Range": f"bytes=5-{2 * CHUNK + 7}", "VersionId": "v1"}
    ]
    assert s3.bodies[0].closed


def test_without_a_version_no_version_id_is_sent():
    s3 = S3(data(10))

    list(read_range(s3, StoredObject("bucket", "k", None, 10), 0, 10))

    assert "VersionId" not in s3.calls[0]


def test_nothing_is_read_for_no_bytes():
    s3 = S3(b"")

    assert list(read_range(s3, OBJ, 0, 0)) == []
    assert s3.calls == []


def test_a_stream_that_breaks_off_is_opened_again_where_it_stopped():
    s3 = S3(data(100), breaks=STREAM_RESUMES, break_after=10)

    assert b"".join(read_range(s3, OBJ, 0, 100)) == data(100)
    assert [call["Range"] for call in s3.calls] == ["bytes=0-99", "bytes=10-99", "bytes=20-99", "bytes=30-99"]
    assert all(body.closed for body in s3.bodies)


def test_a_stream_that_keeps_breaking_off_is_storage_unavailable():
    s3 = S3(data(100), breaks=STREAM_RESUMES + 1, break_after=10)

    with pytest.raises(StorageUnavailable) as raised:
        b"".join(read_range(s3, OBJ, 0, 100))

    assert raised.value.transient


def test_a_stream_that_ends_early_is_opened_again():
    class Short(S3):
        def get_object(self, **params):
            answer = super().get_object(**params)
            if len(self.calls) == 1:
                answer["Body"].data = answer["Body"].data[:40]
            return answer

    s3 = Short(data(100))

    assert b"".join(read_range(s3, OBJ, 0, 100)) == data(100)
    assert s3.calls[1]["Range"] == "bytes=40-99"


def test_a_reader_closed_halfway_closes_its_stream():
    s3 = S3(data(3 * CHUNK))
    reader = read_range(s3, OBJ, 0, 3 * CHUNK)
    next(reader)

    reader.close()

    assert s3.bodies[0].closed


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("NoSuchKey", RequestObjectMissing),
        ("NoSuchVersion", RequestObjectMissing),
        ("AccessDenied", RequestUnreadable),
        ("SlowDown", StorageUnavailable),
        ("InternalError", StorageUnavailable),
    ],
)
def test_s3_refusals_are_typed(code, error):
    s3 = S3(b"", error=ClientError({"Error": {"Code": code, "Message": "no"}}, "GetObject"))

    with pytest.raises(error) as raised:
        list(read_range(s3, OBJ, 0, 10))

    assert raised.value.transient == (error is StorageUnavailable)


def test_s3_out_of_reach_is_storage_unavailable():
    s3 = S3(b"", error=EndpointConnectionError(endpoint_url="https://s3"))

    with pytest.raises(StorageUnavailable):
        list(read_range(s3, OBJ, 0, 10))


def test_the_digest_hashes_the_whole_and_each_slice_in_one_read():
    content = data(2 * CHUNK + 100)
    obj = StoredObject("bucket", "k", "v1", len(content))
    s3 = S3(content)

    digest = Pan123Uploads(None, s3).digest(obj, CHUNK)

    assert digest == {
        "md5": hashlib.md5(content).hexdigest(),
        "size": len(content),
        "slice_size": CHUNK,
        "slice_md5s": [hashlib.md5(content[start : start + CHUNK]).hexdigest() for start in (0, CHUNK, 2 * CHUNK)],
    }
    assert [call["Range"] for call in s3.calls] == [
        f"bytes=0-{CHUNK - 1}",
        f"bytes={CHUNK}-{2 * CHUNK - 1}",
        f"bytes={2 * CHUNK}-{2 * CHUNK + 99}",
    ]


def test_a_stored_object_goes_through_json_unchanged():
    obj = StoredObject("bucket", "uploads/kdocs/报告.docx", None, 12)

    assert StoredObject.from_dict(json.loads(json.dumps(obj.to_dict()))) == obj


def test_md5_of_chunks():
    assert md5_of([b"ab", b"", b"c"]) == hashlib.md5(b"abc").hexdigest()
