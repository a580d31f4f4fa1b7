"""Call a function's Lambda handler in-process with an event, like `sam local invoke`."""

from __future__ import annotations

import importlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from guildstack.devstack.template import Template


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    timeout_seconds: int
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_seconds * 1000


def invoke(template: Template, logical_id: str, event: dict[str, Any]) -> Any:
    """Import the function's handler and call it with `event` and a Lambda-like context."""
    spec = template.function(logical_id)
    module_name, attribute = spec.handler.rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), attribute)
    return handler(event, LambdaContext(function_name=logical_id, timeout_seconds=spec.timeout))
