"""`AnthropicProvider`: the Messages API through the official SDK (imported on first call).

A request's JSON schema goes out as `output_config.format`, converted to the part of JSON
Schema the Messages API accepts there (`output_schema`); the full schema is still what the
reply is validated against (`guildstack.services.structured`).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from guildstack.adapters.models.errors import (
    malformed,
    status_failure,
    transport_failure,
    vendor_errors,
)
from guildstack.domain.errors import GuildstackError
from guildstack.domain.models import (
    ChatMessage,
    Completion,
    Delta,
    ModelRequest,
    StreamItem,
    Usage,
)
from guildstack.domain.tools import ToolCall, delimited, from_wire, parse_arguments, wire_name

if TYPE_CHECKING:
    import httpx2
    from anthropic import AsyncAnthropic


class AnthropicProvider:
    name = "anthropic"

    def __init__(
        self,
        api_key: str,
        *,
        timeout_seconds: float = 60.0,
        base_url: str | None = None,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        self._api_key = api_key
        self._timeout = timeout_seconds
        self._base_url = base_url
        self._http_client = http_client

    def forget_connections(self) -> None:
        """Drop the SDK client and its connections (made again on first use)."""
        self.__dict__.pop("client", None)

    @cached_property
    def client(self) -> AsyncAnthropic:
        from anthropic import AsyncAnthropic

        # max_retries=0: FailoverChain owns retries, so attempts are counted once.
        return AsyncAnthropic(
            api_key=self._api_key,
            base_url=self._base_url,
            timeout=self._timeout,
            max_retries=0,
            http_client=self._http_client,
        )

    async def complete(self, model: str, request: ModelRequest) -> Completion:
        started = time.perf_counter()
        with vendor_errors(self._failure):
            message = await self.client.messages.create(**_arguments(model, request))
            text = _text_of(message.content)
            calls = _calls_of(message.content, request)
            usage = _usage(message.usage)
            stop_reason = message.stop_reason
            model_used = message.model or model
        return Completion(
            text=text,
            usage=usage,
            provider=self.name,
            model=model_used,
            latency_ms=(time.perf_counter() - started) * 1000,
            stop_reason=stop_reason,
            tool_calls=calls,
        )

    async def stream(self, model: str, request: ModelRequest) -> AsyncIterator[StreamItem]:
        started = time.perf_counter()
        parts: list[str] = []
        usage = Usage()
        stop_reason: str | None = None
        model_used = model
        # Tool-use blocks by index: (id, wire name, the input's JSON text so far).
        uses: dict[int, tuple[str, str, list[str]]] = {}
        with vendor_errors(self._failure):
            events = await self.client.messages.create(**_arguments(model, request), stream=True)
            async for event in events:
                if event.type == "message_start":
                    usage = _usage(event.message.usage)
                    model_used = event.message.model or model
                elif event.type == "content_block_start":
                    block = event.content_block
                    if block.type == "tool_use":
                        uses[event.index] = (block.id, block.name, [])
                elif event.type == "content_block_delta":
                    if event.delta.type == "input_json_delta" and event.index in uses:
                        uses[event.index][2].append(event.delta.partial_json)
                        continue
                    piece = _delta_text(event.delta)
                    if piece:
                        parts.append(piece)
                        yield Delta(piece)
                elif event.type == "message_delta":
                    usage = Usage(
                        usage.input_tokens,
                        event.usage.output_tokens,
                        usage.cache_read_tokens,
                        usage.cache_write_tokens,
                    )
                    stop_reason = event.delta.stop_reason
        yield Completion(
            text="".join(parts),
            usage=usage,
            provider=self.name,
            model=model_used,
            latency_ms=(time.perf_counter() - started) * 1000,
            stop_reason=stop_reason,
            tool_calls=tuple(
                ToolCall(call_id, from_wire(name, request.tools), parse_arguments("".join(pieces)))
                for _, (call_id, name, pieces) in sorted(uses.items())
            ),
        )

    def _failure(self, exc: Exception) -> GuildstackError:
        import anthropic

        if isinstance(exc, anthropic.APITimeoutError):
            return transport_failure(self.name, "timed out")
        if isinstance(exc, anthropic.APIConnectionError):
            return transport_failure(self.name, "connection failed")
        if isinstance(exc, anthropic.APIStatusError):
            return status_failure(self.name, exc.status_code, exc.response.headers, exc.message)
        if isinstance(exc, ValueError | TypeError | AttributeError | anthropic.APIError):
            return malformed(self.name)
        raise exc


def _arguments(model: str, request: ModelRequest) -> dict[str, Any]:
    # The current Messages API takes no sampling temperature: the request's temperature
    # applies to the OpenAI-style providers only.
    arguments: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens,
        "messages": [_message(m) for m in request.messages],
    }
    if request.system:
        arguments["system"] = request.system
    if request.tools:
        arguments["tools"] = [
            {
                "name": wire_name(tool.name),
                "description": tool.description,
                "input_schema": dict(tool.parameters),
            }
            for tool in request.tools
        ]
        if request.tool_choice == "none":
            arguments["tool_choice"] = {"type": "none"}
    if request.json_schema is not None:
        arguments["output_config"] = {
            "format": {"type": "json_schema", "schema": output_schema(request.json_schema)}
        }
    return arguments


# Keywords that constrain one JSON type each: in a schema of another type they are moot.
_NUMBER_KEYWORDS = frozenset(
    {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
)
_TYPE_KEYWORDS: dict[str, frozenset[str]] = {
    "object": frozenset(
        {"properties", "required", "additionalProperties", "patternProperties"}
        | {"minProperties", "maxProperties", "propertyNames", "dependentRequired"}
    ),
    "array": frozenset({"items", "prefixItems", "minItems", "maxItems", "uniqueItems"}),
    "string": frozenset({"minLength", "maxLength", "pattern", "format"}),
    "number": _NUMBER_KEYWORDS,
    "integer": _NUMBER_KEYWORDS,
}
_ANY_TYPE_KEYWORDS = frozenset(k for keys in _TYPE_KEYWORDS.values() for k in keys)
_STRING_FORMATS = frozenset(
    ("date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid")
)


def output_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """`schema` in the subset the Messages API takes for structured output, which answers
    400 (a rejected request, so no failover) to anything else.

    Every object gets `additionalProperties: false`, which the API insists on; `oneOf`
    becomes `anyOf` and a list of types an `anyOf` of one schema per type. Constraints the
    API cannot enforce (bounds, lengths, patterns, `minItems` above 1, `maxItems`, ...) are
    written into the description instead, so the model still reads them, and the reply is
    checked against the original schema afterwards."""
    converted = _converted(schema)
    return converted if isinstance(converted, dict) else {}


def _converted(node: Any) -> Any:
    if not isinstance(node, Mapping):
        return node
    schema = dict(node)
    if "oneOf" in schema:
        options = schema.pop("oneOf")
        if "anyOf" in schema:
            schema["allOf"] = [*schema.get("allOf", ()), {"anyOf": options}]
        else:
            schema["anyOf"] = options
    declared = schema.get("type")
    if "type" not in schema and "properties" in schema:
        declared = "object"
    if "enum" in schema or "const" in schema:
        declared = None  # the values say the type; a type list beside them is not needed
        schema.pop("type", None)
    if isinstance(declared, list) and len(declared) == 1:
        declared = schema["type"] = declared[0]
    if isinstance(declared, list):
        return _one_schema_per_type(schema, declared)
    # Another type's keywords (minLength on a number) constrain nothing: leave them out.
    own = _TYPE_KEYWORDS.get(declared) if isinstance(declared, str) else None
    moot = _ANY_TYPE_KEYWORDS - own if own is not None else frozenset()
    out: dict[str, Any] = {}
    dropped: dict[str, Any] = {}
    for key, value in schema.items():
        if key in moot:
            continue
        if key in ("anyOf", "allOf"):
            out[key] = [_converted(option) for option in value]
        elif key == "$defs":
            out[key] = {name: _converted(sub) for name, sub in value.items()}
        elif key == "properties":
            out[key] = {name: _converted(sub) for name, sub in value.items()}
        elif key == "items" and isinstance(value, Mapping | bool):
            out[key] = _converted(value)
        elif key in ("type", "enum", "const", "required", "description", "title", "$ref"):
            out[key] = value
        elif key == "additionalProperties":
            continue  # set below for objects: the API takes nothing but false
        elif key == "minItems" and value in (0, 1):
            out[key] = value
        elif key == "format" and value in _STRING_FORMATS:
            out[key] = value
        else:
            dropped[key] = value
    if declared == "object":
        out["type"] = "object"
        out["additionalProperties"] = False
    if dropped:
        note = f"Constraints: {json.dumps(dropped, ensure_ascii=False, sort_keys=True)}"
        out["description"] = f"{out['description']}\n\n{note}" if out.get("description") else note
    return out


def _one_schema_per_type(schema: dict[str, Any], types: list[str]) -> dict[str, Any]:
    """`{"type": ["string", "null"], ...}` as `{"anyOf": [{"type": "string", ...}, ...]}`:
    each alternative keeps the keywords that apply to its type."""
    shared: dict[str, Any] = {k: schema[k] for k in ("description", "title") if k in schema}
    rest = {k: v for k, v in schema.items() if k not in shared and k != "type"}
    options = []
    for name in types:
        keys = _TYPE_KEYWORDS.get(name, frozenset())
        own = {k: v for k, v in rest.items() if k not in _ANY_TYPE_KEYWORDS or k in keys}
        options.append(_converted({"type": name, **own}))
    return {**shared, "anyOf": options}


def _message(message: ChatMessage) -> dict[str, Any]:
    """A turn as the Messages API takes it: tool calls as `tool_use` blocks of the
    assistant's turn, their results as `tool_result` blocks of the next user turn."""
    if not message.tool_calls and not message.tool_results:
        return {"role": message.role, "content": message.content}
    blocks: list[dict[str, Any]] = [
        {
            "type": "tool_result",
            "tool_use_id": result.call_id,
            "content": delimited(result),
            "is_error": result.is_error,
        }
        for result in message.tool_results
    ]
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    blocks += [
        {
            "type": "tool_use",
            "id": call.id,
            "name": wire_name(call.name),
            "input": dict(call.arguments),
        }
        for call in message.tool_calls
    ]
    return {"role": message.role, "content": blocks}


def _calls_of(content: Any, request: ModelRequest) -> tuple[ToolCall, ...]:
    return tuple(
        ToolCall(block.id, from_wire(block.name, request.tools), dict(block.input or {}))
        for block in content or ()
        if block.type == "tool_use"
    )


def _text_of(content: Any) -> str:
    if content is None:
        raise ValueError("no content")
    return "".join(block.text for block in content if block.type == "text")


def _delta_text(delta: Any) -> str:
    if delta.type == "text_delta":
        return str(delta.text)
    return ""


def _usage(usage: Any) -> Usage:
    if usage is None:
        raise ValueError("no usage")
    return Usage(
        input_tokens=int(usage.input_tokens),
        output_tokens=int(usage.output_tokens or 0),
        cache_read_tokens=int(usage.cache_read_input_tokens or 0),
        cache_write_tokens=int(usage.cache_creation_input_tokens or 0),
    )
