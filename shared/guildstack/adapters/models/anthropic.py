"""`AnthropicProvider`: the Messages API through the official SDK (imported on first call)."""

from __future__ import annotations

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
from guildstack.domain.models import Completion, Delta, ModelRequest, StreamItem, Usage

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
        )

    async def stream(self, model: str, request: ModelRequest) -> AsyncIterator[StreamItem]:
        started = time.perf_counter()
        parts: list[str] = []
        usage = Usage()
        stop_reason: str | None = None
        model_used = model
        with vendor_errors(self._failure):
            events = await self.client.messages.create(**_arguments(model, request), stream=True)
            async for event in events:
                if event.type == "message_start":
                    usage = _usage(event.message.usage)
                    model_used = event.message.model or model
                elif event.type == "content_block_delta":
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
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
    }
    if request.system:
        arguments["system"] = request.system
    if request.json_schema is not None:
        arguments["output_config"] = {
            "format": {"type": "json_schema", "schema": request.json_schema}
        }
    return arguments


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
