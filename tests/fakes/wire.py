"""Model providers' real wire formats, served by `httpx2.MockTransport` to the real SDKs.

Bodies follow the Anthropic Messages API and OpenAI Chat Completions API as they are sent
on the wire (JSON, and server-sent events for streams), so the SDKs parse them for real.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2

Reply = Callable[[httpx2.Request], httpx2.Response]


def anthropic_message(
    text: str,
    *,
    model: str = "claude-haiku-4-5",
    input_tokens: int = 20,
    output_tokens: int = 10,
    cache_read: int = 0,
    cache_write: int = 0,
) -> Reply:
    body = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_read_input_tokens": cache_read,
            "cache_creation_input_tokens": cache_write,
        },
    }
    return lambda request: httpx2.Response(200, json=body)


def anthropic_stream(
    pieces: list[str],
    *,
    model: str = "claude-haiku-4-5",
    input_tokens: int = 20,
    output_tokens: int = 10,
    cache_read: int = 0,
    cache_write: int = 0,
) -> Reply:
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_01",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": input_tokens,
                        "output_tokens": 1,
                        "cache_read_input_tokens": cache_read,
                        "cache_creation_input_tokens": cache_write,
                    },
                },
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
    ]
    events += [
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}},
        )
        for p in pieces
    ]
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    wire = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)
    return _sse(wire)


def openai_completion(
    text: str,
    *,
    model: str = "gpt-5-mini",
    prompt_tokens: int = 20,
    completion_tokens: int = 10,
    cached_tokens: int = 0,
) -> Reply:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_790_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": _openai_usage(prompt_tokens, completion_tokens, cached_tokens),
    }
    return lambda request: httpx2.Response(200, json=body)


def openai_stream(
    pieces: list[str],
    *,
    model: str = "gpt-5-mini",
    prompt_tokens: int = 20,
    completion_tokens: int = 10,
    cached_tokens: int = 0,
) -> Reply:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model}
    chunks = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
        *(
            {**base, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]}
            for p in pieces
        ),
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {
            **base,
            "choices": [],
            "usage": _openai_usage(prompt_tokens, completion_tokens, cached_tokens),
        },
    ]
    wire = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    return _sse(wire)


def openai_embeddings(
    vectors: list[list[float]], *, model: str = "text-embedding-3-small"
) -> Reply:
    """OpenAI's embeddings response; items deliberately out of index order."""
    body = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": v}
            for i, v in reversed(list(enumerate(vectors)))
        ],
        "model": model,
        "usage": {"prompt_tokens": 7, "total_tokens": 7},
    }
    return lambda request: httpx2.Response(200, json=body)


def status(code: int, headers: dict[str, str] | None = None) -> Reply:
    """A provider error in its own error envelope."""
    body = {"type": "error", "error": {"type": "api_error", "message": f"status {code}"}}
    return lambda request: httpx2.Response(code, json=body, headers=headers or {})


def timeout() -> Reply:
    def reply(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("the provider did not answer in time", request=request)

    return reply


def malformed_json() -> Reply:
    return lambda request: httpx2.Response(
        200, content=b'{"id": "msg_01", "content": [', headers={"content-type": "application/json"}
    )


@dataclass
class ScriptedTransport:
    """Answers requests with `script` in order (the last reply repeats) and keeps them."""

    script: list[Reply]
    requests: list[httpx2.Request] = field(default_factory=list)

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        reply = self.script[min(len(self.requests), len(self.script)) - 1]
        return reply(request)

    def client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=httpx2.MockTransport(self))

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]


def _openai_usage(prompt: int, completion: int, cached: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def _sse(wire: str) -> Reply:
    return lambda request: httpx2.Response(
        200, content=wire.encode(), headers={"content-type": "text/event-stream"}
    )


def anthropic_tool_use(
    calls: list[tuple[str, str, dict[str, Any]]], *, text: str = "", model: str = "claude-haiku-4-5"
) -> Reply:
    """A Messages API answer that ends in tool calls: (id, wire name, input) each."""
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content += [
        {"type": "tool_use", "id": call_id, "name": name, "input": arguments}
        for call_id, name, arguments in calls
    ]
    body = {
        "id": "msg_02",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 30, "output_tokens": 12},
    }
    return lambda request: httpx2.Response(200, json=body)


def anthropic_tool_stream(
    calls: list[tuple[str, str, list[str]]], *, model: str = "claude-haiku-4-5"
) -> Reply:
    """A streamed answer of tool calls, each input sent as JSON pieces
    (`input_json_delta`)."""
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_03",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 30, "output_tokens": 1},
            },
        }
    ]
    for index, (call_id, name, pieces) in enumerate(calls):
        events.append(
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "tool_use", "id": call_id, "name": name, "input": {}},
            }
        )
        events += [
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "input_json_delta", "partial_json": piece},
            }
            for piece in pieces
        ]
        events.append({"type": "content_block_stop", "index": index})
    events += [
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 15},
        },
        {"type": "message_stop"},
    ]
    return _sse("".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events))


def openai_tool_calls(calls: list[tuple[str, str, str]], *, model: str = "gpt-5-mini") -> Reply:
    """A chat completion that ends in tool calls: (id, wire name, arguments JSON) each."""
    body = {
        "id": "chatcmpl-2",
        "object": "chat.completion",
        "created": 1_790_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "refusal": None,
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {"name": name, "arguments": arguments},
                        }
                        for call_id, name, arguments in calls
                    ],
                },
                "finish_reason": "tool_calls",
                "logprobs": None,
            }
        ],
        "usage": _openai_usage(30, 12, 0),
    }
    return lambda request: httpx2.Response(200, json=body)


def openai_tool_stream(
    calls: list[tuple[str, str, list[str]]], *, model: str = "gpt-5-mini"
) -> Reply:
    """Streamed tool calls: the first chunk of each names it, the rest carry its arguments'
    JSON in pieces."""
    base = {"id": "chatcmpl-3", "object": "chat.completion.chunk", "created": 1, "model": model}
    chunks: list[dict[str, Any]] = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": None}}]}
    ]
    for index, (call_id, name, pieces) in enumerate(calls):
        first = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        chunks.append({**base, "choices": [{"index": 0, "delta": {"tool_calls": [first]}}]})
        chunks += [
            {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"tool_calls": [{"index": index, "function": {"arguments": p}}]},
                    }
                ],
            }
            for p in pieces
        ]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    chunks.append({**base, "choices": [], "usage": _openai_usage(30, 15, 0)})
    wire = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    return _sse(wire)
