"""Delete a deployed stack: empty its versioned share requests bucket, then `sam delete` it.

  python -m admin.teardown --stack-name NAME [--region REGION] [--yes] [--sam PATH]      (make teardown STACK=NAME)

`sam delete` alone fails on the bucket (output ShareRequestsBucketName): CloudFormation deletes only an empty bucket,
and a versioned bucket is empty only when every object version and delete marker is gone. This deletes them all,
asking first unless --yes, then runs `sam delete --no-prompts`. AWS credentials and region come from the usual places.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from admin import aws
from admin.aws import CommandError, aws_call

BUCKET_OUTPUT = "ShareRequestsBucketName"
BUCKET_RESOURCE = "ShareRequestsBucket"
SAM = Path(__file__).resolve().parent.parent / ".tools" / "sam" / "bin" / "sam"
# DeleteObjects takes at most 1000 keys.
BATCH = 1000
# Listings of the bucket before giving up on it being empty (a function still running may write results meanwhile).
PASSES = 10


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return aws.run_command("teardown", lambda: _teardown(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m admin.teardown", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stack-name", required=True)
    parser.add_argument("--region", help="default: AWS_REGION, AWS_DEFAULT_REGION or your AWS profile's")
    parser.add_argument("--yes", action="store_true", help="do not ask before deleting")
    parser.add_argument("--sam", default=str(SAM), help="the SAM CLI to run `sam delete` with")
    return parser


def _teardown(args: argparse.Namespace) -> int:
    region = aws.region(args.region)
    stack = f"stack {args.stack_name} ({region})"
    bucket = requests_bucket(aws.client("cloudformation", region), args.stack_name, stack)
    what = f"every object version and delete marker in s3://{bucket}, then " if bucket else ""
    if not args.yes and not _confirmed(f"Delete {what}{stack}? [y/N] "):
        raise CommandError("not confirmed, nothing deleted (YES=1 does not ask)")
    if bucket:
        deleted = empty_bucket(aws.client("s3", region), bucket)
        print(f"deleted {deleted} object versions and delete markers from s3://{bucket}", flush=True)
    command = [args.sam, "delete", "--stack-name", args.stack_name, "--no-prompts", "--region", region]
    try:
        return subprocess.run(command, check=False).returncode  # noqa: S603 - the operator's own command
    except FileNotFoundError:
        raise CommandError(f"no SAM CLI at {args.sam} (`make teardown` installs it); the bucket is empty") from None


def requests_bucket(cloudformation: Any, stack_name: str, stack: str) -> str | None:
    """The stack's share requests bucket: its output, else its resource (a stack whose creation failed has no
    outputs); None when it has neither."""
    with aws_call(stack):
        try:
            described = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ValidationError":  # CloudFormation's "does not exist"
                raise CommandError(f"no {stack}: {error.response['Error'].get('Message', '')}") from None
            raise
        for output in described.get("Outputs", []):
            if output.get("OutputKey") == BUCKET_OUTPUT:
                return str(output["OutputValue"])
        try:
            resource = cloudformation.describe_stack_resource(StackName=stack_name, LogicalResourceId=BUCKET_RESOURCE)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ValidationError":
                return None
            raise
    physical_id = resource["StackResourceDetail"].get("PhysicalResourceId")
    return str(physical_id) if physical_id else None


def empty_bucket(s3: Any, bucket: str, *, batch: int = BATCH, page_size: int | None = None) -> int:
    """Delete every object version and delete marker in `bucket`, `batch` at a time, until a listing finds none;
    answers how many were deleted (0 for a bucket that is gone already)."""
    what = f"bucket s3://{bucket}"
    deleted = 0
    for _ in range(PASSES):
        found = 0
        pending: list[dict[str, str]] = []
        pagination = {"PageSize": page_size} if page_size else {}
        try:
            pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket, PaginationConfig=pagination)
            for page in pages:
                for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                    pending.append({"Key": entry["Key"], "VersionId": entry["VersionId"]})
                    if len(pending) == batch:
                        deleted += _delete(s3, bucket, pending)
                        found, pending = found + len(pending), []
            if pending:
                deleted += _delete(s3, bucket, pending)
                found += len(pending)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "NoSuchBucket":
                return deleted  # gone already: a teardown that failed later, or the bucket deleted by hand
            raise CommandError(aws.describe(error, what)) from None
        except BotoCoreError as error:
            raise CommandError(aws.describe(error, what)) from None
        if not found:
            return deleted
    raise CommandError(f"{what} is still being written to after {PASSES} passes: stop what writes to it, then retry")


def _delete(s3: Any, bucket: str, objects: list[dict[str, str]]) -> int:
    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
    errors = answer.get("Errors", [])
    if errors:
        first = errors[0]
        raise CommandError(
            f"{len(errors)} of {len(objects)} deletions in s3://{bucket} failed, the first "
            f"{first.get('Key')} version {first.get('VersionId')}: {first.get('Code')} {first.get('Message')}"
        )
    return len(objects)


def _confirmed(question: str) -> bool:
    try:
        answer = input(question)
    except EOFError:
        print(file=sys.stderr)
        return False
    return answer.strip().lower() in {"y", "yes"}


if __name__ == "__main__":
    sys.exit(main())
