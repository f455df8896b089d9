"""Lambda durable functions in the local stack: Invoke through the local Lambda API, executions run by AWS's local
durable execution service, each invocation in a real worker, on 127.0.0.1.

A test-only durable function (tests/handlers/durable_probe.py: a step, a 1 s durable wait, a step) logs every real
run of a step, so that replays that answer a step from its checkpoint show as steps that did not run again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from local.aws.iam import POLICY_VERSION, Credentials, Identity, managed_policy
from local.runtime.durable import DurableRunner
from local.runtime.functions import FunctionRuntime
from local.runtime.lambda_api import OPERATION_PAYLOAD_LIMIT_BYTES, LambdaApi, function_arn
from local.template import DurableConfig, FunctionSpec, Template

HANDLERS = Path(__file__).resolve().parents[1] / "handlers"
DURABLE = "durable-probe"
UNPRIVILEGED = "durable-probe-without-durable-policy"
PLAIN = "plain-probe"
WAIT_S = 60


def role(name: str, *statements: dict[str, Any]) -> Identity:
    principal = f"arn:aws:sts::123456789012:assumed-role/{name}/{name}"
    policies = ({"Version": POLICY_VERSION, "Statement": list(statements)},) if statements else ()
    return Identity(principal, Credentials.for_principal(principal), policies)


def allow_invoke(*function_names: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": [function_arn(n) for n in function_names]}


CALLER = role(
    "caller", allow_invoke(DURABLE, UNPRIVILEGED, PLAIN), {"Effect": "Allow", "Action": "lambda:Get*", "Resource": "*"}
)
OTHER_CALLER = role("other-caller", allow_invoke(PLAIN))
# What SAM gives a function with DurableConfig: AWSLambdaBasicDurableExecutionRolePolicy instead of the basic role.
PROBE_PRINCIPAL = "arn:aws:sts::123456789012:assumed-role/probe/durable-probe"
PROBE_ROLE = Identity(
    PROBE_PRINCIPAL,
    Credentials.for_principal(PROBE_PRINCIPAL),
    (managed_policy("AWSLambdaBasicDurableExecutionRolePolicy"),),
)


@dataclass
class Running:
    api: LambdaApi
    durable: DurableRunner
    log: Path

    def client(self, identity: Identity) -> Any:
        return boto3.client(
            "lambda",
            endpoint_url=self.api.url,
            region_name="us-east-1",
            aws_access_key_id=identity.credentials.access_key_id,
            aws_secret_access_key=identity.credentials.secret_access_key,
            config=Config(retries={"max_attempts": 0}, read_timeout=WAIT_S),
        )

    def steps(self, run: str) -> list[str]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [entry["step"] for entry in map(json.loads, lines) if entry["run"] == run]

    def finished(self, arn: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_S
        execution = self.durable.execution(arn)
        while execution["Status"] == "RUNNING":
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up waiting for {arn} to end")
            time.sleep(0.1)
            execution = self.durable.execution(arn)
        return execution


def function_env(identity: Identity, api: LambdaApi) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": identity.credentials.access_key_id,
        "AWS_SECRET_ACCESS_KEY": identity.credentials.secret_access_key,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_LAMBDA": api.url,
    }


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    log = tmp_path_factory.mktemp("durable") / "steps.jsonl"
    durable_spec = FunctionSpec(
        logical_id="DurableProbe",
        name=DURABLE,
        code_dir=HANDLERS,
        module="durable_probe",
        handler="lambda_handler",
        environment={"PROBE_LOG": str(log)},
        timeout_s=20,
        durable=DurableConfig(execution_timeout_s=WAIT_S),
    )
    unprivileged_spec = replace(durable_spec, logical_id="Unprivileged", name=UNPRIVILEGED)
    plain_spec = FunctionSpec("PlainProbe", PLAIN, HANDLERS, "probe", "lambda_handler", {}, timeout_s=5)
    unprivileged_role = role("unprivileged", {"Effect": "Allow", "Action": "logs:*", "Resource": "*"})
    api = LambdaApi([CALLER, OTHER_CALLER, PROBE_ROLE, unprivileged_role])
    durable = DurableRunner(api.url).start()
    runtimes = {
        "DurableProbe": FunctionRuntime(durable_spec, function_env(PROBE_ROLE, api)),
        "Unprivileged": FunctionRuntime(unprivileged_spec, function_env(unprivileged_role, api)),
        "PlainProbe": FunctionRuntime(plain_spec, {}),
    }
    api.start(runtimes, durable)
    try:
        yield Running(api, durable, log)
    finally:
        durable.stop()
        api.stop()
        for runtime in runtimes.values():
            runtime.stop()


def start(
    running: Running, name: str, payload: dict[str, Any], identity: Identity = CALLER, function: str = DURABLE
) -> dict[str, Any]:
    return dict(
        running.client(identity).invoke(
            FunctionName=function, InvocationType="Event", DurableExecutionName=name, Payload=json.dumps(payload)
        )
    )


def test_an_invoke_with_an_execution_name_runs_the_durable_function_to_completion(running):
    started = start(running, "upload-1", {"run": "upload-1"})

    execution = running.finished(started["DurableExecutionArn"])
    client = running.client(CALLER)
    described = client.get_durable_execution(DurableExecutionArn=started["DurableExecutionArn"])
    history = client.get_durable_execution_history(DurableExecutionArn=started["DurableExecutionArn"])

    assert started["StatusCode"] == 202
    assert (execution["Status"], execution["DurableExecutionName"]) == ("SUCCEEDED", "upload-1")
    result = json.loads(execution["Result"])
    assert result["run"] == "upload-1"
    assert result["first"].startswith("first of upload-1") and result["second"].startswith("second of upload-1")
    assert (described["Status"], described["Result"]) == ("SUCCEEDED", execution["Result"])
    events = [(event["EventType"], event.get("Name")) for event in history["Events"]]
    assert ("StepSucceeded", "first") in events and ("WaitSucceeded", "pause") in events
    assert ("StepSucceeded", "second") in events and ("ExecutionSucceeded", "upload-1") in events
    assert running.steps("upload-1") == ["first", "second"]


def test_the_same_execution_name_started_twice_runs_once(running):
    payload = {"run": "upload-2"}
    with ThreadPoolExecutor(max_workers=2) as pool:
        concurrent = list(pool.map(lambda _: start(running, "upload-2", payload), range(2)))
    arns = {started["DurableExecutionArn"] for started in concurrent}
    (arn,) = arns
    running.finished(arn)
    again = start(running, "upload-2", payload)

    with pytest.raises(ClientError) as other_payload:
        start(running, "upload-2", {"run": "upload-2", "wait_s": 2})

    assert [started["StatusCode"] for started in [*concurrent, again]] == [202, 202, 202]
    assert again["DurableExecutionArn"] == arn
    assert other_payload.value.response["Error"]["Code"] == "DurableExecutionAlreadyStartedException"
    assert other_payload.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert running.steps("upload-2") == ["first", "second"]


def test_a_caller_whose_role_does_not_allow_invoking_the_function_is_refused(running):
    with pytest.raises(ClientError) as refused:
        start(running, "upload-3", {"run": "upload-3"}, identity=OTHER_CALLER)
    stranger = role("stranger")
    with pytest.raises(ClientError) as unknown:
        start(running, "upload-3", {"run": "upload-3"}, identity=stranger)
    unsigned = requests.post(f"{running.api.url}/2015-03-31/functions/{DURABLE}/invocations", json={}, timeout=WAIT_S)

    error = refused.value.response["Error"]
    assert (error["Code"], refused.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "AccessDeniedException",
        403,
    )
    assert f"{OTHER_CALLER.principal} is not authorized to perform: lambda:InvokeFunction" in error["Message"]
    assert function_arn(DURABLE) in error["Message"]
    assert unknown.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert (unsigned.status_code, unsigned.headers["x-amzn-ErrorType"]) == (403, "MissingAuthenticationTokenException")
    assert (DURABLE, "upload-3") not in running.api.executions
    assert running.steps("upload-3") == []


def test_an_execution_whose_worker_dies_is_replayed_without_running_its_checkpointed_step_again(running):
    started = start(running, "upload-4", {"run": "upload-4", "die_once": True})

    execution = running.finished(started["DurableExecutionArn"])

    assert execution["Status"] == "SUCCEEDED"
    assert Path(f"{running.log}.upload-4.died").exists()
    assert running.steps("upload-4") == ["first", "second"]
    result = json.loads(execution["Result"])
    died_in = Path(f"{running.log}.upload-4.died").read_text()
    assert result["first"] == f"first of upload-4 in {died_in}"
    assert not result["second"].endswith(f" in {died_in}")


def test_a_durable_function_whose_role_may_not_checkpoint_fails(running):
    started = start(running, "upload-6", {"run": "upload-6"}, function=UNPRIVILEGED)

    execution = running.finished(started["DurableExecutionArn"])

    assert execution["Status"] == "FAILED"
    assert "lambda:CheckpointDurableExecution" in execution["Error"]["ErrorMessage"]
    assert running.steps("upload-6") == ["first"]


def test_a_step_result_over_an_operations_1_mb_fails_the_execution_as_lambda_refuses_its_checkpoint(running):
    most = OPERATION_PAYLOAD_LIMIT_BYTES - 2  # its JSON, quoted
    fits = start(running, "large-1", {"run": "large-1", "step_bytes": most})
    too_large = start(running, "large-2", {"run": "large-2", "step_bytes": most + 1})

    assert running.finished(fits["DurableExecutionArn"])["Status"] == "SUCCEEDED"
    refused = running.finished(too_large["DurableExecutionArn"])
    assert refused["Status"] == "FAILED"
    assert f"is {OPERATION_PAYLOAD_LIMIT_BYTES + 1} bytes, over its limit" in refused["Error"]["ErrorMessage"]
    assert running.steps("large-2") == []


def test_a_synchronous_invoke_answers_the_executions_result(running):
    answer = running.client(CALLER).invoke(
        FunctionName=DURABLE, DurableExecutionName="upload-5", Payload=json.dumps({"run": "upload-5"})
    )

    assert (answer["StatusCode"], answer.get("FunctionError")) == (200, None)
    assert json.loads(answer["Payload"].read())["run"] == "upload-5"
    assert running.durable.execution(answer["DurableExecutionArn"])["Status"] == "SUCCEEDED"


def test_a_plain_function_answers_its_result_or_its_error(running):
    client = running.client(CALLER)
    event = {"queryStringParameters": {"fail": "1"}}

    ok = client.invoke(FunctionName=function_arn(PLAIN), Payload=b"{}")
    failed = client.invoke(FunctionName=PLAIN, Payload=json.dumps(event))
    queued = client.invoke(FunctionName=PLAIN, InvocationType="Event", Payload=b"{}")

    assert (ok["StatusCode"], json.loads(ok["Payload"].read())["statusCode"]) == (200, 200)
    assert (failed["StatusCode"], failed["FunctionError"]) == (200, "Unhandled")
    assert json.loads(failed["Payload"].read())["errorMessage"] == "asked to fail"
    assert queued["StatusCode"] == 202


def test_the_template_says_which_functions_are_durable(tmp_path):
    template = tmp_path / "template.yaml"
    template.write_text(
        """
Parameters:
  UploadTimeout: {Type: Number, Default: 3600}
Resources:
  Upload:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/upload
      Handler: app.lambda_handler
      DurableConfig: {ExecutionTimeout: !Ref UploadTimeout, RetentionPeriodInDays: 7}
  Api:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: functions/api, Handler: app.lambda_handler}
"""
    )

    functions = Template(template).functions()

    assert functions["Upload"].durable == DurableConfig(execution_timeout_s=3600, retention_days=7)
    assert functions["Upload"].is_durable
    assert not functions["Api"].is_durable
