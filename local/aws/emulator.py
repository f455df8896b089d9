"""The AWS side of the local stack: moto in server mode on loopback, IAM enforced, and the template's resources in it.

Every request is signed and authorized (local.aws.server): the stack's own setup and the tests' checks act as the
admin identity, each function as the role template.yaml gives it (local.aws.iam).
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import boto3
import requests
from werkzeug.serving import BaseWSGIServer

from local.aws import server
from local.aws.iam import ADMIN, Identity
from local.template import Template

REGION = "us-east-1"
ROOT = Path(__file__).resolve().parents[2]


class LocalAws:
    """local.aws.server on loopback: a thread of this process, or (`separate_process`) a process of its own."""

    def __init__(self, *, separate_process: bool = False) -> None:
        self.separate_process = separate_process
        self.server: BaseWSGIServer | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.roles: dict[str, Identity] = {}

    def start(self) -> LocalAws:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        if not self.separate_process:
            self.server = server.serve_in_thread()
            self.port = self.server.server_port
            return self
        self.port = _free_port()
        self.process = subprocess.Popen(  # noqa: S603 - our own module, on loopback
            [sys.executable, "-m", "local.aws.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
            process_group=0,  # a terminal's Ctrl-C goes to the stack, which stops this process in its turn
        )
        _wait_until_listening(self.port)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to talk to this emulator instead of AWS, as the admin identity."""
        return self.env_as(ADMIN)

    def env_as(self, identity: Identity) -> dict[str, str]:
        """The environment of a process acting as `identity`: AWS_SESSION_TOKEN with a session's keys (a function's
        role, as Lambda gives it), none with long-term keys."""
        credentials = identity.credentials
        token = {"AWS_SESSION_TOKEN": credentials.session_token} if credentials.session_token else {}
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": credentials.access_key_id,
            "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        } | token

    def role_env(self, function_id: str) -> dict[str, str]:
        """The environment of a function acting as its role (one given to `use_roles`)."""
        return self.env_as(self.roles[function_id])

    def use_roles(self, roles: dict[str, Identity]) -> None:
        """Function logical id -> role: register them, and let `role_env` hand them out."""
        self.register(roles.values())
        self.roles = dict(roles)

    def register(self, identities: Iterable[Identity]) -> None:
        """Make these identities known to the emulator (kept across `reset`)."""
        registrations = {key: value for identity in identities for key, value in identity.registration().items()}
        requests.post(f"{self.endpoint}{server.IDENTITIES_PATH}", json=registrations, timeout=5).raise_for_status()

    def client(self, service: str, identity: Identity = ADMIN) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=identity.credentials.access_key_id,
            aws_secret_access_key=identity.credentials.secret_access_key,
            aws_session_token=identity.credentials.session_token,
        )

    def deploy(self, template: Template, secret_values: dict[str, dict[str, str]]) -> dict[str, str]:
        """Create the template's tables, queues, buckets and secrets (these with `secret_values[logical_id]`).

        Answers the ARNs only the emulator could choose: secret logical id -> ARN.
        """
        for logical_id, resource in template.of_type("AWS::DynamoDB::Table").items():
            self.create_table(template.physical_name(logical_id), resource["Properties"])
        queues = template.of_type("AWS::SQS::Queue")
        sqs = self.client("sqs")
        for logical_id in queues:
            sqs.create_queue(QueueName=template.physical_name(logical_id))
        for logical_id, resource in queues.items():
            self._set_redrive(template, logical_id, resource["Properties"])
        for logical_id, resource in template.of_type("AWS::S3::Bucket").items():
            self._create_bucket(template, template.physical_name(logical_id), resource["Properties"])
        secrets = self.client("secretsmanager")
        arns = {}
        for logical_id, resource in template.of_type("AWS::SecretsManager::Secret").items():
            initial = json.loads(resource["Properties"].get("SecretString", "{}"))
            value = initial | secret_values.get(logical_id, {})
            created = secrets.create_secret(Name=template.physical_name(logical_id), SecretString=json.dumps(value))
            arns[logical_id] = str(created["ARN"])
        return arns

    def queue_url(self, name: str) -> str:
        return str(self.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])

    def create_table(self, name: str, props: dict[str, Any]) -> None:
        """A DynamoDB table as the template's `AWS::DynamoDB::Table` properties describe it."""
        dynamodb = self.client("dynamodb")
        dynamodb.create_table(
            TableName=name,
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
            BillingMode="PAY_PER_REQUEST",
        )
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)

    def _set_redrive(self, template: Template, logical_id: str, props: dict[str, Any]) -> None:
        redrive = props.get("RedrivePolicy")
        if redrive:
            policy = {"deadLetterTargetArn": template.resolve(redrive["deadLetterTargetArn"])}
            policy["maxReceiveCount"] = str(redrive["maxReceiveCount"])
            self.client("sqs").set_queue_attributes(
                QueueUrl=self.queue_url(template.physical_name(logical_id)),
                Attributes={"RedrivePolicy": json.dumps(policy)},
            )

    def _create_bucket(self, template: Template, name: str, props: dict[str, Any]) -> None:
        s3 = self.client("s3")
        s3.create_bucket(Bucket=name)
        if props.get("VersioningConfiguration"):
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])
        queue_configurations = [
            {
                "QueueArn": template.resolve(notification["Queue"]),
                "Events": [notification["Event"]],
                "Filter": {"Key": {"FilterRules": notification["Filter"]["S3Key"]["Rules"]}},
            }
            for notification in props.get("NotificationConfiguration", {}).get("QueueConfigurations", [])
        ]
        if queue_configurations:
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"QueueConfigurations": queue_configurations}
            )

    def reset(self) -> None:
        """Forget every resource (moto's reset API)."""
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=5).raise_for_status()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_listening(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"moto server did not listen on port {port}")
