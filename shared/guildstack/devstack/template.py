"""Read template.yaml (AWS SAM) into the few facts the devstack needs.

Functions with their handler, HTTP routes, SQS and schedule events and environment;
queues with their redrive policies. CloudFormation's short tags (!Ref, !Sub, ...) are
kept as `{"Ref": ...}` / `{"Fn::Sub": ...}` values, unresolved.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_TAGS = {
    "Ref": "Ref",
    "Condition": "Condition",
    **{
        name: f"Fn::{name}"
        for name in (
            "Sub", "GetAtt", "If", "Equals", "Select", "Join", "FindInMap", "Not", "And", "Or",
            "Split", "ImportValue", "Base64", "Cidr", "GetAZs", "Transform",
        )
    },
}  # fmt: skip


class _CfnLoader(yaml.SafeLoader):
    """A SafeLoader that understands CloudFormation's short-form intrinsic functions."""


def _construct(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    key = _TAGS.get(tag_suffix, tag_suffix)
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if key == "Fn::GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {key: value}


_CfnLoader.add_multi_constructor("!", _construct)


@dataclass(frozen=True)
class Route:
    method: str  # upper case, or ANY
    path: str  # API Gateway syntax: /workspaces/{workspace_id}, /files/{proxy+}


@dataclass(frozen=True)
class SqsEvent:
    queue: str  # logical id of the queue
    batch_size: int
    report_batch_item_failures: bool
    maximum_concurrency: int | None


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    expression: str
    # The rule's constant `Input` (JSON): EventBridge then delivers it instead of its event.
    input: dict[str, Any] | None = None


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str
    code_uri: str
    timeout: int
    environment: dict[str, Any]
    routes: list[Route] = field(default_factory=list)
    sqs_events: list[SqsEvent] = field(default_factory=list)
    schedules: list[ScheduleSpec] = field(default_factory=list)

    @property
    def handler_module(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def entry_module(self) -> str:
        """The module Lambda's cold start imports: the handler's, or for a Web Adapter script
        the app module uvicorn loads."""
        return self.app_module if self.handler.endswith(".sh") else self.handler_module

    @property
    def app_module(self) -> str:
        """`functions.auth.handler.handler` → `functions.auth.app` (holds the FastAPI app);
        a Web Adapter script `functions/stream/run.sh` → `functions.stream.app`."""
        if self.handler.endswith(".sh"):
            return self.handler.rsplit("/", 1)[0].replace("/", ".") + ".app"
        package = self.handler_module.rsplit(".", 1)[0]
        return f"{package}.app"


@dataclass(frozen=True)
class QueueSpec:
    logical_id: str
    visibility_timeout: int
    dead_letter_queue: str | None
    max_receive_count: int | None


@dataclass(frozen=True)
class Template:
    functions: list[FunctionSpec]
    queues: list[QueueSpec]

    @classmethod
    def load(cls, path: Path) -> Template:
        document = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
        return cls.parse(document)

    @classmethod
    def parse(cls, document: dict[str, Any]) -> Template:
        globals_ = (document.get("Globals") or {}).get("Function") or {}
        resources = document.get("Resources") or {}
        functions = [
            _function(
                logical_id,
                resource.get("Properties") or {},
                globals_,
                resource.get("Metadata") or {},
            )
            for logical_id, resource in resources.items()
            if resource.get("Type") == "AWS::Serverless::Function"
        ]
        queues = [
            _queue(logical_id, resource.get("Properties") or {})
            for logical_id, resource in resources.items()
            if resource.get("Type") == "AWS::SQS::Queue"
        ]
        return cls(functions=functions, queues=queues)

    def function(self, logical_id: str) -> FunctionSpec:
        for spec in self.functions:
            if spec.logical_id == logical_id:
                return spec
        known = ", ".join(sorted(f.logical_id for f in self.functions))
        raise KeyError(f"no function {logical_id!r} in template.yaml (functions: {known})")


def _function(
    logical_id: str,
    props: dict[str, Any],
    globals_: dict[str, Any],
    metadata: dict[str, Any] | None = None,
) -> FunctionSpec:
    environment = {
        **((globals_.get("Environment") or {}).get("Variables") or {}),
        **((props.get("Environment") or {}).get("Variables") or {}),
    }
    routes, sqs, schedules = [], [], []
    # Functions behind a function URL (no HttpApi events) list their routes in Metadata.
    for declared in (metadata or {}).get("GuildstackRoutes") or []:
        method, path = str(declared).split(None, 1)
        routes.append(Route(method.upper(), path.strip()))
    for name, event in (props.get("Events") or {}).items():
        kind, event_props = event.get("Type"), event.get("Properties") or {}
        if kind == "HttpApi":
            routes.append(Route(str(event_props["Method"]).upper(), str(event_props["Path"])))
        elif kind == "SQS":
            queue = event_props.get("Queue")
            queue_id = queue["Fn::GetAtt"][0] if isinstance(queue, dict) else str(queue)
            scaling = event_props.get("ScalingConfig") or {}
            sqs.append(
                SqsEvent(
                    queue=queue_id,
                    batch_size=int(event_props.get("BatchSize", 10)),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in (event_props.get("FunctionResponseTypes") or []),
                    maximum_concurrency=scaling.get("MaximumConcurrency"),
                )
            )
        elif kind in ("Schedule", "ScheduleV2"):
            expression = event_props.get("Schedule") or event_props.get("ScheduleExpression")
            raw_input = event_props.get("Input")
            constant = json.loads(raw_input) if isinstance(raw_input, str) else None
            schedules.append(ScheduleSpec(name, str(expression), constant))
    return FunctionSpec(
        logical_id=logical_id,
        handler=str(props.get("Handler") or globals_.get("Handler")),
        code_uri=str(props.get("CodeUri", ".")),
        timeout=int(props.get("Timeout", globals_.get("Timeout", 3))),
        environment=environment,
        routes=routes,
        sqs_events=sqs,
        schedules=schedules,
    )


def _queue(logical_id: str, props: dict[str, Any]) -> QueueSpec:
    redrive = props.get("RedrivePolicy") or {}
    target = redrive.get("deadLetterTargetArn")
    dlq = target["Fn::GetAtt"][0] if isinstance(target, dict) else None
    count = redrive.get("maxReceiveCount")
    return QueueSpec(
        logical_id=logical_id,
        visibility_timeout=int(props.get("VisibilityTimeout", 30)),
        dead_letter_queue=dlq,
        max_receive_count=int(count) if count is not None else None,
    )


_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def schedule_interval_seconds(expression: str) -> int | None:
    """`rate(5 minutes)` → 300; cron expressions → None (run on demand locally)."""
    match = _RATE.match(expression.strip())
    if match is None:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]
