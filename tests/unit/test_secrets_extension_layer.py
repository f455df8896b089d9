"""Which functions template.yaml gives the AWS Parameters and Secrets Lambda Extension, and how."""

from __future__ import annotations

from pathlib import Path

from local.template import Template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_TEXT = (ROOT / "template.yaml").read_text()
WITH_EXTENSION = {"Pan123ApiFunction", "KdocsApiFunction", "Pan123EventsFunction", "KdocsEventsFunction"}
ARM64_US_EAST_1 = "arn:aws:lambda:us-east-1:177933569100:layer:AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:17"


def test_the_api_and_events_functions_have_the_extensions_layer_after_the_sharelink_layer():
    template = Template(ROOT / "template.yaml")
    functions = template.functions()
    resources = template.of_type("AWS::Serverless::Function")

    assert {function_id for function_id, spec in functions.items() if spec.secrets_extension} == WITH_EXTENSION
    assert template.body["Parameters"]["SecretsExtensionLayerArn"]["Default"] == ARM64_US_EAST_1
    for function_id in WITH_EXTENSION:
        # SAM appends these to Globals' [SharelinkLayer].
        assert resources[function_id]["Properties"]["Layers"] == [{"Ref": "SecretsExtensionLayerArn"}], function_id


def test_functions_with_the_layer_configure_it_and_no_other_function_does():
    for function_id, spec in Template(ROOT / "template.yaml").functions().items():
        settings = {name: value for name, value in spec.environment.items() if "SECRETS" in name}
        expected = {"PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": "2773", "SECRETS_MANAGER_TTL": "300"}
        assert settings == (expected if function_id in WITH_EXTENSION else {}), function_id


def test_the_layer_is_found_by_its_name_whatever_the_region_or_version():
    elsewhere = "arn:aws:lambda:eu-west-1:015030872274:layer:AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:12"

    functions = Template(ROOT / "template.yaml", {"SecretsExtensionLayerArn": elsewhere}).functions()

    assert {function_id for function_id, spec in functions.items() if spec.secrets_extension} == WITH_EXTENSION


def test_a_function_without_the_layer_has_no_extension(tmp_path):
    without = TEMPLATE_TEXT.replace("      Layers: [!Ref SecretsExtensionLayerArn]\n", "")
    assert without.count("SecretsExtensionLayerArn") == 1  # the parameter alone
    (tmp_path / "template.yaml").write_text(without)

    assert not any(spec.secrets_extension for spec in Template(tmp_path / "template.yaml").functions().values())
