"""The roles the local stack gives the functions: what SAM would attach, resolved from template.yaml."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from local.aws.iam import Credentials, function_roles, managed_policy
from local.template import Template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_TEXT = (ROOT / "template.yaml").read_text()
ROLES = function_roles(Template(ROOT / "template.yaml"))

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:sharelink-local/{}-??????"
BUCKET = "arn:aws:s3:::sharelink-local-requests-123456789012-us-east-1"
QUEUE = "arn:aws:sqs:us-east-1:123456789012:sharelink-local-{}"
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/sharelink-local-IdempotencyTable"
DEFAULT_BUS = "arn:aws:events:us-east-1:123456789012:event-bus/default"
IDEMPOTENCY = {
    (f"dynamodb:{action}", TABLE)
    for action in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchGetItem", "BatchWriteItem")
}
RENEWAL_REQUESTS = {("sqs:SendMessage", QUEUE.format("TokenRenewalQueue"))}


def consumes(queue: str) -> set[tuple[str, str]]:
    """What an SQS event source mapping needs of its queue."""
    actions = ("ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility", "GetQueueAttributes")
    return {(f"sqs:{action}", QUEUE.format(queue)) for action in actions}


def reads_secret(provider: str) -> set[tuple[str, str]]:
    return {("secretsmanager:GetSecretValue", SECRET.format(provider))}


def stored_requests(provider: str, prefix: str) -> set[tuple[str, str]]:
    """An events function's own: its queue, its requests (any version), its results, the default bus."""
    return consumes(f"{provider.capitalize()}RequestsQueue") | {
        ("s3:GetObject", f"{BUCKET}/requests/{prefix}/*"),
        ("s3:GetObjectVersion", f"{BUCKET}/requests/{prefix}/*"),
        ("s3:PutObject", f"{BUCKET}/results/{prefix}/*"),
        ("s3:GetObject", f"{BUCKET}/results/{prefix}/*"),
        ("events:PutEvents", DEFAULT_BUS),
    }


def uploads(prefix: str) -> set[tuple[str, str]]:
    """An upload function's own: any version of its provider's uploads (read, tag), its results, the bus, attempts."""
    objects = f"{BUCKET}/uploads/{prefix}/*"
    tagging = ("s3:GetObjectTagging", "s3:GetObjectVersionTagging", "s3:PutObjectTagging", "s3:PutObjectVersionTagging")
    return (
        {(action, objects) for action in ("s3:GetObject", "s3:GetObjectVersion")}
        | {(action, objects) for action in tagging}
        | {("s3:PutObject", f"{BUCKET}/results/uploads/{prefix}/*"), ("events:PutEvents", DEFAULT_BUS)}
        | IDEMPOTENCY
        | RENEWAL_REQUESTS
    )


EXPECTED = {
    "Pan123ApiFunction": reads_secret("pan123") | IDEMPOTENCY | RENEWAL_REQUESTS,
    "KdocsApiFunction": reads_secret("kdocs") | IDEMPOTENCY | RENEWAL_REQUESTS,
    "Pan123EventsFunction": reads_secret("pan123")
    | IDEMPOTENCY
    | RENEWAL_REQUESTS
    | stored_requests("pan123", "123pan"),
    "KdocsEventsFunction": reads_secret("kdocs") | IDEMPOTENCY | RENEWAL_REQUESTS | stored_requests("kdocs", "kdocs"),
    "TokensFunction": reads_secret("pan123")
    | reads_secret("kdocs")
    | {("secretsmanager:PutSecretValue", SECRET.format(provider)) for provider in ("pan123", "kdocs")}
    | consumes("TokenRenewalQueue"),
    "DocsFunction": set(),
    "UploadStarterFunction": consumes("UploadsQueue")
    | {
        ("lambda:InvokeFunction", f"arn:aws:lambda:us-east-1:123456789012:function:sharelink-local-{name}-upload:live")
        for name in ("pan123", "kdocs")
    },
    "Pan123UploadFunction": reads_secret("pan123") | uploads("123pan"),
    "KdocsUploadFunction": reads_secret("kdocs") | uploads("kdocs"),
}
DURABLE = ("Pan123UploadFunction", "KdocsUploadFunction")


def granted(statements: list[dict]) -> set[tuple[str, str]]:
    """Every (action, resource) the statements allow."""
    pairs = set()
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        pairs |= {(action, resource) for action in actions for resource in resources}
    return pairs


def from_template(role_policies: tuple[dict, ...]) -> list[dict]:
    """The statements of a role but the two managed policies SAM attaches first."""
    return [statement for policy in role_policies[2:] for statement in policy["Statement"]]


def roles_of(tmp_path: Path, text: str) -> dict:
    (tmp_path / "template.yaml").write_text(text)
    return function_roles(Template(tmp_path / "template.yaml"))


def test_each_role_allows_exactly_what_its_functions_policies_say():
    assert {function_id: granted(from_template(role.policies)) for function_id, role in ROLES.items()} == EXPECTED


def test_events_functions_may_read_any_version_of_their_providers_requests_and_nothing_else_there():
    for function_id, own, other in (
        ("Pan123EventsFunction", "123pan", "kdocs"),
        ("KdocsEventsFunction", "kdocs", "123pan"),
    ):
        s3 = {pair for pair in granted(ROLES[function_id].statements()) if pair[0].startswith("s3:")}
        assert s3 == {
            ("s3:GetObject", f"{BUCKET}/requests/{own}/*"),
            ("s3:GetObjectVersion", f"{BUCKET}/requests/{own}/*"),
            ("s3:PutObject", f"{BUCKET}/results/{own}/*"),
            ("s3:GetObject", f"{BUCKET}/results/{own}/*"),  # the sequencer of a result a rewrite would replace
        }, function_id
        assert not [resource for _, resource in s3 if other in resource], function_id


def test_api_functions_read_their_own_providers_secret_only():
    for function_id, own in (("Pan123ApiFunction", "pan123"), ("KdocsApiFunction", "kdocs")):
        secrets = {pair for pair in granted(ROLES[function_id].statements()) if pair[0].startswith("secretsmanager:")}
        assert secrets == reads_secret(own), function_id


def test_every_role_has_the_managed_policies_sam_attaches_and_tracing_asks_for():
    for function_id, role in ROLES.items():
        basic = "AWSLambdaBasicDurableExecutionRolePolicy" if function_id in DURABLE else "AWSLambdaBasicExecutionRole"
        assert role.policies[:2] == (managed_policy(basic), managed_policy("AWSXrayWriteOnlyAccess")), function_id
    assert granted(managed_policy("AWSLambdaBasicDurableExecutionRolePolicy")["Statement"]) >= {
        ("lambda:CheckpointDurableExecution", "*"),
        ("lambda:GetDurableExecutionState", "*"),
    }
    assert granted(managed_policy("AWSLambdaBasicExecutionRole")["Statement"]) == {
        ("logs:CreateLogGroup", "*"),
        ("logs:CreateLogStream", "*"),
        ("logs:PutLogEvents", "*"),
    }


def test_without_active_tracing_there_is_no_xray_policy(tmp_path):
    roles = roles_of(tmp_path, TEMPLATE_TEXT.replace("    Tracing: Active\n", "", 1))

    assert all(managed_policy("AWSXrayWriteOnlyAccess") not in role.policies for role in roles.values())
    assert all(
        role.policies[0] == managed_policy("AWSLambdaBasicExecutionRole")
        for function_id, role in roles.items()
        if function_id not in DURABLE
    )


def test_a_policy_template_the_local_stack_does_not_know_is_refused(tmp_path):
    text = TEMPLATE_TEXT.replace(
        "        - AWSSecretsManagerGetSecretValuePolicy:\n",
        "        - S3ReadPolicy:\n            BucketName: elsewhere\n"
        "        - AWSSecretsManagerGetSecretValuePolicy:\n",
        1,
    )

    with pytest.raises(ValueError, match="unknown SAM policy template S3ReadPolicy"):
        roles_of(tmp_path, text)


def test_a_statement_the_emulator_cannot_evaluate_is_refused(tmp_path):
    text = TEMPLATE_TEXT.replace(
        "            - Effect: Allow\n              Action: sqs:SendMessage\n",
        "            - Effect: Allow\n              Condition: {Bool: {aws:SecureTransport: true}}\n"
        "              Action: sqs:SendMessage\n",
        1,
    )

    with pytest.raises(ValueError, match="cannot evaluate \\['Condition'\\]"):
        roles_of(tmp_path, text)


def test_a_secret_is_referred_to_by_its_arn_once_deployed_and_by_its_pattern_before():
    deployed = "arn:aws:secretsmanager:us-east-1:123456789012:secret:sharelink-local/pan123-AbCdEf"
    template = Template(ROOT / "template.yaml").with_deployed_arns({"Pan123Secret": deployed})

    assert template.functions()["Pan123ApiFunction"].environment["PAN123_SECRET_ID"] == deployed
    assert ("secretsmanager:GetSecretValue", deployed) in granted(
        function_roles(template)["Pan123ApiFunction"].statements()
    )
    assert Template(ROOT / "template.yaml").resolve({"Ref": "Pan123Secret"}) == SECRET.format("pan123")


def test_names_given_to_the_template_are_the_names_the_roles_reach():
    template = Template(
        ROOT / "template.yaml",
        stack_name="elsewhere",
        physical_names={"IdempotencyTable": "other-table", "Pan123Secret": "other/pan123"},
    )
    role = function_roles(template)["Pan123ApiFunction"]

    assert ("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:123456789012:table/other-table") in granted(
        role.statements()
    )
    assert ("secretsmanager:GetSecretValue", SECRET.replace("sharelink-local/{}", "other/pan123")) in granted(
        role.statements()
    )
    assert (
        role.principal == "arn:aws:sts::123456789012:assumed-role/elsewhere-Pan123ApiFunctionRole/elsewhere-pan123-api"
    )


def test_each_role_signs_with_keys_of_its_own():
    keys = [role.credentials for role in ROLES.values()]

    assert all(re.fullmatch(r"AKIA[A-Z2-7]{16}", key.access_key_id) for key in keys)
    assert len({key.access_key_id for key in keys}) == len({key.secret_access_key for key in keys}) == len(ROLES)
    assert Credentials.for_principal(ROLES["DocsFunction"].principal) == ROLES["DocsFunction"].credentials
