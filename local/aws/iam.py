"""The IAM role SAM creates for each function of template.yaml, and the local credentials that act as it.

A role is what SAM's transform would attach: AWSLambdaBasicExecutionRole always, AWSXrayWriteOnlyAccess when
tracing is active, then each entry of `Policies` (an inline `Statement` list, a SAM policy template, or an AWS
managed policy by name), with the template's intrinsics resolved to the stack's real names and ARNs. The AWS
managed policies are the documents moto ships.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from moto.iam.aws_managed_policies import aws_managed_policies_data

from local.template import PSEUDO_PARAMETERS, Template

POLICY_VERSION = "2012-10-17"
# SAM's policy templates (samtranslator/policy_templates_data/policy_templates.json) this template uses:
# parameter names, and the statements they expand to.
POLICY_TEMPLATES = {
    "AWSSecretsManagerGetSecretValuePolicy": (
        ("SecretArn",),
        lambda secret_arn: [{"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": secret_arn}],
    ),
}
# Function properties and event types for which SAM adds permissions this module does not model.
UNMODELLED_PROPERTIES = ("Role", "VpcConfig", "DeadLetterQueue", "EventInvokeConfig")
UNMODELLED_EVENTS = ("SQS", "Kinesis", "DynamoDB", "MSK", "MQ", "SelfManagedKafka", "DocumentDB")
# Policy elements the emulator cannot evaluate (moto reads Action and Resource only); refused rather than misread.
UNEVALUATED_ELEMENTS = ("Condition", "NotAction", "NotResource", "Principal", "NotPrincipal")


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    # An assumed-role session's (Lambda gives a function its role's as AWS_SESSION_TOKEN); none for long-term keys.
    session_token: str | None = None

    @classmethod
    def for_principal(cls, principal: str) -> Credentials:
        """Keys shaped like AWS's ("AKIA" and 16 more), the same for a principal at every run; an assumed-role
        session also has a session token, which the emulator then requires with them."""
        digest = hashlib.sha256(principal.encode()).digest()
        key_id = "AKIA" + base64.b32encode(digest).decode()[:16]
        secret = base64.b64encode(hashlib.sha256(b"secret:" + digest).digest()).decode()[:40]
        token = base64.b64encode(hashlib.sha512(b"session:" + digest).digest()).decode()
        return cls(key_id, secret, token if ":assumed-role/" in principal else None)


@dataclass(frozen=True)
class Identity:
    """Who signs with some credentials, and the policies that decide what they may do."""

    principal: str
    credentials: Credentials
    policies: tuple[dict[str, Any], ...]

    def registration(self) -> dict[str, Any]:
        """What the emulator's identities endpoint takes (local.aws.server)."""
        return {
            self.credentials.access_key_id: {
                "secret_access_key": self.credentials.secret_access_key,
                "session_token": self.credentials.session_token,
                "principal": self.principal,
                "policies": list(self.policies),
            }
        }

    def statements(self) -> list[dict[str, Any]]:
        return [statement for policy in self.policies for statement in policy["Statement"]]


# The stack's own setup, the pollers and the tests' checks: moto's customary keys, allowed everything.
ADMIN = Identity(
    principal=f"arn:aws:iam::{PSEUDO_PARAMETERS['AWS::AccountId']}:user/local-admin",
    credentials=Credentials("testing", "testing"),
    policies=({"Version": POLICY_VERSION, "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},),
)


def function_roles(template: Template) -> dict[str, Identity]:
    """Function logical id -> the role SAM would give it, acting as the function does (an assumed-role session)."""
    function_globals = template.body.get("Globals", {}).get("Function", {})
    roles = {}
    for function_id, resource in template.of_type("AWS::Serverless::Function").items():
        props = function_globals | resource["Properties"]
        _refuse_unmodelled(function_id, props)
        account = PSEUDO_PARAMETERS["AWS::AccountId"]
        session = template.resolve(props.get("FunctionName", function_id))
        principal = f"arn:aws:sts::{account}:assumed-role/{template.stack_name}-{function_id}Role/{session}"
        roles[function_id] = Identity(principal, Credentials.for_principal(principal), _policies(template, props))
    return roles


def _refuse_unmodelled(function_id: str, props: dict[str, Any]) -> None:
    unmodelled = [name for name in UNMODELLED_PROPERTIES if name in props]
    unmodelled += [event["Type"] for event in props.get("Events", {}).values() if event["Type"] in UNMODELLED_EVENTS]
    if unmodelled:
        raise ValueError(f"{function_id}: the local stack does not model the permissions SAM adds for {unmodelled}")


def _policies(template: Template, props: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    # SAM gives a durable function AWSLambdaBasicDurableExecutionRolePolicy (logs plus checkpoints) instead.
    managed = [
        "AWSLambdaBasicDurableExecutionRolePolicy" if props.get("DurableConfig") else "AWSLambdaBasicExecutionRole"
    ]
    if props.get("Tracing") == "Active":
        managed.append("AWSXrayWriteOnlyAccess")
    policies = [managed_policy(name) for name in managed]
    policies += [_policy(template, entry) for entry in props.get("Policies", [])]
    for policy in policies:
        _refuse_unevaluated(policy)
    return tuple(policies)


def _policy(template: Template, entry: str | dict[str, Any]) -> dict[str, Any]:
    """One entry of a function's `Policies`, as the document SAM attaches."""
    if isinstance(entry, str):
        return managed_policy(entry.removeprefix("arn:aws:iam::aws:policy/"))
    if set(entry) == {"Statement"}:
        return {"Version": POLICY_VERSION, "Statement": _resolved(template, entry["Statement"])}
    ((name, arguments),) = entry.items()
    if name not in POLICY_TEMPLATES:
        raise ValueError(f"unknown SAM policy template {name}: the local stack knows {sorted(POLICY_TEMPLATES)}")
    parameters, statements = POLICY_TEMPLATES[name]
    values = [template.resolve(arguments[parameter]) for parameter in parameters]
    return {"Version": POLICY_VERSION, "Statement": statements(*values)}


def _resolved(template: Template, value: Any) -> Any:
    """Every intrinsic inside a policy, resolved."""
    if isinstance(value, list):
        return [_resolved(template, item) for item in value]
    if isinstance(value, dict) and len(value) == 1 and _is_intrinsic(next(iter(value))):
        return template.resolve(value)
    if isinstance(value, dict):
        return {key: _resolved(template, item) for key, item in value.items()}
    return value


def _is_intrinsic(key: str) -> bool:
    return key == "Ref" or key.startswith("Fn::")


def _refuse_unevaluated(policy: dict[str, Any]) -> None:
    for statement in policy["Statement"]:
        elements = [element for element in UNEVALUATED_ELEMENTS if element in statement]
        if elements:
            raise ValueError(f"the local emulator cannot evaluate {elements} in {json.dumps(statement)}")


@cache
def _managed_policies() -> dict[str, Any]:
    return dict(json.loads(aws_managed_policies_data))


def managed_policy(name: str) -> dict[str, Any]:
    """An AWS managed policy's document, as moto ships it."""
    if name not in _managed_policies():
        raise ValueError(f"moto ships no AWS managed policy {name}")
    return dict(_managed_policies()[name]["Document"])
