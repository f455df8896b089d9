"""Shared fixtures: AWS in a moto server on loopback, the 123pan simulator, handlers loaded as Lambda does."""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from local.aws.emulator import LocalAws
from local.aws.iam import function_roles
from local.aws.secrets_extension import SecretsExtension
from local.runtime.worker import LambdaContext
from local.simulators.kdocs import KdocsSimulator
from local.simulators.pan123 import Pan123Simulator
from local.stack import TEMPLATE, kdocs_sim_secret, pan123_sim_secret
from local.template import Template
from tests.leaks import OBSERVED, leaked, observe

EVENTS = Path(__file__).resolve().parent.parent / "events"
PAN123_SECRET = "sharelink-test/pan123"
IDEMPOTENCY_TABLE = Template(TEMPLATE).resources["IdempotencyTable"]["Properties"]
KDOCS_SECRET = "sharelink-test/kdocs"
TOKEN_RENEWAL_QUEUE = "sharelink-test-token-renewal"
# Short enough for timeout tests to be quick, long enough for a loaded CI machine.
PROVIDER_TIMEOUT_S = "1"
PROVIDER_SETTLE_S = "3"
# What the template's Globals give every function; X-Ray has no daemon here.
FUNCTION_ENV = {
    "PROVIDER_TIMEOUT_S": PROVIDER_TIMEOUT_S,
    "POWERTOOLS_SERVICE_NAME": "sharelink-tests",
    "POWERTOOLS_METRICS_NAMESPACE": "sharelink",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "IDEMPOTENCY_TABLE": "sharelink-test-idempotency",
    "EVENT_BUS_NAME": "default",
    # How long after a timed-out create a retry waits for the provider to settle (60 s deployed).
    "PROVIDER_SETTLE_S": PROVIDER_SETTLE_S,
    "TOKEN_RENEWAL_QUEUE_URL": f"https://sqs.us-east-1.amazonaws.com/123456789012/{TOKEN_RENEWAL_QUEUE}",
}
# Set before any test module imports the layer: Powertools reads it when sharelink.observability is imported.
os.environ.update(FUNCTION_ENV)
# Servers started for the session stop by themselves after this, whatever happens to the run.
SESSION_LIFETIME_S = 3600


def _sample_source(name: str) -> tuple[str, str]:
    """(bucket, queue) that an S3-over-SQS sample of events/ comes from."""
    record = json.loads((EVENTS / name).read_text())["Records"][0]
    bucket = json.loads(record["body"])["Records"][0]["s3"]["bucket"]["name"]
    return bucket, record["eventSourceARN"].rsplit(":", 1)[1]


REQUESTS_BUCKET, PAN123_REQUESTS_QUEUE = _sample_source("pan123_s3_sqs.json")
KDOCS_REQUESTS_QUEUE = _sample_source("kdocs_s3_sqs.json")[1]
TEST_TEMPLATE = Template(
    TEMPLATE,
    stack_name="sharelink-test",
    physical_names={
        "Pan123Secret": PAN123_SECRET,
        "KdocsSecret": KDOCS_SECRET,
        "IdempotencyTable": FUNCTION_ENV["IDEMPOTENCY_TABLE"],
        "TokenRenewalQueue": TOKEN_RENEWAL_QUEUE,
        "ShareRequestsBucket": REQUESTS_BUCKET,
        "Pan123RequestsQueue": PAN123_REQUESTS_QUEUE,
        "KdocsRequestsQueue": KDOCS_REQUESTS_QUEUE,
    },
)
"""template.yaml for the in-process tests, whose handlers act as the roles it gives them.

A test's resources are the template's, named as the fixtures create them (the secrets, the table, the renewal
queue) and as the samples in events/ name the bucket and the queues they come from. Only names change: the roles
are the template's statements, resolved on those names, so a test reaching anything else is refused as in AWS.
The fixtures' secrets are created after the roles, so a secret's ARN is the pattern `<name>-??????`.
"""


FUNCTIONS = TEST_TEMPLATE.functions()
# The extension of each function that has its layer, started on its first acting_as (local.aws.secrets_extension).
SECRETS_EXTENSIONS: dict[str, SecretsExtension] = {}


def _secrets_extension_env(aws: LocalAws, function_id: str) -> dict[str, str]:
    """What a function with the extension's layer finds in its environment: the template's settings, the port."""
    spec = FUNCTIONS[function_id]
    if not spec.secrets_extension:
        return {}
    env = spec.environment | aws.role_env(function_id)
    if function_id not in SECRETS_EXTENSIONS:
        SECRETS_EXTENSIONS[function_id] = SecretsExtension(env).start()
    settings = {name: value for name, value in env.items() if name.startswith(("PARAMETERS_SECRETS_", "SECRETS_"))}
    return settings | {"PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(SECRETS_EXTENSIONS[function_id].port)}


@contextmanager
def acting_as(aws: LocalAws, function_id: str) -> Iterator[None]:
    """Import a handler module here: its clients keep the role's credentials (and, with the extension's layer, the
    port of a stand-in of the extension acting as that role), the test's code goes on as admin."""
    role_env = aws.role_env(function_id) | _secrets_extension_env(aws, function_id)
    os.environ.update(role_env)
    try:
        yield
    finally:
        for name in role_env:
            os.environ.pop(name)
        os.environ.update(aws.env)


def load_event(name: str, **changes: Any) -> dict[str, Any]:
    """A sample event from events/, with `body` (a dict is JSON-encoded) or query changes."""
    event = json.loads((EVENTS / name).read_text())
    if "body" in changes:
        body = changes.pop("body")
        event["body"] = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    if "query" in changes:
        query = changes.pop("query")
        event["queryStringParameters"] = query
        event["rawQueryString"] = "&".join(f"{key}={value}" for key, value in query.items())
    assert not changes, f"unknown changes {changes}"
    return event


@pytest.fixture(scope="session")
def aws() -> Iterator[LocalAws]:
    emulator = LocalAws().start()
    emulator.use_roles(function_roles(TEST_TEMPLATE))
    os.environ.pop("AWS_SESSION_TOKEN", None)  # the admin's keys are long-term: a token makes them invalid
    os.environ.update(emulator.env)
    yield emulator
    for extension in SECRETS_EXTENSIONS.values():
        extension.stop()
    emulator.stop()


@pytest.fixture(scope="session")
def pan123_sim_session() -> Iterator[Pan123Simulator]:
    sim = Pan123Simulator(clients={"sim-client": "sim-secret"}).start(lifetime_s=SESSION_LIFETIME_S)
    yield sim
    sim.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Every log line, printed line, answer and result of a test is searched for the simulators' secrets."""
    report: pytest.TestReport = yield
    texts = [content for _, content in report.sections] + OBSERVED
    if report.when == "teardown":
        OBSERVED.clear()
    found = leaked(texts)
    if found and report.passed:
        report.outcome = "failed"
        report.longrepr = f"{found} secret value(s) of the simulators appeared in this test's output or answers"
    return report


def observe_results(aws: LocalAws) -> None:
    """Hand every result object in the emulator's buckets to the leak check."""
    s3 = aws.client("s3")
    for bucket in s3.list_buckets()["Buckets"]:
        for entry in s3.list_objects_v2(Bucket=bucket["Name"], Prefix="results/").get("Contents", []):
            observe(s3.get_object(Bucket=bucket["Name"], Key=entry["Key"])["Body"].read())


def forget_cached_secrets() -> None:
    """Each imported handler module reads its secret through its own cache (sharelink.tokens.SecretTokens), and
    through the extension's where it has the layer."""
    from sharelink.tokens import SecretTokens  # not at the top: the layer reads FUNCTION_ENV when first imported

    for extension in SECRETS_EXTENSIONS.values():
        extension.clear_cache()
    for name in ("pan123_api", "pan123_events", "kdocs_api", "kdocs_events"):
        module = sys.modules.get(name)
        for value in vars(module).values() if module else ():
            tokens = getattr(value, "tokens", None) or getattr(getattr(value, "provider", None), "tokens", None)
            if isinstance(tokens, SecretTokens):
                tokens.secrets.clear_cache()


def versioned_bucket(aws: LocalAws, name: str) -> Any:
    """An S3 client (admin) and a bucket of that name with versioning on, as the stack's bucket is."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return s3


@pytest.fixture
def fresh_aws(aws: LocalAws) -> Iterator[LocalAws]:
    """No resources left from an earlier test, no secret cached by Powertools parameters, an idempotency table."""
    aws.reset()
    forget_cached_secrets()
    aws.create_table(FUNCTION_ENV["IDEMPOTENCY_TABLE"], IDEMPOTENCY_TABLE)
    aws.client("sqs").create_queue(QueueName=TOKEN_RENEWAL_QUEUE)
    yield aws
    observe_results(aws)


@pytest.fixture
def pan123_sim(pan123_sim_session: Pan123Simulator, fresh_aws: LocalAws) -> Pan123Simulator:
    """A fresh simulator state and a secret holding a token it issued."""
    pan123_sim_session.reset()
    secret = pan123_sim_secret(pan123_sim_session.url)
    fresh_aws.client("secretsmanager").create_secret(Name=PAN123_SECRET, SecretString=json.dumps(secret))
    pan123_sim_session.requests.clear()
    return pan123_sim_session


@pytest.fixture(scope="session")
def kdocs_sim_session() -> Iterator[KdocsSimulator]:
    sim = KdocsSimulator().start(lifetime_s=SESSION_LIFETIME_S)
    yield sim
    sim.stop()


@pytest.fixture
def kdocs_sim(kdocs_sim_session: KdocsSimulator, fresh_aws: LocalAws) -> KdocsSimulator:
    """A fresh simulator state and a secret holding tokens from its OAuth code exchange."""
    kdocs_sim_session.reset()
    kdocs_sim_session.errors_as_http_status = False
    secret = kdocs_sim_secret(kdocs_sim_session.url)
    fresh_aws.client("secretsmanager").create_secret(Name=KDOCS_SECRET, SecretString=json.dumps(secret))
    kdocs_sim_session.requests.clear()
    return kdocs_sim_session


@pytest.fixture(scope="session")
def kdocs_api(kdocs_sim_session: KdocsSimulator, aws: LocalAws) -> ModuleType:
    """The KDocs API handler module, imported with the environment the template gives it."""
    os.environ.update({"KDOCS_BASE_URL": kdocs_sim_session.url, "KDOCS_SECRET_ID": KDOCS_SECRET})
    with acting_as(aws, "KdocsApiFunction"):
        return importlib.import_module("kdocs_api")


@pytest.fixture(scope="session")
def pan123_api(pan123_sim_session: Pan123Simulator, aws: LocalAws) -> ModuleType:
    """The 123pan API handler module, imported with the environment the template gives it."""
    os.environ.update({"PAN123_BASE_URL": pan123_sim_session.url, "PAN123_SECRET_ID": PAN123_SECRET})
    with acting_as(aws, "Pan123ApiFunction"):
        return importlib.import_module("pan123_api")


@pytest.fixture(scope="session")
def pan123_events(pan123_api: ModuleType, aws: LocalAws) -> ModuleType:
    """The 123pan events handler (same environment as the API function, plus the idempotency table)."""
    with acting_as(aws, "Pan123EventsFunction"):
        return importlib.import_module("pan123_events")


@pytest.fixture(scope="session")
def kdocs_events(kdocs_api: ModuleType, aws: LocalAws) -> ModuleType:
    with acting_as(aws, "KdocsEventsFunction"):
        return importlib.import_module("kdocs_events")


@pytest.fixture(scope="session")
def tokens_function(pan123_api: ModuleType, kdocs_api: ModuleType, aws: LocalAws) -> ModuleType:
    """The tokens function, with both providers' environment."""
    with acting_as(aws, "TokensFunction"):
        return importlib.import_module("tokens_refresher")


def invoke(module: ModuleType, event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    """Call a handler as Lambda does; answer status, headers and the decoded JSON body."""
    result = module.lambda_handler(event, LambdaContext("test-function"))
    observe(result["body"])
    return result["statusCode"], result.get("headers", {}), json.loads(result["body"])
