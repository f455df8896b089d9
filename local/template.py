"""Read template.yaml the way the local stack needs it: functions, their environment, routes and their authorization,
secrets."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

STACK_NAME = "sharelink-local"
PSEUDO_PARAMETERS = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}
NO_VALUE = object()
# How the AWS Parameters and Secrets Lambda Extension's layers are named, whatever the region, account and version.
SECRETS_EXTENSION_LAYER = ":layer:AWS-Parameters-and-Secrets-Lambda-Extension"


class _CfnLoader(yaml.SafeLoader):
    """Turns the short intrinsic tags (!Ref, !Sub, ...) into their long dict form."""


def _intrinsic(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


@dataclass(frozen=True)
class DurableConfig:
    """A durable function's `DurableConfig` (SAM passes it to AWS::Lambda::Function as is): ExecutionTimeout, in
    seconds, is required; RetentionPeriodInDays, how long a closed execution (and so its name) is kept, is 14 by
    default."""

    execution_timeout_s: int
    retention_days: int = 14


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    code_dir: Path
    module: str
    handler: str
    environment: dict[str, str]
    # Lambda's defaults when neither the function nor Globals set them.
    timeout_s: int = 3
    memory_mb: int = 128
    # Set for a durable function (Properties.DurableConfig, over Globals'): Lambda runs it as durable executions.
    durable: DurableConfig | None = None
    # The alias SAM's AutoPublishAlias makes; locally it names the function as deployed now.
    alias: str | None = None
    # Whether its layers include the AWS Parameters and Secrets Lambda Extension (local.aws.secrets_extension).
    secrets_extension: bool = False

    @property
    def is_durable(self) -> bool:
        return self.durable is not None


@dataclass(frozen=True)
class QueueSubscription:
    """An SQS event source mapping: which function drains which queue, how many at a time."""

    function_id: str
    queue_id: str
    batch_size: int
    max_concurrency: int


@dataclass(frozen=True)
class JwtConfiguration:
    """An `AWS::ApiGatewayV2::Authorizer`'s JwtConfiguration: the issuer and the audiences a token must have."""

    issuer: str
    audience: tuple[str, ...]


@dataclass(frozen=True)
class HttpRoute:
    method: str
    path: str
    function_id: str
    # The route's AuthorizationType (NONE, AWS_IAM or JWT) as its conditions resolve, and its JWT authorizer's.
    authorization: str = "NONE"
    jwt: JwtConfiguration | None = None

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """Path parameters when this route serves `method path`, else None."""
        if method != self.method:
            return None
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path))
        found = re.fullmatch(pattern, path)
        return found.groupdict() if found else None


class Template:
    """template.yaml, resolved for one local stack.

    `stack_name` and `physical_names` (logical id -> name) name the resources as a stack (or a test's fixtures)
    names them; `deployed_arns` (logical id -> ARN) gives the ARNs only AWS can choose (a secret's random suffix).
    """

    def __init__(
        self,
        path: Path,
        parameters: dict[str, str] | None = None,
        *,
        stack_name: str = STACK_NAME,
        physical_names: dict[str, str] | None = None,
        deployed_arns: dict[str, str] | None = None,
    ) -> None:
        self.path = path
        self.root = path.parent
        self.stack_name = stack_name
        self.physical_names = physical_names or {}
        self.deployed_arns = deployed_arns or {}
        self.body = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass
        self.resources: dict[str, dict[str, Any]] = self.body["Resources"]
        self.parameters = {
            name: str(spec.get("Default", "")) for name, spec in self.body.get("Parameters", {}).items()
        } | (parameters or {})

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: res for name, res in self.resources.items() if res["Type"] == resource_type}

    def functions(self) -> dict[str, FunctionSpec]:
        globals_ = self.body.get("Globals", {}).get("Function", {})
        global_env = globals_.get("Environment", {}).get("Variables", {})
        specs = {}
        for logical_id, resource in self.of_type("AWS::Serverless::Function").items():
            props = resource["Properties"]
            env = global_env | props.get("Environment", {}).get("Variables", {})
            module, handler = props["Handler"].rsplit(".", 1)
            specs[logical_id] = FunctionSpec(
                logical_id=logical_id,
                name=str(self.resolve(props.get("FunctionName", logical_id))),
                code_dir=self.root / props["CodeUri"],
                module=module,
                handler=handler,
                environment={key: str(self.resolve(value)) for key, value in env.items()},
                timeout_s=int(props.get("Timeout", globals_.get("Timeout", 3))),
                memory_mb=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
                durable=self._durable_config(globals_.get("DurableConfig", {}) | props.get("DurableConfig", {})),
                alias=props.get("AutoPublishAlias"),
                # SAM appends a function's Layers to those of Globals.
                secrets_extension=self._has_secrets_extension(globals_.get("Layers", []) + props.get("Layers", [])),
            )
        return specs

    def _has_secrets_extension(self, layers: list[Any]) -> bool:
        return any(SECRETS_EXTENSION_LAYER in str(self.resolve(layer)) for layer in layers)

    def _durable_config(self, config: dict[str, Any]) -> DurableConfig | None:
        """The function's DurableConfig over Globals' (SAM merges the two maps), None when neither has one."""
        if not config:
            return None
        return DurableConfig(
            execution_timeout_s=int(self.resolve(config["ExecutionTimeout"])),
            retention_days=int(self.resolve(config.get("RetentionPeriodInDays", 14))),
        )

    def http_routes(self) -> list[HttpRoute]:
        routes = []
        for resource in self.of_type("AWS::ApiGatewayV2::Route").values():
            props = resource["Properties"]
            method, path = props["RouteKey"].split(" ", 1)
            integration_id = _sub_target(props["Target"])
            uri = self.resources[integration_id]["Properties"]["IntegrationUri"]
            authorization = str(self.resolve(props.get("AuthorizationType", "NONE")))
            jwt = self._jwt_configuration(props) if authorization == "JWT" else None
            routes.append(HttpRoute(method, path, uri["Fn::GetAtt"][0], authorization, jwt))
        return routes

    def _jwt_configuration(self, route_props: dict[str, Any]) -> JwtConfiguration:
        """The JwtConfiguration of the authorizer a JWT route names (its AuthorizerId, a Ref to it)."""
        authorizer = self.resources[self._chosen(route_props["AuthorizerId"])["Ref"]]["Properties"]
        config = authorizer["JwtConfiguration"]
        return JwtConfiguration(
            issuer=str(self.resolve(config["Issuer"])),
            audience=tuple(str(self.resolve(audience)) for audience in config["Audience"]),
        )

    def queue_subscriptions(self) -> list[QueueSubscription]:
        return [
            QueueSubscription(
                function_id=props["FunctionName"]["Ref"],
                queue_id=props["EventSourceArn"]["Fn::GetAtt"][0],
                batch_size=int(props.get("BatchSize", 10)),
                max_concurrency=int(props.get("ScalingConfig", {}).get("MaximumConcurrency", 2)),
            )
            for props in (
                resource["Properties"] for resource in self.of_type("AWS::Lambda::EventSourceMapping").values()
            )
        ]

    def queue_visibility_timeout_s(self, queue_id: str) -> int:
        """The queue's VisibilityTimeout (SQS's default, 30 s, when the template sets none)."""
        return int(self.resources[queue_id]["Properties"].get("VisibilityTimeout", 30))

    def schedules(self) -> dict[str, float]:
        """Function id -> period in seconds, for each `rate(...)` schedule event."""
        periods = {}
        for function_id, resource in self.of_type("AWS::Serverless::Function").items():
            for event in resource["Properties"].get("Events", {}).values():
                if event["Type"] in ("Schedule", "ScheduleV2"):
                    periods[function_id] = _rate_seconds(str(self.resolve(event["Properties"]["ScheduleExpression"])))
        return periods

    def with_deployed_arns(self, arns: dict[str, str]) -> Template:
        """The same template, knowing the ARNs the emulator gave its resources."""
        return Template(
            self.path,
            self.parameters,
            stack_name=self.stack_name,
            physical_names=self.physical_names,
            deployed_arns=self.deployed_arns | arns,
        )

    def arn(self, logical_id: str) -> str:
        """The ARN moto gives the resource.

        A secret's ARN ends in a random suffix: before it is deployed, this is the pattern IAM matches it with.
        """
        if logical_id in self.deployed_arns:
            return self.deployed_arns[logical_id]
        name = self.physical_name(logical_id)
        region, account = PSEUDO_PARAMETERS["AWS::Region"], PSEUDO_PARAMETERS["AWS::AccountId"]
        return {
            "AWS::SQS::Queue": f"arn:aws:sqs:{region}:{account}:{name}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{region}:{account}:table/{name}",
            "AWS::SecretsManager::Secret": f"arn:aws:secretsmanager:{region}:{account}:secret:{name}-??????",
            "AWS::Serverless::Function": f"arn:aws:lambda:{region}:{account}:function:{name}",
        }.get(self.resources[logical_id]["Type"], f"arn:aws:local:{region}:{account}:{name}")

    def physical_name(self, logical_id: str) -> str:
        if logical_id in self.physical_names:
            return self.physical_names[logical_id]
        props = self.resources[logical_id].get("Properties", {})
        for key in ("Name", "FunctionName", "QueueName", "BucketName", "TableName"):
            if key in props:
                return str(self.resolve(props[key]))
        return f"{self.stack_name}-{logical_id}"

    def resolve(self, value: Any) -> Any:
        """Resolve the intrinsics the template uses in values the local stack reads."""
        if not isinstance(value, dict) or len(value) != 1:
            return value
        ((name, arg),) = value.items()
        if name == "Ref":
            return self._ref(arg)
        if name == "Fn::Sub":
            return re.sub(r"\$\{([\w:.]+)\}", lambda m: str(self._ref(m.group(1))), arg)
        if name == "Fn::GetAtt":
            return self.arn(arg[0])
        if name == "Fn::If":
            return self.resolve(self._chosen(value))
        raise ValueError(f"the local stack does not resolve {name}")

    def _chosen(self, value: Any) -> Any:
        """The branch an `Fn::If` (nested ones too) takes with this stack's parameters, unresolved."""
        while isinstance(value, dict) and set(value) == {"Fn::If"}:
            condition, when_true, when_false = value["Fn::If"]
            value = when_true if self.condition(condition) else when_false
        return value

    def condition(self, name: str) -> bool:
        """One of the template's Conditions, evaluated with this stack's parameters."""
        return self._holds(self.body["Conditions"][name])

    def _holds(self, condition: dict[str, Any]) -> bool:
        ((name, arg),) = condition.items()
        if name == "Fn::Equals":
            return str(self.resolve(arg[0])) == str(self.resolve(arg[1]))
        if name == "Fn::Not":
            return not self._holds(arg[0])
        if name == "Fn::And":
            return all(self._holds(item) for item in arg)
        raise ValueError(f"the local stack does not evaluate {name} in a condition")

    def _ref(self, name: str) -> Any:
        """What CloudFormation's Ref answers: a parameter's value, a secret's ARN, a queue's URL, else the name."""
        if name == "AWS::StackName":
            return self.stack_name
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        if name in self.parameters:
            return self.parameters[name]
        if "." in name:
            return self._attribute(*name.split(".", 1))
        if name not in self.resources:
            raise KeyError(f"template has no {name}")
        resource_type = self.resources[name]["Type"]
        if resource_type == "AWS::SecretsManager::Secret":
            return self.arn(name)
        if resource_type == "AWS::SQS::Queue":
            region, account = PSEUDO_PARAMETERS["AWS::Region"], PSEUDO_PARAMETERS["AWS::AccountId"]
            return f"https://sqs.{region}.amazonaws.com/{account}/{self.physical_name(name)}"
        return self.physical_name(name)

    def _attribute(self, logical_id: str, attribute: str) -> str:
        """`${X.Arn}` in a Sub; SAM's `X.Alias`, the ARN of the alias AutoPublishAlias makes."""
        if attribute == "Arn":
            return self.arn(logical_id)
        if attribute == "Alias":
            return f"{self.arn(logical_id)}:{self.resources[logical_id]['Properties']['AutoPublishAlias']}"
        raise ValueError(f"the local stack does not resolve {logical_id}.{attribute}")


def _sub_target(target: Any) -> str:
    """ "integrations/${Pan123Integration}" -> "Pan123Integration"."""
    found = re.fullmatch(r"integrations/\$\{(\w+)\}", target["Fn::Sub"])
    if not found:
        raise ValueError(f"unexpected route target {target}")
    return found.group(1)


def _rate_seconds(expression: str) -> float:
    """ "rate(1 hour)" -> 3600.0."""
    found = re.fullmatch(r"rate\((\d+) (minute|hour|day)s?\)", expression)
    if not found:
        raise ValueError(f"the local stack runs rate() schedules only, not {expression}")
    return int(found.group(1)) * {"minute": 60, "hour": 3600, "day": 86400}[found.group(2)]
