"""`make teardown`'s emptying of the versioned share requests bucket, against moto (not `sam delete` itself: a stand-in
SAM CLI notes how it is called)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from admin import teardown
from local.aws.emulator import REGION, LocalAws


def new_versioned_bucket(aws: LocalAws) -> tuple[Any, str]:
    """A bucket with an object from before versioning (version "null"), then versioning on, as the stack's is."""
    s3, name = aws.client("s3"), f"teardown-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="before-versioning.json", Body=b"{}")
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return s3, name


def fill(s3: Any, bucket: str) -> int:
    """Several versions of several keys and delete markers (two on one key): how many versions and markers in all."""
    for key in ("requests/123pan/a.json", "results/123pan/a.json", "uploads/123pan/报告 2026.txt"):
        for version in range(3):
            s3.put_object(Bucket=bucket, Key=key, Body=json.dumps({"version": version}).encode())
    s3.delete_object(Bucket=bucket, Key="requests/123pan/a.json")
    s3.delete_object(Bucket=bucket, Key="requests/123pan/a.json")
    s3.delete_object(Bucket=bucket, Key="results/123pan/a.json")
    s3.delete_object(Bucket=bucket, Key="before-versioning.json")
    return 1 + 9 + 4


def versions_and_markers(s3: Any, bucket: str) -> tuple[int, int]:
    listed = s3.list_object_versions(Bucket=bucket)
    return len(listed.get("Versions", [])), len(listed.get("DeleteMarkers", []))


def test_every_version_and_delete_marker_goes_and_the_bucket_can_be_deleted(aws):
    s3, bucket = new_versioned_bucket(aws)
    total = fill(s3, bucket)
    assert versions_and_markers(s3, bucket) == (10, 4)

    deleted = teardown.empty_bucket(s3, bucket, batch=4, page_size=3)  # several pages, several batches

    assert deleted == total
    assert versions_and_markers(s3, bucket) == (0, 0)
    s3.delete_bucket(Bucket=bucket)  # what CloudFormation does, and could not do before


def test_deletions_go_in_batches_of_1000(aws):
    s3, bucket = new_versioned_bucket(aws)
    # 1001 delete markers on top of the one version, quickly: moto makes one for each entry of a DeleteObjects.
    for count in (1000, 1):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "before-versioning.json"}] * count, "Quiet": True})
    assert s3.list_object_versions(Bucket=bucket)["IsTruncated"]
    batches: list[int] = []
    delete_objects = s3.delete_objects

    def noting(**kwargs: Any) -> Any:
        batches.append(len(kwargs["Delete"]["Objects"]))
        return delete_objects(**kwargs)

    s3.delete_objects = noting

    assert teardown.empty_bucket(s3, bucket) == 1002
    assert batches == [1000, 2]
    assert versions_and_markers(s3, bucket) == (0, 0)


def test_an_empty_or_missing_bucket_is_nothing_to_do(aws):
    s3, bucket = new_versioned_bucket(aws)
    s3.delete_object(Bucket=bucket, Key="before-versioning.json", VersionId="null")

    assert teardown.empty_bucket(s3, bucket) == 0
    s3.delete_bucket(Bucket=bucket)
    assert teardown.empty_bucket(s3, bucket) == 0


@pytest.fixture
def stack(aws: LocalAws) -> tuple[str, str]:
    """A CloudFormation stack in moto whose ShareRequestsBucket (versioned, filled) is in its outputs."""
    name, bucket = f"sharelink-td-{uuid.uuid4().hex[:8]}", f"teardown-{uuid.uuid4().hex[:12]}"
    template = {
        "Resources": {"ShareRequestsBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": bucket}}},
        "Outputs": {"ShareRequestsBucketName": {"Value": {"Ref": "ShareRequestsBucket"}}},
    }
    aws.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))
    s3 = aws.client("s3")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="before-versioning.json", Body=b"{}")
    fill(s3, bucket)
    return name, bucket


@pytest.fixture
def sam(tmp_path: Path) -> tuple[Path, Path]:
    """A stand-in SAM CLI that writes down its arguments."""
    calls, script = tmp_path / "calls.json", tmp_path / "sam"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {calls}\n')
    script.chmod(0o755)
    return script, calls


def test_teardown_empties_the_stacks_bucket_then_runs_sam_delete(aws, stack, sam, capsys):
    name, bucket = stack
    script, calls = sam

    status = teardown.main(["--stack-name", name, "--yes", "--sam", str(script)])

    assert status == 0, capsys.readouterr().err
    assert versions_and_markers(aws.client("s3"), bucket) == (0, 0)
    assert calls.read_text().splitlines() == ["delete", "--stack-name", name, "--no-prompts", "--region", REGION]
    assert f"from s3://{bucket}" in capsys.readouterr().out


def test_nothing_is_deleted_unless_confirmed(aws, stack, sam, monkeypatch, capsys):
    name, bucket = stack
    script, calls = sam
    monkeypatch.setattr("builtins.input", lambda prompt: "n")

    status = teardown.main(["--stack-name", name, "--sam", str(script)])

    assert status == 1
    assert capsys.readouterr().err == "teardown: not confirmed, nothing deleted (YES=1 does not ask)\n"
    assert versions_and_markers(aws.client("s3"), bucket) == (10, 4)
    assert not calls.exists()


def test_an_unknown_stack_is_one_line(aws, sam, capsys):
    script, calls = sam

    status = teardown.main(["--stack-name", "no-such-stack", "--yes", "--sam", str(script)])

    assert status == 1
    assert capsys.readouterr().err.splitlines() == [
        "teardown: no stack no-such-stack (us-east-1): Stack with id no-such-stack does not exist"
    ]
    assert not calls.exists()
