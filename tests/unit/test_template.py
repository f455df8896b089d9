"""What template.yaml promises: least privilege, no anonymous route, logs that expire, the layer's build."""

from __future__ import annotations

from pathlib import Path

from local.template import Template

TEMPLATE = Template(Path(__file__).resolve().parents[2] / "template.yaml")
FUNCTIONS = TEMPLATE.of_type("AWS::Serverless::Function")
SECRETS = TEMPLATE.of_type("AWS::SecretsManager::Secret")


def referenced_secrets(policies: list) -> set[str]:
    found = set()
    for policy in policies:
        for name, spec in policy.items():
            assert name == "AWSSecretsManagerGetSecretValuePolicy", f"unexpected policy {name}"
            found.add(spec["SecretArn"]["Ref"])
    return found


def test_each_function_may_read_its_own_secret_and_nothing_else():
    for logical_id, function in FUNCTIONS.items():
        props = function["Properties"]
        variables = props["Environment"]["Variables"].values()
        own = {value["Ref"] for value in variables if isinstance(value, dict) and value.get("Ref") in SECRETS}
        assert referenced_secrets(props.get("Policies", [])) == own, logical_id


def test_no_route_is_anonymous():
    for logical_id, route in TEMPLATE.of_type("AWS::ApiGatewayV2::Route").items():
        authorization = route["Properties"]["AuthorizationType"]
        assert authorization == {"Fn::If": ["UseJwt", "JWT", "AWS_IAM"]}, logical_id


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
    }
