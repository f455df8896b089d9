"""What template.yaml promises: least privilege, no anonymous route, logs that expire, the layer's build."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from local.template import Template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = Template(ROOT / "template.yaml")
FUNCTIONS = TEMPLATE.of_type("AWS::Serverless::Function")
SECRETS = TEMPLATE.of_type("AWS::SecretsManager::Secret")


def referenced_secrets(policies: list) -> set[str]:
    """Secrets a function may read; inline statements may not touch Secrets Manager but to write (tested apart)."""
    found = set()
    for policy in policies:
        for name, spec in policy.items():
            if name == "Statement":
                actions = [
                    str(statement["Action"]) for statement in spec if "secretsmanager" in str(statement["Action"])
                ]
                assert set(actions) <= {"secretsmanager:PutSecretValue"}
            else:
                assert name == "AWSSecretsManagerGetSecretValuePolicy", f"unexpected policy {name}"
                found.add(spec["SecretArn"]["Ref"])
    return found


def mapping_of(function_id: str) -> dict:
    """The SQS event source mapping that feeds a function."""
    (mapping,) = [
        resource["Properties"]
        for resource in TEMPLATE.of_type("AWS::Lambda::EventSourceMapping").values()
        if resource["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    return mapping


def statements(function_id: str) -> list[dict]:
    policies = FUNCTIONS[function_id]["Properties"].get("Policies", [])
    return [statement for policy in policies for statement in policy.get("Statement", [])]


def actions(statement: dict) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def test_each_function_may_read_its_own_secret_and_nothing_else():
    for logical_id, function in FUNCTIONS.items():
        props = function["Properties"]
        variables = props["Environment"]["Variables"].values()
        own = {value["Ref"] for value in variables if isinstance(value, dict) and value.get("Ref") in SECRETS}
        assert referenced_secrets(props.get("Policies", [])) == own, logical_id


def test_no_route_is_anonymous_but_the_docs_when_a_parameter_says_so():
    protected = {"Fn::If": ["UseJwt", "JWT", "AWS_IAM"]}
    for logical_id, route in TEMPLATE.of_type("AWS::ApiGatewayV2::Route").items():
        authorization = route["Properties"]["AuthorizationType"]
        if logical_id.startswith("Docs"):
            assert authorization == {"Fn::If": ["DocsArePublic", "NONE", protected]}, logical_id
        else:
            assert authorization == protected, logical_id
    assert TEMPLATE.body["Parameters"]["PublicDocs"]["Default"] == "false"


def test_every_function_logs_to_a_group_with_retention():
    for logical_id, function in FUNCTIONS.items():
        group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert "RetentionInDays" in TEMPLATE.resources[group]["Properties"], logical_id


def test_functions_are_python_3_13_on_arm64_with_the_layer():
    function_globals = TEMPLATE.body["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    assert function_globals["Layers"] == [{"Ref": "SharelinkLayer"}]
    assert TEMPLATE.resources["SharelinkLayer"]["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}


def test_every_route_reaches_a_function():
    routes = {(route.method, route.path): route.function_id for route in TEMPLATE.http_routes()}
    assert routes == {
        ("POST", "/v1/shares/123pan"): "Pan123ApiFunction",
        ("GET", "/v1/shares/123pan"): "Pan123ApiFunction",
        ("PATCH", "/v1/shares/123pan"): "Pan123ApiFunction",
        ("POST", "/v1/shares/kdocs"): "KdocsApiFunction",
        ("GET", "/v1/shares/kdocs/{file_token}"): "KdocsApiFunction",
        ("DELETE", "/v1/shares/kdocs/{file_token}"): "KdocsApiFunction",
        ("GET", "/v1/openapi.json"): "DocsFunction",
        ("GET", "/v1/docs"): "DocsFunction",
    }


def test_events_functions_read_requests_and_write_results_of_their_provider_only():
    for function_id, prefix in (("Pan123EventsFunction", "123pan"), ("KdocsEventsFunction", "kdocs")):
        s3 = {
            (action, statement["Resource"]["Fn::Sub"])
            for statement in statements(function_id)
            for action in actions(statement)
            if action.startswith("s3:")
        }
        requests = f"arn:${{AWS::Partition}}:s3:::${{ShareRequestsBucket}}/requests/{prefix}/*"
        results = f"arn:${{AWS::Partition}}:s3:::${{ShareRequestsBucket}}/results/{prefix}/*"
        assert s3 == {
            # The bucket is versioned: reading the version a notification names needs s3:GetObjectVersion.
            ("s3:GetObject", requests),
            ("s3:GetObjectVersion", requests),
            ("s3:PutObject", results),
            # A rewrite reads the sequencer of the result it would replace.
            ("s3:GetObject", results),
        }


def test_queues_redrive_to_a_dead_letter_queue_and_outlast_the_function():
    for provider in ("Pan123", "Kdocs"):
        queue = TEMPLATE.resources[f"{provider}RequestsQueue"]["Properties"]
        function = FUNCTIONS[f"{provider}EventsFunction"]["Properties"]
        assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
            "Fn::GetAtt": [f"{provider}RequestsDeadLetterQueue", "Arn"]
        }
        assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
        source = mapping_of(f"{provider}EventsFunction")
        assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert source["ScalingConfig"]["MaximumConcurrency"] == 2


def test_bucket_notifies_each_providers_queue_by_prefix():
    notifications = TEMPLATE.resources["ShareRequestsBucket"]["Properties"]["NotificationConfiguration"]
    routes = {
        entry["Filter"]["S3Key"]["Rules"][0]["Value"]: entry["Queue"]["Fn::GetAtt"][0]
        for entry in notifications["QueueConfigurations"]
    }
    assert routes == {
        "requests/123pan/": "Pan123RequestsQueue",
        "requests/kdocs/": "KdocsRequestsQueue",
        "uploads/123pan/": "UploadsQueue",
        "uploads/kdocs/": "UploadsQueue",
    }


def test_idempotency_table_has_id_key_and_expiration_ttl():
    table = TEMPLATE.resources["IdempotencyTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}


def test_only_the_tokens_function_writes_secrets_and_only_the_provider_secrets():
    writers = {
        function_id: statement["Resource"]
        for function_id in FUNCTIONS
        for statement in statements(function_id)
        if "secretsmanager" in str(statement["Action"])
    }
    assert writers == {"TokensFunction": [{"Ref": "Pan123Secret"}, {"Ref": "KdocsSecret"}]}


def test_the_tokens_function_runs_on_a_schedule_alone_and_alarms_on_failure():
    tokens = FUNCTIONS["TokensFunction"]["Properties"]
    assert tokens["Events"]["Hourly"]["Type"] == "ScheduleV2"
    assert tokens["ReservedConcurrentExecutions"] == 1
    alarm = TEMPLATE.resources["TokenRenewalFailedAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Threshold"]) == ("sharelink", "TokenRenewalFailed", 1)
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "tokens"}]


def test_each_function_names_in_its_environment_exactly_the_secrets_it_may_read():
    """Spelled out, so a change to the rule above cannot quietly widen who reads which secret."""
    readers = {
        logical_id: referenced_secrets(function["Properties"].get("Policies", []))
        for logical_id, function in FUNCTIONS.items()
    }
    assert readers == {
        "Pan123ApiFunction": {"Pan123Secret"},
        "Pan123EventsFunction": {"Pan123Secret"},
        "KdocsApiFunction": {"KdocsSecret"},
        "KdocsEventsFunction": {"KdocsSecret"},
        "TokensFunction": {"Pan123Secret", "KdocsSecret"},
        "DocsFunction": set(),
        "UploadStarterFunction": set(),
        "Pan123UploadFunction": {"Pan123Secret"},
        "KdocsUploadFunction": {"KdocsSecret"},
    }
    assert set(SECRETS) == {"Pan123Secret", "KdocsSecret"}


def test_only_the_tokens_function_may_put_secret_values():
    putters = {
        function_id: statement["Resource"]
        for function_id in FUNCTIONS
        for statement in statements(function_id)
        if "secretsmanager:PutSecretValue" in actions(statement)
    }
    assert putters == {"TokensFunction": [{"Ref": "Pan123Secret"}, {"Ref": "KdocsSecret"}]}
    assert actions(next(s for s in statements("TokensFunction") if "secretsmanager:PutSecretValue" in actions(s))) == [
        "secretsmanager:PutSecretValue"
    ]


def test_no_inline_statement_is_a_wildcard():
    """Every statement the template writes allows named actions on this stack's resources: no "*" anywhere.

    What this cannot see: the AWS managed policies SAM attaches by itself (AWSLambdaBasicExecutionRole: logs on "*";
    AWSXrayWriteOnlyAccess: X-Ray, which has no resource-level permissions).
    """
    for function_id, function in FUNCTIONS.items():
        # Only inline statements and the GetSecretValue template: no managed policy by name or ARN.
        assert all(isinstance(policy, dict) for policy in function["Properties"].get("Policies", [])), function_id
        for statement in statements(function_id):
            assert statement["Effect"] == "Allow", function_id
            assert set(statement) == {"Effect", "Action", "Resource"}, function_id  # no NotAction, NotResource
            for action in actions(statement):
                assert "*" not in action, (function_id, action)
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for resource in resources:
                assert resource != "*", function_id
                assert isinstance(resource, dict), (function_id, resource)  # a Ref, GetAtt or Sub of this stack


def test_events_functions_reserve_what_their_queue_mapping_may_use():
    for function_id in ("Pan123EventsFunction", "KdocsEventsFunction"):
        function = FUNCTIONS[function_id]["Properties"]
        maximum = mapping_of(function_id)["ScalingConfig"]["MaximumConcurrency"]
        assert function["ReservedConcurrentExecutions"] == maximum, function_id


def test_every_checkov_skip_says_why():
    """.checkov.yaml: each skipped check has a reason, as a comment on its line or alone on the line above."""
    text = (ROOT / ".checkov.yaml").read_text()
    lines = text.splitlines()
    skipped = []
    for number, line in enumerate(lines):
        entry = re.fullmatch(r"\s*-\s*(CKV2?_[A-Z0-9]+_\d+)\s*(?:#\s*(.*))?", line)
        if not entry:
            continue
        reason = entry.group(2) or ""
        above = re.fullmatch(r"\s*#\s*(.*)", lines[number - 1]) if number else None
        if not reason and above:
            reason = above.group(1)
        assert len(reason.split()) >= 5, f"{entry.group(1)} is skipped without a reason"
        skipped.append(entry.group(1))
    assert skipped, "no skip-check entries found"
    assert len(skipped) == len(set(skipped)), skipped
    assert yaml.safe_load(text)["skip-check"] == skipped  # what checkov reads is what was checked here


def test_events_functions_may_consume_their_own_queue_only():
    """An explicit event source mapping: SAM's SQS event would attach AWSLambdaSQSQueueExecutionRole (every queue)."""
    for provider in ("Pan123", "Kdocs"):
        function_id = f"{provider}EventsFunction"
        assert "Events" not in FUNCTIONS[function_id]["Properties"], function_id
        queue = {"Fn::GetAtt": [f"{provider}RequestsQueue", "Arn"]}
        assert mapping_of(function_id)["EventSourceArn"] == queue
        consume = [
            statement for statement in statements(function_id) if "sqs:ReceiveMessage" in str(statement["Action"])
        ]
        assert [statement["Resource"] for statement in consume] == [queue], function_id


def test_provider_functions_may_only_send_renewal_requests():
    """A rejected token is reported to the tokens function's queue; nothing else is sent anywhere."""
    renewal_queue = {"Fn::GetAtt": ["TokenRenewalQueue", "Arn"]}
    for function_id in ("Pan123ApiFunction", "KdocsApiFunction", "Pan123EventsFunction", "KdocsEventsFunction"):
        send = [statement for statement in statements(function_id) if "sqs:SendMessage" in str(statement["Action"])]
        assert [(statement["Action"], statement["Resource"]) for statement in send] == [
            ("sqs:SendMessage", renewal_queue)
        ], function_id
        assert FUNCTIONS[function_id]["Properties"]["Environment"]["Variables"]["TOKEN_RENEWAL_QUEUE_URL"] == {
            "Ref": "TokenRenewalQueue"
        }
    assert mapping_of("TokensFunction")["EventSourceArn"] == renewal_queue
