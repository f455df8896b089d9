"""The streamed multipart body: byte for byte urllib3's encoding, a known length, read a block at a time, rewound."""

from __future__ import annotations

import io

import pytest
from urllib3.filepost import encode_multipart_formdata

from local.simulators.base import parse_multipart
from sharelink.transport import FilePart, Multipart, MultipartBody

DATA = bytes(range(256)) * 40


class Source:
    """A file part's bytes in small chunks, counting how often they were produced and closed."""

    def __init__(self, data: bytes = DATA, chunk: int = 1000) -> None:
        self.data, self.chunk = data, chunk
        self.produced = self.closed = 0

    def __call__(self):
        self.produced += 1
        try:
            for start in range(0, len(self.data), self.chunk):
                yield self.data[start : start + self.chunk]
        finally:
            self.closed += 1


def form(source: Source, filename: str = '季度 "报告".docx') -> Multipart:
    fields = [("preuploadID", "abc"), ("parent_path", "报告"), ("parent_path", "2026")]
    return Multipart(fields, FilePart("file", filename, len(source.data), source))


def read_all(body: MultipartBody, block: int) -> bytes:
    out = bytearray()
    while chunk := body.read(block):
        out += chunk
    return bytes(out)


def test_the_body_is_what_urllib3_would_encode_and_its_length_is_known():
    body = MultipartBody(form(Source()))
    boundary = body.content_type.removeprefix("multipart/form-data; boundary=")

    expected, content_type = encode_multipart_formdata(
        [
            ("preuploadID", "abc"),
            ("parent_path", "报告"),
            ("parent_path", "2026"),
            ("file", ('季度 "报告".docx', DATA, "application/octet-stream")),
        ],
        boundary=boundary,
    )

    assert content_type == body.content_type
    assert len(body) == len(expected)
    assert read_all(body, 16384) == expected


def test_a_parser_finds_every_field_in_order():
    body = MultipartBody(form(Source(), "a.docx"))

    parsed = parse_multipart(read_all(body, 7), body.content_type)

    assert [(part.name, part.filename) for part in parsed.parts] == [
        ("preuploadID", None),
        ("parent_path", None),
        ("parent_path", None),
        ("file", "a.docx"),
    ]
    assert parsed.parts[-1].data == DATA


def test_reading_in_blocks_tells_the_position_and_ends_with_empty_bytes():
    body = MultipartBody(form(Source()))
    whole = body.read()
    body.seek(0)

    first = body.read(100)

    assert body.tell() == 100
    assert first + read_all(body, 333) == whole
    assert body.tell() == len(body)
    assert body.read(10) == b""


def test_a_rewind_produces_the_file_part_again_and_lets_go_of_the_first():
    source = Source()
    body = MultipartBody(form(source))
    whole = body.read()
    body.seek(0)
    body.read(len(whole) // 2)

    assert body.seek(0) == 0
    assert body.read() == whole
    assert source.produced == 3
    assert source.closed == 3


def test_only_a_rewind_to_the_start_is_possible():
    body = MultipartBody(form(Source()))

    with pytest.raises(io.UnsupportedOperation):
        body.seek(10)
    with pytest.raises(io.UnsupportedOperation):
        body.seek(0, io.SEEK_END)


def test_closing_a_body_read_halfway_closes_its_source():
    source = Source()
    body = MultipartBody(form(source))
    body.read(2000)

    body.close()

    assert source.closed == 1


def test_an_empty_file_part_still_makes_a_whole_body():
    body = MultipartBody(form(Source(b"")))

    parsed = parse_multipart(body.read(), body.content_type)

    assert parsed.parts[-1].data == b""
    assert len(body) == body.tell()
