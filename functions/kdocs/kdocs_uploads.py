"""A document dropped under uploads/kdocs/, uploaded and shared as a durable execution (one per object version)."""

from aws_durable_execution_sdk_python import DurableContext, durable_execution

from sharelink import aws
from sharelink.observability import logger
from sharelink.providers.kdocs import Kdocs
from sharelink.upload_flow import KdocsSteps, UploadFlow
from sharelink.uploads.kdocs import KdocsUploads

session = aws.session()
kdocs = Kdocs.from_env(session)
flow = UploadFlow.from_env(KdocsSteps(KdocsUploads(kdocs, session.client("s3"))), kdocs, session)


@logger.inject_lambda_context
@durable_execution
def lambda_handler(event: dict, context: DurableContext) -> dict:
    return flow.run(event, context)
