"""The AWS side of the local stack: moto in server mode on loopback, and the template's resources in it."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
from typing import Any

import boto3
import requests
from moto.server import ThreadedMotoServer

from local.template import Template

REGION = "us-east-1"


class LocalAws:
    """moto's server on loopback: a thread of this process, or (`separate_process`) a process of its own."""

    def __init__(self, *, separate_process: bool = False) -> None:
        self.separate_process = separate_process
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> LocalAws:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        if not self.separate_process:
            self.server.start()
            self.port = self.server.get_host_and_port()[1]
            return self
        self.port = _free_port()
        self.process = subprocess.Popen(  # noqa: S603 - moto's own server, on loopback
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_until_listening(self.port)
        return self

    def stop(self) -> None:
        if self.process is None:
            self.server.stop()
        else:
            self.process.terminate()
            self.process.wait(timeout=10)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to talk to this emulator instead of AWS."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto accepts any credentials
        )

    def deploy(self, template: Template, secret_values: dict[str, dict[str, str]]) -> None:
        """Create the template's tables, queues, buckets and secrets (these with `secret_values[logical_id]`)."""
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
        for logical_id, resource in template.of_type("AWS::SecretsManager::Secret").items():
            initial = json.loads(resource["Properties"].get("SecretString", "{}"))
            value = initial | secret_values.get(logical_id, {})
            secrets.create_secret(Name=template.physical_name(logical_id), SecretString=json.dumps(value))

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
