"""The AWS side of the local stack: moto in server mode on loopback, and the template's resources in it."""

from __future__ import annotations

import json
import logging
from typing import Any

import boto3
import requests
from moto.server import ThreadedMotoServer

from local.template import Template

REGION = "us-east-1"


class LocalAws:
    def __init__(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)

    def start(self) -> LocalAws:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    @property
    def endpoint(self) -> str:
        host, port = self.server.get_host_and_port()
        return f"http://{host}:{port}"

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
        """Create the template's secrets, holding `secret_values[logical_id]` where given."""
        secrets = self.client("secretsmanager")
        for logical_id, resource in template.of_type("AWS::SecretsManager::Secret").items():
            initial = json.loads(resource["Properties"].get("SecretString", "{}"))
            value = initial | secret_values.get(logical_id, {})
            secrets.create_secret(Name=template.physical_name(logical_id), SecretString=json.dumps(value))

    def reset(self) -> None:
        """Forget every resource (moto's reset API)."""
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=5).raise_for_status()
