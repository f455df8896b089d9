"""What the operator commands share: the AWS region they use, and AWS's errors told in one line."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)


def run_command(command: str, work: Callable[[], int], *, interrupted: str = "interrupted") -> int:
    """A command's exit status: its own, or 1 with its error in one line, or 130 when interrupted."""
    try:
        return work()
    except CommandError as error:
        print(f"{command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{command}: {interrupted}", file=sys.stderr)
        return 130


# The local stack's region (local.aws.emulator.REGION), taken when a local endpoint is set and no region is.
LOCAL_REGION = "us-east-1"
NO_REGION = "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or region in your AWS profile)"
NO_CREDENTIALS = (
    "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE "
    "(for the local stack, the keys `make run` prints)"
)
ACCESS_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
}


class CommandError(Exception):
    """An expected failure: the command prints its message as one line on stderr, no traceback, and exits with 1."""


def endpoint() -> str | None:
    """The endpoint every AWS client goes to instead of AWS (the local stack's moto), if one is set."""
    return os.environ.get("AWS_ENDPOINT_URL") or None


def region(explicit: str | None = None) -> str:
    """`explicit`, else the usual places (AWS_REGION, AWS_DEFAULT_REGION, the profile's region); with a local endpoint
    (AWS_ENDPOINT_URL) and none of them, the local stack's region."""
    with aws_call("the AWS configuration"):
        found = explicit or os.environ.get("AWS_REGION") or boto3.Session().region_name
    if found:
        return str(found)
    if endpoint():
        return LOCAL_REGION
    raise CommandError(NO_REGION)


def client(service: str, region_name: str) -> Any:
    """A client of a session of its own: credentials and endpoint as the environment gives them now."""
    with aws_call("the AWS configuration"):
        return boto3.session.Session().client(service, region_name=region_name)


@contextmanager
def aws_call(what: str) -> Iterator[None]:
    """Turn an AWS error about `what` ("secret x", "stack y") into a CommandError that says what to do."""
    try:
        yield
    except (BotoCoreError, ClientError) as error:
        raise CommandError(describe(error, what)) from None


def describe(error: BotoCoreError | ClientError, what: str) -> str:
    """One line for an AWS error about `what`."""
    match error:
        case NoCredentialsError() | PartialCredentialsError():
            return NO_CREDENTIALS
        case NoRegionError():
            return NO_REGION
        case ProfileNotFound():
            return f"{error} (AWS_PROFILE names a profile your AWS config does not have)"
        case EndpointConnectionError() | ConnectTimeoutError():
            local = endpoint()
            hint = f" (AWS_ENDPOINT_URL={local}: is the local stack running? `make run` starts it)" if local else ""
            return f"cannot reach AWS for {what}: {error}{hint}"
        case ClientError():
            code = error.response.get("Error", {}).get("Code", "")
            message = error.response.get("Error", {}).get("Message", "") or str(error)
            if code in {"ResourceNotFoundException", "NoSuchBucket"}:
                return f"{what} not found: {message}"
            if code in ACCESS_DENIED:
                return f"AWS refused access to {what} ({code}): {message}"
            return f"AWS refused the request about {what} ({code}): {message}"
    return f"AWS error about {what}: {error}"
