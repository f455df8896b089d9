"""The emulator enforces IAM: each function's role allows what template.yaml says and nothing more, as in AWS."""

from __future__ import annotations

import json
import re
from urllib.parse import unquote_plus

import pytest
import requests
from botocore.exceptions import ClientError

from local.aws.emulator import LocalAws
from local.aws.iam import Credentials, Identity, function_roles
from local.runtime.worker import LambdaContext
from local.template import Template
from tests.conftest import (
    FUNCTION_ENV,
    KDOCS_SECRET,
    PAN123_REQUESTS_QUEUE,
    PAN123_SECRET,
    REQUESTS_BUCKET,
    TEMPLATE,
    TEST_TEMPLATE,
    TOKEN_RENEWAL_QUEUE,
    load_event,
)

REQUEST_KEY = "requests/123pan/季度报告.json"
DENIED = {"AccessDenied", "AccessDeniedException"}


def refusal(call, *args, **kwargs) -> str:
    """The error code of a call that must fail."""
    with pytest.raises(ClientError) as refused:
        call(*args, **kwargs)
    return str(refused.value.response["Error"]["Code"])


def as_role(aws: LocalAws, function_id: str, service: str):
    return aws.client(service, aws.roles[function_id])


@pytest.fixture
def secrets(fresh_aws: LocalAws) -> dict[str, str]:
    """Both providers' secrets, by name -> ARN."""
    created = {}
    for name in (PAN123_SECRET, KDOCS_SECRET):
        created[name] = fresh_aws.client("secretsmanager").create_secret(Name=name, SecretString="{}")["ARN"]
    return created


@pytest.fixture
def versioned_request(fresh_aws: LocalAws) -> str:
    """A request object in the versioned requests bucket; answers its version."""
    s3 = fresh_aws.client("s3")
    s3.create_bucket(Bucket=REQUESTS_BUCKET)
    s3.put_bucket_versioning(Bucket=REQUESTS_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return str(s3.put_object(Bucket=REQUESTS_BUCKET, Key=REQUEST_KEY, Body=b"{}")["VersionId"])


def test_a_function_reads_its_own_secret_by_name_or_arn_and_never_the_other_providers(fresh_aws, secrets):
    for function_id, own, other in (
        ("Pan123ApiFunction", PAN123_SECRET, KDOCS_SECRET),
        ("KdocsApiFunction", KDOCS_SECRET, PAN123_SECRET),
    ):
        client = as_role(fresh_aws, function_id, "secretsmanager")
        assert client.get_secret_value(SecretId=own)["Name"] == own
        assert client.get_secret_value(SecretId=secrets[own])["Name"] == own
        assert refusal(client.get_secret_value, SecretId=other) in DENIED, function_id
        assert refusal(client.get_secret_value, SecretId=secrets[other]) in DENIED, function_id
        assert refusal(client.put_secret_value, SecretId=own, SecretString="{}") in DENIED, function_id
        # SAM's AWSSecretsManagerGetSecretValuePolicy grants GetSecretValue alone.
        assert refusal(client.describe_secret, SecretId=own) in DENIED, function_id


def test_only_the_tokens_function_writes_the_secrets(fresh_aws, secrets):
    tokens = as_role(fresh_aws, "TokensFunction", "secretsmanager")

    for name, arn in secrets.items():
        tokens.put_secret_value(SecretId=arn, SecretString='{"access_token": "new"}')
        assert json.loads(tokens.get_secret_value(SecretId=name)["SecretString"]) == {"access_token": "new"}
    assert (
        refusal(
            as_role(fresh_aws, "Pan123EventsFunction", "secretsmanager").put_secret_value,
            SecretId=PAN123_SECRET,
            SecretString="{}",
        )
        in DENIED
    )


def test_the_events_role_reads_a_request_version_with_s3_get_object_version(fresh_aws, versioned_request):
    s3 = as_role(fresh_aws, "Pan123EventsFunction", "s3")

    assert s3.get_object(Bucket=REQUESTS_BUCKET, Key=REQUEST_KEY, VersionId=versioned_request)["Body"].read() == b"{}"
    assert (
        refusal(as_role(fresh_aws, "KdocsEventsFunction", "s3").get_object, Bucket=REQUESTS_BUCKET, Key=REQUEST_KEY)
        in DENIED
    )


def test_without_s3_get_object_version_in_the_template_a_request_version_is_refused(
    fresh_aws, versioned_request, tmp_path
):
    text = TEMPLATE.read_text().replace("[s3:GetObject, s3:GetObjectVersion]", "s3:GetObject")
    assert text.count("Action: s3:GetObject\n") == 2
    (tmp_path / "template.yaml").write_text(text)
    names = TEST_TEMPLATE.physical_names
    role = function_roles(Template(tmp_path / "template.yaml", stack_name="without-version", physical_names=names))[
        "Pan123EventsFunction"
    ]
    fresh_aws.register([role])
    s3 = fresh_aws.client("s3", role)

    assert s3.get_object(Bucket=REQUESTS_BUCKET, Key=REQUEST_KEY)["Body"].read() == b"{}"
    assert refusal(s3.get_object, Bucket=REQUESTS_BUCKET, Key=REQUEST_KEY, VersionId=versioned_request) in DENIED


def test_a_versions_tags_and_head_need_the_version_actions(fresh_aws, tmp_path):
    s3 = fresh_aws.client("s3")
    s3.create_bucket(Bucket=REQUESTS_BUCKET)
    s3.put_bucket_versioning(Bucket=REQUESTS_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    key = "uploads/123pan/q3.pdf"
    version = {"Key": key, "VersionId": s3.put_object(Bucket=REQUESTS_BUCKET, Key=key, Body=b"%PDF")["VersionId"]}
    tagging = {"TagSet": [{"Key": "sharelink-url", "Value": "https://www.123pan.com/s/x"}]}
    text = TEMPLATE.read_text()
    for action in ("s3:GetObjectVersion", "s3:GetObjectVersionTagging", "s3:PutObjectVersionTagging"):
        assert text.count(f"                - {action}\n") == 2
        text = text.replace(f"                - {action}\n", "")
    (tmp_path / "template.yaml").write_text(text)
    template = Template(
        tmp_path / "template.yaml", stack_name="without-versions", physical_names=TEST_TEMPLATE.physical_names
    )
    without = function_roles(template)["Pan123UploadFunction"]
    fresh_aws.register([without])
    allowed, refused = as_role(fresh_aws, "Pan123UploadFunction", "s3"), fresh_aws.client("s3", without)

    for role in (allowed, refused):  # the object's current version, by its key alone
        role.head_object(Bucket=REQUESTS_BUCKET, Key=key)
        role.put_object_tagging(Bucket=REQUESTS_BUCKET, Key=key, Tagging=tagging)
        assert role.get_object_tagging(Bucket=REQUESTS_BUCKET, Key=key)["TagSet"] == tagging["TagSet"]
    allowed.head_object(Bucket=REQUESTS_BUCKET, **version)
    allowed.put_object_tagging(Bucket=REQUESTS_BUCKET, **version, Tagging=tagging)
    assert allowed.get_object_tagging(Bucket=REQUESTS_BUCKET, **version)["TagSet"] == tagging["TagSet"]
    assert refusal(refused.head_object, Bucket=REQUESTS_BUCKET, **version) in DENIED | {"403"}
    assert refusal(refused.get_object_tagging, Bucket=REQUESTS_BUCKET, **version) in DENIED
    assert refusal(refused.put_object_tagging, Bucket=REQUESTS_BUCKET, **version, Tagging=tagging) in DENIED


def test_the_events_role_writes_results_of_its_provider_only(fresh_aws, versioned_request):
    s3 = as_role(fresh_aws, "Pan123EventsFunction", "s3")

    s3.put_object(Bucket=REQUESTS_BUCKET, Key="results/123pan/x.json", Body=b"{}")
    for key in ("results/kdocs/x.json", "requests/123pan/x.json"):
        assert refusal(s3.put_object, Bucket=REQUESTS_BUCKET, Key=key, Body=b"{}") in DENIED, key
    assert refusal(s3.list_objects_v2, Bucket=REQUESTS_BUCKET) in DENIED


def test_dynamodb_eventbridge_and_sqs_are_checked_on_the_resource_acted_on(fresh_aws):
    fresh_aws.create_table("elsewhere", TEST_TEMPLATE.resources["IdempotencyTable"]["Properties"])
    fresh_aws.client("events").create_event_bus(Name="elsewhere")
    requests_queue = fresh_aws.client("sqs").create_queue(QueueName=PAN123_REQUESTS_QUEUE)["QueueUrl"]
    renewal_queue = fresh_aws.queue_url(TOKEN_RENEWAL_QUEUE)
    dynamodb, events, sqs = (as_role(fresh_aws, "Pan123EventsFunction", s) for s in ("dynamodb", "events", "sqs"))
    entry = {"Source": "sharelink", "DetailType": "Share Created", "Detail": "{}"}

    dynamodb.put_item(TableName=FUNCTION_ENV["IDEMPOTENCY_TABLE"], Item={"id": {"S": "1"}})
    assert refusal(dynamodb.put_item, TableName="elsewhere", Item={"id": {"S": "1"}}) in DENIED
    assert refusal(dynamodb.scan, TableName=FUNCTION_ENV["IDEMPOTENCY_TABLE"]) in DENIED
    own, other = ({"Keys": [{"id": {"S": "1"}}]} for _ in range(2))
    read = dynamodb.batch_get_item(RequestItems={FUNCTION_ENV["IDEMPOTENCY_TABLE"]: own})
    assert read["Responses"][FUNCTION_ENV["IDEMPOTENCY_TABLE"]] == [{"id": {"S": "1"}}]
    both = {FUNCTION_ENV["IDEMPOTENCY_TABLE"]: own, "elsewhere": other}
    assert refusal(dynamodb.batch_get_item, RequestItems=both) in DENIED
    put = [{"PutRequest": {"Item": {"id": {"S": "2"}}}}]
    assert refusal(dynamodb.batch_write_item, RequestItems={"elsewhere": put}) in DENIED
    assert events.put_events(Entries=[entry, entry | {"EventBusName": "default"}])["FailedEntryCount"] == 0
    assert refusal(events.put_events, Entries=[entry, entry | {"EventBusName": "elsewhere"}]) in DENIED
    sqs.send_message(QueueUrl=renewal_queue, MessageBody="{}")
    assert sqs.receive_message(QueueUrl=requests_queue).get("Messages") is None
    assert refusal(sqs.send_message, QueueUrl=requests_queue, MessageBody="{}") in DENIED
    assert refusal(sqs.receive_message, QueueUrl=renewal_queue) in DENIED


def test_the_admin_identity_may_do_everything(fresh_aws, secrets):
    fresh_aws.client("events").create_event_bus(Name="elsewhere")
    fresh_aws.client("s3").create_bucket(Bucket="anything")

    fresh_aws.client("secretsmanager").put_secret_value(SecretId=PAN123_SECRET, SecretString="{}")
    fresh_aws.client("s3").put_object(Bucket="anything", Key="any/key", Body=b"")
    assert (
        fresh_aws.client("events").put_events(
            Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}", "EventBusName": "elsewhere"}]
        )["FailedEntryCount"]
        == 0
    )
    assert fresh_aws.client("dynamodb").scan(TableName=FUNCTION_ENV["IDEMPOTENCY_TABLE"])["Count"] == 0


def test_unsigned_requests_and_unknown_keys_are_refused(fresh_aws, secrets):
    known = fresh_aws.roles["Pan123ApiFunction"]

    assert requests.get(f"{fresh_aws.endpoint}/{REQUESTS_BUCKET}", timeout=5).status_code == 403
    unsigned = requests.post(
        fresh_aws.endpoint,
        headers={"X-Amz-Target": "secretsmanager.GetSecretValue", "Content-Type": "application/x-amz-json-1.1"},
        data=json.dumps({"SecretId": PAN123_SECRET}),
        timeout=5,
    )
    assert unsigned.status_code in (400, 403) and PAN123_SECRET not in unsigned.text
    unknown = Identity("nobody", Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"), ())
    assert refusal(fresh_aws.client("secretsmanager", unknown).get_secret_value, SecretId=PAN123_SECRET) == (
        "UnrecognizedClientException"
    )
    assert refusal(fresh_aws.client("s3", unknown).list_buckets) == "InvalidAccessKeyId"
    forged = Identity("forged", Credentials(known.credentials.access_key_id, "not-the-secret"), ())
    assert refusal(fresh_aws.client("secretsmanager", forged).get_secret_value, SecretId=PAN123_SECRET) == (
        "InvalidSignatureException"
    )


def test_identities_outlive_a_reset(aws):
    aws.reset()

    assert as_role(aws, "TokensFunction", "sts").get_caller_identity()["Account"] == "123456789012"


def test_the_handlers_act_as_their_functions_roles(
    aws, pan123_api, pan123_events, kdocs_api, kdocs_events, tokens_function
):
    for module, function_id in (
        (pan123_api, "Pan123ApiFunction"),
        (pan123_events, "Pan123EventsFunction"),
        (kdocs_api, "KdocsApiFunction"),
        (kdocs_events, "KdocsEventsFunction"),
        (tokens_function, "TokensFunction"),
    ):
        credentials = module.session.boto3.get_credentials()
        role = aws.roles[function_id].credentials
        assert (credentials.access_key, credentials.token) == (role.access_key_id, role.session_token), function_id


def test_a_request_put_into_the_versioned_bucket_is_notified_with_its_version(fresh_aws):
    sqs, s3 = fresh_aws.client("sqs"), fresh_aws.client("s3")
    queue_url = sqs.create_queue(QueueName=PAN123_REQUESTS_QUEUE)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.create_bucket(Bucket=REQUESTS_BUCKET)
    s3.put_bucket_versioning(Bucket=REQUESTS_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(
        Bucket=REQUESTS_BUCKET,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]},
    )

    versions = [s3.put_object(Bucket=REQUESTS_BUCKET, Key=REQUEST_KEY, Body=body)["VersionId"] for body in (b"1", b"2")]

    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    notified = [json.loads(m["Body"])["Records"][0]["s3"]["object"] for m in messages if "Records" in m["Body"]]
    assert [entry["versionId"] for entry in notified] == versions
    assert all(re.fullmatch(r"[0-9A-F]{18}", entry["sequencer"]) for entry in notified)
    assert notified[0]["sequencer"] < notified[1]["sequencer"]


def test_an_unversioned_bucket_notifies_no_version(fresh_aws):
    sqs, s3 = fresh_aws.client("sqs"), fresh_aws.client("s3")
    queue_url = sqs.create_queue(QueueName=PAN123_REQUESTS_QUEUE)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.create_bucket(Bucket=REQUESTS_BUCKET)
    s3.put_bucket_notification_configuration(
        Bucket=REQUESTS_BUCKET,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]},
    )

    s3.put_object(Bucket=REQUESTS_BUCKET, Key=REQUEST_KEY, Body=b"1")

    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    (notified,) = [json.loads(m["Body"])["Records"][0]["s3"]["object"] for m in messages if "Records" in m["Body"]]
    assert "versionId" not in notified and "sequencer" in notified


def test_the_events_handler_reads_the_version_its_notification_names(pan123_events, pan123_sim, fresh_aws):
    event = load_event("pan123_s3_sqs_versioned.json")
    notification = json.loads(event["Records"][0]["body"])
    stored = notification["Records"][0]["s3"]["object"]
    key = unquote_plus(stored["key"])
    s3 = fresh_aws.client("s3")
    s3.create_bucket(Bucket=REQUESTS_BUCKET)
    s3.put_bucket_versioning(Bucket=REQUESTS_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    request = {"shareName": "季度报告", "shareExpire": 7, "fileIDList": "14713526"}
    stored["versionId"] = s3.put_object(Bucket=REQUESTS_BUCKET, Key=key, Body=json.dumps(request))["VersionId"]
    s3.put_object(Bucket=REQUESTS_BUCKET, Key=key, Body=b"a later version, not JSON")
    event["Records"][0]["body"] = json.dumps(notification)

    answer = pan123_events.lambda_handler(event, LambdaContext("events-test"))

    result_key = "results/" + key.removeprefix("requests/")
    result = json.loads(s3.get_object(Bucket=REQUESTS_BUCKET, Key=result_key)["Body"].read())
    assert answer == {"batchItemFailures": []}
    assert (result["status"], result["share"]["name"]) == ("created", "季度报告")
