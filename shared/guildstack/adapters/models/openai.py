"""`OpenAIProvider`: chat completions through the official SDK, for OpenAI itself and for any
OpenAI-compatible endpoint by `base_url` (OpenRouter, Ollama, llama.cpp, vLLM).

A request with a JSON schema is sent one of two ways, chosen per provider:

- natively (`native_json_schema=True`, OpenAI itself): `response_format` of type
  `json_schema` with the schema, deliberately not strict. Strict mode answers 400 (a
  rejected request, which no failover can help) to any schema with an optional property,
  an object without `additionalProperties: false` or a keyword outside its subset, and
  agents' schemas may have any of these. Every reply is validated against the whole
  schema afterwards (`guildstack.services.structured`), so strictness would add little.
- in JSON mode (`native_json_schema=False`, the OpenAI-compatible provider): many such
  servers know `json_object` but not `json_schema`, so the request asks for `json_object`
  and states the schema in the system prompt. JSON mode yields an object, so the schema's
  top level should be an object.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator
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
    from openai import AsyncOpenAI


class OpenAIProvider:
    def __init__(
        self,
        api_key: str,
        *,
        name: str = "openai",
        base_url: str | None = None,
        timeout_seconds: float = 60.0,
        http_client: httpx2.AsyncClient | None = None,
        native_json_schema: bool = True,
    ) -> None:
        self.name = name
        # Whether the server takes `response_format: json_schema` (see the module docstring).
        self.native_json_schema = native_json_schema
        self._api_key = api_key
        self._base_url = base_url
        self._timeout = timeout_seconds
        self._http_client = http_client
        # OpenAI's own API wants max_completion_tokens; compatible servers know max_tokens.
        self._max_tokens_field = "max_completion_tokens" if base_url is None else "max_tokens"

    def forget_connections(self) -> None:
        """Drop the SDK client and its connections (made again on first use)."""
        self.__dict__.pop("client", None)

    @cached_property
    def client(self) -> AsyncOpenAI:
        from openai import AsyncOpenAI

        return AsyncOpenAI(
            api_key=self._api_key,
            base_url=self._base_url,
            timeout=self._timeout,
            max_retries=0,
            http_client=self._http_client,
        )

    async def complete(self, model: str, request: ModelRequest) -> Completion:
        started = time.perf_counter()
        with vendor_errors(self._failure):
            response = await self.client.chat.completions.create(**self._arguments(model, request))
            choice = response.choices[0]
            text = choice.message.content or ""
            calls = tuple(
                ToolCall(
                    call.id,
                    from_wire(call.function.name, request.tools),
                    parse_arguments(call.function.arguments),
                )
                for call in choice.message.tool_calls or ()
                if call.type == "function"
            )
            usage = _usage(response.usage) if response.usage else _estimated(request, text)
            stop_reason = choice.finish_reason
            model_used = response.model or model
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
        usage: Usage | None = None
        stop_reason: str | None = None
        model_used = model
        # Tool calls by index: id, name and the arguments' JSON text, as they arrive.
        calls: dict[int, tuple[list[str], list[str], list[str]]] = {}
        with vendor_errors(self._failure):
            chunks = await self.client.chat.completions.create(
                **self._arguments(model, request),
                stream=True,
                stream_options={"include_usage": True},
            )
            async for chunk in chunks:
                model_used = chunk.model or model_used
                if chunk.usage is not None:
                    usage = _usage(chunk.usage)
                for choice in chunk.choices:
                    if choice.delta.content:
                        parts.append(choice.delta.content)
                        yield Delta(choice.delta.content)
                    for piece in choice.delta.tool_calls or ():
                        ids, names, arguments = calls.setdefault(piece.index, ([], [], []))
                        if piece.id:
                            ids.append(piece.id)
                        if piece.function is not None:
                            names.append(piece.function.name or "")
                            arguments.append(piece.function.arguments or "")
                    stop_reason = choice.finish_reason or stop_reason
        text = "".join(parts)
        yield Completion(
            text=text,
            usage=usage or _estimated(request, text),
            provider=self.name,
            model=model_used,
            latency_ms=(time.perf_counter() - started) * 1000,
            stop_reason=stop_reason,
            tool_calls=tuple(
                ToolCall(
                    "".join(ids) or f"call_{index}",
                    from_wire("".join(names), request.tools),
                    parse_arguments("".join(arguments)),
                )
                for index, (ids, names, arguments) in sorted(calls.items())
            ),
        )

    def _arguments(self, model: str, request: ModelRequest) -> dict[str, Any]:
        schema = request.json_schema
        system = request.system
        if schema is not None and not self.native_json_schema:
            system = "\n\n".join(part for part in (system, schema_instruction(schema)) if part)
        messages: list[dict[str, Any]] = []
        if system:
            messages.append({"role": "system", "content": system})
        for message in request.messages:
            messages += _messages(message)
        arguments: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "temperature": request.temperature,
            self._max_tokens_field: request.max_tokens,
        }
        if request.tools:
            arguments["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": wire_name(tool.name),
                        "description": tool.description,
                        "parameters": dict(tool.parameters),
                    },
                }
                for tool in request.tools
            ]
            if request.tool_choice == "none":
                arguments["tool_choice"] = "none"
        if schema is not None:
            arguments["response_format"] = (
                {
                    "type": "json_schema",
                    "json_schema": {"name": "response", "schema": schema, "strict": False},
                }
                if self.native_json_schema
                else {"type": "json_object"}
            )
        return arguments

    def _failure(self, exc: Exception) -> GuildstackError:
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return transport_failure(self.name, "timed out")
        if isinstance(exc, openai.APIConnectionError):
            return transport_failure(self.name, "connection failed")
        if isinstance(exc, openai.APIStatusError):
            return status_failure(self.name, exc.status_code, exc.response.headers, exc.message)
        if isinstance(exc, ValueError | TypeError | AttributeError | IndexError | openai.APIError):
            return malformed(self.name)
        raise exc


def _messages(message: ChatMessage) -> list[dict[str, Any]]:
    """A turn in chat-completions form: an assistant turn's calls as `tool_calls`, each
    result as a `tool` message of its own (then any text of that turn)."""
    if message.tool_results:
        out: list[dict[str, Any]] = [
            {"role": "tool", "tool_call_id": r.call_id, "content": delimited(r)}
            for r in message.tool_results
        ]
        if message.content:
            out.append({"role": message.role, "content": message.content})
        return out
    if message.tool_calls:
        return [
            {
                "role": "assistant",
                "content": message.content or None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {
                            "name": wire_name(call.name),
                            "arguments": json.dumps(dict(call.arguments), ensure_ascii=False),
                        },
                    }
                    for call in message.tool_calls
                ],
            }
        ]
    return [{"role": message.role, "content": message.content}]


def schema_instruction(schema: dict[str, Any]) -> str:
    """The system-prompt paragraph that carries the schema in JSON mode. It says "JSON"
    outright: OpenAI-style servers refuse `json_object` when no message mentions JSON."""
    return (
        "Reply with one JSON object, and nothing else, that is valid against this JSON "
        f"schema:\n{json.dumps(schema, ensure_ascii=False, separators=(',', ':'))}"
    )


def _usage(usage: Any) -> Usage:
    details = getattr(usage, "prompt_tokens_details", None)
    cached = int(getattr(details, "cached_tokens", 0) or 0)
    return Usage(
        input_tokens=int(usage.prompt_tokens) - cached,
        output_tokens=int(usage.completion_tokens),
        cache_read_tokens=cached,
    )


def _estimated(request: ModelRequest, text: str) -> Usage:
    """For servers that report no usage: ~4 characters a token."""
    prompt = len(request.system) + sum(m.size() for m in request.messages)
    return Usage(input_tokens=math.ceil(prompt / 4), output_tokens=math.ceil(len(text) / 4))
