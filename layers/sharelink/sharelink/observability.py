"""The one Logger, Tracer and Metrics of a function (service name and namespace come from the environment)."""

import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer

# Reads, skipped test events and rejected calls publish no metric by design: no warning for that.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger()
# X-Ray traces only what a function calls: each provider call in sharelink.transport (a subsegment of its own,
# requests left unpatched), botocore patched in sharelink.aws where a function first uses AWS.
tracer = Tracer(auto_patch=False)
metrics = Metrics()
