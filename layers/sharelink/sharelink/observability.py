"""The one Logger, Tracer and Metrics of a function (service name and namespace come from the environment)."""

import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer

# Reads, skipped test events and rejected calls publish no metric by design: no warning for that.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger()
# X-Ray patches only what a function calls, where the layer first uses it: requests in sharelink.transport (the
# providers), botocore in sharelink.aws (AWS). Patching everything would import what it never uses (httpx...).
tracer = Tracer(auto_patch=False)
metrics = Metrics()
