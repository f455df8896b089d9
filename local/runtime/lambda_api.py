"""Lambda's own API on 127.0.0.1, for the template's functions: what boto3's `lambda` client reaches through
AWS_ENDPOINT_URL_LAMBDA. Each function runs in its FunctionRuntime's workers, as behind the gateway.

- Invoke, `POST /2015-03-31/functions/{FunctionName}/invocations` (a name, `name:qualifier`, or an ARN):
  RequestResponse runs the function and answers its result (a handler error or timeout is a 200 with
  X-Amz-Function-Error and the error as payload, "Invoke"); Event queues it, 202, and runs it in the background
  (Lambda's two retries of a failed asynchronous invocation are not modelled); DryRun only checks, 204.
- A durable function (DurableConfig) is run as durable executions by AWS's local durable execution service
  (local.runtime.durable). An Invoke starts one, named by X-Amz-Durable-Execution-Name (DurableExecutionName) or
  with a generated name, and answers its ARN in X-Amz-Durable-Execution-Arn: Event at once (202), RequestResponse
  when it has ended (at most 15 minutes, or the function's or the execution's timeout if lower). A name is started
  once per function: the same name again with the same payload is the existing execution (idempotent start), with
  another payload DurableExecutionAlreadyStartedException, 409 ("Idempotency" in Lambda's developer guide; the
  Invoke API reference, DurableExecutionName). Names are kept while the stack runs: no retention expiry.
  The service invokes the handler for each replay with the header `X-Dex-Handler-Invoke: true`: taken from
  LAMBDA_SERVICE only, it runs the handler once with that input.
- The durable-execution APIs (`/2025-12-01/...`: Checkpoint, GetDurableExecutionState, GetDurableExecution,
  ...History, ...) are passed on to that service, so that one endpoint serves a durable function's SDK and any caller.
  A checkpoint is held to OperationUpdate's limits first (the Lambda API reference): a Payload of at most 6 MB for
  the result of an execution invoked synchronously, 1 MB for any other (an asynchronous execution's result, a step's,
  a context's, ...), an Error's fields together at most 1 MB. A larger one is refused with
  InvalidParameterValueException, which the durable SDK takes as the execution's failure, as on Lambda.

Every request is signed (SigV4) and authorized as IAM does, against the policies of the identity whose access key
signed it (local.aws.iam: ADMIN, each function's role): lambda:InvokeFunction on the function's ARN (qualified when
the Invoke names a qualifier), and lambda:<Operation> on the durable execution's ARN
(`function:NAME:$LATEST/durable-execution/EXECUTION-NAME/ID`, "Security and permissions for Lambda durable functions";
"*" for callbacks). Unsigned, unknown key, bad signature and not allowed are answered as Lambda answers them:
MissingAuthenticationTokenException, UnrecognizedClientException, InvalidSignatureException, AccessDeniedException.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote

import botocore.session
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from local.aws.iam import Identity
from local.aws.server import _iam_glob
from local.runtime.durable import LAMBDA_SERVICE, DurableRunner
from local.runtime.functions import FunctionRuntime, FunctionTimedOut, InvocationError, RequestTooLarge
from local.template import PSEUDO_PARAMETERS

REGION = PSEUDO_PARAMETERS["AWS::Region"]
ACCOUNT = PSEUDO_PARAMETERS["AWS::AccountId"]
INVOKE_PATH = re.compile(r"/2015-03-31/functions/([^/]+)/invocations")
# "Lambda quotas": an asynchronous invocation's payload is at most 1 MB (a synchronous one's 6 MB: FunctionRuntime).
ASYNC_PAYLOAD_LIMIT_BYTES = 1024 * 1024
# OperationUpdate (the Lambda API reference): what one checkpointed operation may carry.
OPERATION_PAYLOAD_LIMIT_BYTES = 1024 * 1024
SYNC_EXECUTION_PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024
OPERATION_ERROR_LIMIT_BYTES = 1024 * 1024
# "Invoking durable Lambda functions": a synchronous invocation lasts at most 15 minutes.
SYNC_DURABLE_LIMIT_S = 900
EXECUTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
HANDLER_INVOKE_HEADER = "x-dex-handler-invoke"  # the service's mark (invoker.INVOCATION_MARKER_HEADER)
Answer = tuple[int, dict[str, str], bytes]


class ApiError(Exception):
    """An error as Lambda (rest-json) sends it: botocore reads the code from x-amzn-ErrorType."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def answer(self) -> Answer:
        body = json.dumps({"Type": "User", "Message": self.message}).encode()
        return self.status, {"Content-Type": "application/json", "x-amzn-ErrorType": self.code}, body


@dataclass(frozen=True)
class _Execution:
    function_name: str
    name: str
    arn: str  # the service's
    payload: Any
    synchronous: bool  # how the Invoke that started it was made


def function_arn(name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


class LambdaApi:
    """Bound on creation (so `url` can go into the functions' environment); `start` serves the runtimes given."""

    def __init__(self, identities: Iterable[Identity], port: int = 0) -> None:
        self.identities = {identity.credentials.access_key_id: identity for identity in identities}
        self.identities[LAMBDA_SERVICE.credentials.access_key_id] = LAMBDA_SERVICE
        self.functions: dict[str, FunctionRuntime] = {}
        self.durable: DurableRunner | None = None
        self.executions: dict[tuple[str, str], _Execution] = {}
        self.by_arn: dict[str, _Execution] = {}
        self.starting = threading.Lock()
        self.serving: threading.Thread | None = None
        self.server = _Server(("127.0.0.1", port), self._handler_class())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self, runtimes: Mapping[str, FunctionRuntime], durable: DurableRunner | None = None) -> LambdaApi:
        """Serve `runtimes` (any key; found by function name). A durable function needs the `durable` service."""
        self.functions = {runtime.spec.name: runtime for runtime in runtimes.values()}
        if durable is None and any(runtime.spec.is_durable for runtime in runtimes.values()):
            raise ValueError("durable functions need the durable execution service")
        self.durable = durable
        self.serving = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.serving.start()
        return self

    def stop(self) -> None:
        if self.serving is not None:  # shutdown() waits for a serve_forever that never began
            self.server.shutdown()
        self.server.server_close()

    def dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        """`headers` with lower-case names."""
        try:
            caller = self._caller(method, target, headers, body)
            path, _, query = target.partition("?")
            if path.startswith("/2025-12-01/"):
                return self._durable_api(caller, method, target, headers, body)
            found = INVOKE_PATH.fullmatch(path)
            if method != "POST" or not found:
                raise ApiError(404, "UnknownOperationException", f"no operation {method} {path}")
            qualifier = parse_qs(query).get("Qualifier", [None])[0]
            return self._invoke(caller, unquote(found.group(1)), qualifier, headers, body)
        except ApiError as error:
            return error.answer()

    # ---------- Invoke ----------
    def _invoke(
        self, caller: Identity, function_id: str, qualifier: str | None, headers: dict[str, str], body: bytes
    ) -> Answer:
        name, qualifier = _function_name(function_id, qualifier)
        runtime = self.functions.get(name)
        if caller is LAMBDA_SERVICE and headers.get(HANDLER_INVOKE_HEADER) == "true" and runtime is not None:
            return _run(runtime, body)  # one invocation of an execution, by the durable execution service
        self._authorize(caller, "lambda:InvokeFunction", function_arn(name, qualifier))
        if runtime is None or qualifier not in (None, "$LATEST", runtime.spec.alias):
            raise ApiError(404, "ResourceNotFoundException", f"Function not found: {function_arn(name, qualifier)}")
        invocation_type = headers.get("x-amz-invocation-type", "RequestResponse")
        if invocation_type not in ("RequestResponse", "Event", "DryRun"):
            raise ApiError(400, "InvalidParameterValueException", f"invalid InvocationType {invocation_type}")
        if invocation_type == "DryRun":
            return 204, {}, b""
        if invocation_type == "Event" and len(body) > ASYNC_PAYLOAD_LIMIT_BYTES:
            message = f"{len(body)} byte payload is too large for the Event invocation type"
            raise ApiError(413, "RequestTooLargeException", f"{message} (limit {ASYNC_PAYLOAD_LIMIT_BYTES} bytes)")
        payload = _json_payload(body)
        if runtime.spec.is_durable:
            return self._durable_invoke(runtime, invocation_type, headers.get("x-amz-durable-execution-name"), payload)
        if invocation_type == "Event":
            threading.Thread(target=_run, args=(runtime, body), daemon=True).start()
            return 202, {}, b""
        return _run(runtime, body)

    def _durable_invoke(self, runtime: FunctionRuntime, invocation_type: str, name: str | None, payload: Any) -> Answer:
        execution = self._start_execution(runtime, name or str(uuid.uuid4()), payload, invocation_type != "Event")
        headers = {"X-Amz-Durable-Execution-Arn": execution.arn, "X-Amz-Executed-Version": "$LATEST"}
        if invocation_type == "Event":
            return 202, headers, b""
        status, answer_headers, body = self._outcome(runtime, execution)
        return status, headers | answer_headers, body

    def _start_execution(self, runtime: FunctionRuntime, name: str, payload: Any, synchronous: bool) -> _Execution:
        """The execution named `name`, started now unless it already was (with this payload)."""
        assert self.durable is not None and runtime.spec.durable is not None
        if not EXECUTION_NAME.fullmatch(name):
            raise ApiError(400, "InvalidParameterValueException", f"invalid DurableExecutionName {name!r}")
        key = (runtime.spec.name, name)
        with self.starting:  # held through the start, so two starts with one name cannot both start
            known = self.executions.get(key)
            if known is not None:
                if known.payload != payload:
                    message = f"durable execution {name} of {runtime.spec.name} was started with another payload"
                    raise ApiError(409, "DurableExecutionAlreadyStartedException", message)
                return known
            config = runtime.spec.durable
            arn = self.durable.start_execution(
                runtime.spec.name, name, json.dumps(payload), config.execution_timeout_s, config.retention_days
            )
            execution = _Execution(runtime.spec.name, name, arn, payload, synchronous)
            self.executions[key] = self.by_arn[arn] = execution
            return execution

    def _outcome(self, runtime: FunctionRuntime, execution: _Execution) -> Answer:
        """A synchronous invocation's answer: the execution's result once it has ended."""
        assert self.durable is not None and runtime.spec.durable is not None
        limit_s = min(SYNC_DURABLE_LIMIT_S, runtime.spec.timeout_s, runtime.spec.durable.execution_timeout_s)
        deadline = time.monotonic() + limit_s
        state = self.durable.execution(execution.arn)
        while state["Status"] == "RUNNING":
            if time.monotonic() > deadline:
                return _function_error("Sandbox.Timedout", f"Task timed out after {limit_s:.2f} seconds")
            time.sleep(0.1)
            state = self.durable.execution(execution.arn)
        if state["Status"] == "SUCCEEDED":
            return 200, {"Content-Type": "application/json"}, (state.get("Result") or "null").encode()
        error = state.get("Error") or {}
        return _function_error(error.get("ErrorType", state["Status"]), error.get("ErrorMessage", state["Status"]))

    # ---------- the durable-execution APIs ----------
    def _durable_api(self, caller: Identity, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        path = target.partition("?")[0]
        operation, labels = _durable_operation(method, path)
        self._authorize(caller, f"lambda:{operation}", self._durable_resource(labels))
        if self.durable is None:
            raise ApiError(404, "ResourceNotFoundException", "no durable function runs here")
        if operation == "CheckpointDurableExecution":
            self._check_updates(self.by_arn.get(labels["DurableExecutionArn"]), body)
        forwarded = {"Content-Type": headers.get("content-type", "application/json")}
        answer = requests.request(method, self.durable.url + target, data=body, headers=forwarded, timeout=60)
        kept = {
            name: value for name, value in answer.headers.items() if name.lower().startswith(("content-type", "x-"))
        }
        return answer.status_code, kept, answer.content

    def _check_updates(self, execution: _Execution | None, body: bytes) -> None:
        for update in _json_payload(body).get("Updates") or []:
            synchronous_result = update.get("Type") == "EXECUTION" and execution is not None and execution.synchronous
            limit = SYNC_EXECUTION_PAYLOAD_LIMIT_BYTES if synchronous_result else OPERATION_PAYLOAD_LIMIT_BYTES
            for part, size, most in (
                ("Payload", len((update.get("Payload") or "").encode()), limit),
                ("Error", _error_size(update.get("Error") or {}), OPERATION_ERROR_LIMIT_BYTES),
            ):
                if size > most:
                    message = f"{part} of operation {update.get('Id')} is {size} bytes, over its limit of {most} bytes"
                    raise ApiError(400, "InvalidParameterValueException", message)

    def _durable_resource(self, labels: dict[str, str]) -> str:
        if "DurableExecutionArn" in labels:
            arn = labels["DurableExecutionArn"]
            execution = self.by_arn.get(arn)
            if execution is None:
                return arn  # not one of ours: no policy scoped to durable executions names it
            execution_id = arn.rsplit("/", 1)[-1]
            qualified = function_arn(execution.function_name, "$LATEST")
            return f"{qualified}/durable-execution/{execution.name}/{execution_id}"
        if "FunctionName" in labels:
            return function_arn(*_function_name(labels["FunctionName"], None))
        return "*"

    # ---------- who is asking, and may they ----------
    def _caller(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Identity:
        """The identity whose access key signed the request (SigV4), the signature checked as AWS checks it."""
        authorization = headers.get("authorization")
        if not authorization:
            raise ApiError(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        fields = dict(re.findall(r"(\w+)=([^,\s]+)", authorization))
        scope = fields.get("Credential", "").split("/")
        identity = self.identities.get(scope[0])
        # A session token, when sent, must be the keys' own (a function's role has one); long-term keys take none.
        token = headers.get("x-amz-security-token")
        if identity is None or len(scope) != 5 or token not in (None, identity.credentials.session_token):
            raise ApiError(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
        signed = fields.get("SignedHeaders", "").split(";")
        request = AWSRequest(
            method=method,
            url=f"http://{headers.get('host', '')}{target}",
            data=body,
            headers={name: value for name, value in headers.items() if name in signed},
        )
        request.context["timestamp"] = headers.get("x-amz-date", "")
        credentials = identity.credentials
        auth = SigV4Auth(BotoCredentials(credentials.access_key_id, credentials.secret_access_key), scope[3], scope[2])
        expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
        if expected != fields.get("Signature"):
            message = "The request signature we calculated does not match the signature you provided."
            raise ApiError(403, "InvalidSignatureException", message)
        return identity

    def _authorize(self, caller: Identity, action: str, resource: str) -> None:
        """IAM's evaluation of identity policies: an explicit Deny wins, else some Allow is needed."""
        verdicts = {
            statement["Effect"]
            for statement in caller.statements()
            if _matches(statement.get("Action", []), action.lower(), lower=True)
            and _matches(statement.get("Resource", []), resource)
        }
        if "Allow" not in verdicts or "Deny" in verdicts:
            reason = (
                "with an explicit deny"
                if "Deny" in verdicts
                else f"because no identity-based policy allows the {action} action"
            )
            message = (
                f"User: {caller.principal} is not authorized to perform: {action} on resource: {resource} {reason}"
            )
            raise ApiError(403, "AccessDeniedException", message)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, answer_headers, payload = api.dispatch(self.command, self.path, headers, body)
                self.send_response(status)
                for name, value in answer_headers.items():
                    self.send_header(name, value)
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


class _Server(ThreadingHTTPServer):
    request_queue_size = 128
    daemon_threads = True


def _run(runtime: FunctionRuntime, body: bytes) -> Answer:
    """One invocation: the handler's result, or its error as Lambda reports a function error."""
    try:
        result = runtime.invoke(_json_payload(body))
    except RequestTooLarge as error:
        return ApiError(413, "RequestTooLargeException", str(error)).answer()
    except FunctionTimedOut as error:
        return _function_error("Sandbox.Timedout", str(error))
    except InvocationError as error:
        return _function_error("Runtime.Error", str(error))
    except ApiError as error:
        return error.answer()
    headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST"}
    return 200, headers, json.dumps(result).encode()


def _error_size(error: dict[str, Any]) -> int:
    """The combined size of an ErrorObject's fields: ErrorType, ErrorMessage, ErrorData and the StackTrace's lines."""
    texts = [error.get(field) or "" for field in ("ErrorType", "ErrorMessage", "ErrorData")]
    return sum(len(text.encode()) for text in [*texts, *(error.get("StackTrace") or [])])


def _function_error(error_type: str, message: str) -> Answer:
    body = json.dumps({"errorType": error_type, "errorMessage": message}).encode()
    return 200, {"Content-Type": "application/json", "X-Amz-Function-Error": "Unhandled"}, body


def _json_payload(body: bytes) -> Any:
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except ValueError:
        raise ApiError(400, "InvalidRequestContentException", "Could not parse request body into json") from None


def _function_name(function_id: str, qualifier: str | None) -> tuple[str, str | None]:
    """(name, qualifier) of `name`, `name:qualifier`, `ACCOUNT:function:name[:qualifier]` or a function ARN."""
    parts = function_id.split(":")
    if "function" in parts:
        parts = parts[parts.index("function") + 1 :]
    name = parts[0]
    return name, (parts[1] if len(parts) > 1 else qualifier)


def _matches(patterns: str | list[str], value: str, *, lower: bool = False) -> bool:
    for pattern in [patterns] if isinstance(patterns, str) else patterns:
        if _iam_glob(pattern.lower() if lower else pattern, value):
            return True
    return False


def _durable_routes() -> list[tuple[str, re.Pattern[str], str]]:
    """(method, path pattern, operation) of each 2025-12-01 operation of botocore's Lambda model."""
    model = botocore.session.get_session().get_service_model("lambda")
    routes = []
    for operation in model.operation_names:
        http = model.operation_model(operation).http
        if http["requestUri"].startswith("/2025-12-01/"):
            pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(http["requestUri"].split("?")[0]))
            routes.append((http["method"], re.compile(pattern), operation))
    return routes


DURABLE_ROUTES = _durable_routes()


def _durable_operation(method: str, path: str) -> tuple[str, dict[str, str]]:
    for route_method, pattern, operation in DURABLE_ROUTES:
        found = pattern.fullmatch(path)
        if found and method == route_method:
            return operation, {label: unquote(value) for label, value in found.groupdict().items()}
    raise ApiError(404, "UnknownOperationException", f"no operation {method} {path}")
