"""A file dropped under uploads/123pan/, uploaded and shared as a durable execution (one per object version)."""

from aws_durable_execution_sdk_python import DurableContext, durable_execution

from sharelink import aws
from sharelink.observability import logger
from sharelink.providers.pan123 import Pan123
from sharelink.upload_flow import Pan123Steps, ShareDefaults, UploadFlow
from sharelink.uploads.pan123 import Pan123Uploads

session = aws.session()
pan123 = Pan123.from_env(session)
uploads = Pan123Uploads(pan123, session.client("s3"), folder_root=ShareDefaults.from_env().pan123_folder)
flow = UploadFlow.from_env(Pan123Steps(uploads), pan123, session)


@logger.inject_lambda_context
@durable_execution
def lambda_handler(event: dict, context: DurableContext) -> dict:
    return flow.run(event, context)
