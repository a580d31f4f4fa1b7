"""`OfflineProvider`: a deterministic stand-in that needs no network and no key.

It answers from the request alone (same request, same answer), says plainly that it is
offline, fills JSON-schema requests with valid JSON, and streams in several deltas.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import AsyncIterator
from typing import Any

from guildstack.domain.models import (
    OFFLINE,
    Completion,
    Delta,
    ModelRequest,
    StreamItem,
    Usage,
)


class OfflineProvider:
    name = OFFLINE

    async def complete(self, model: str, request: ModelRequest) -> Completion:
        started = time.perf_counter()
        text = self.answer(request)
        return Completion(
            text=text,
            usage=_usage(request, text),
            provider=OFFLINE,
            model=OFFLINE,
            latency_ms=(time.perf_counter() - started) * 1000,
            stop_reason="end_turn",
        )

    async def stream(self, model: str, request: ModelRequest) -> AsyncIterator[StreamItem]:
        completion = await self.complete(model, request)
        for piece in _pieces(completion.text):
            yield Delta(piece)
        yield completion

    def answer(self, request: ModelRequest) -> str:
        digest = hashlib.sha256(
            json.dumps(
                [request.system, [(m.role, m.content) for m in request.messages]],
                ensure_ascii=False,
            ).encode()
        ).hexdigest()
        if request.json_schema is not None:
            return json.dumps(example_for(request.json_schema, digest), ensure_ascii=False)
        last = request.messages[-1].content if request.messages else ""
        topic = " ".join(last.split())[:160]
        return (
            f"[offline model {digest[:8]}] No model provider is configured, so this is a "
            f'deterministic placeholder answer. You asked: "{topic}". Configure '
            "ANTHROPIC_API_KEY, OPENAI_API_KEY or OPENAI_COMPATIBLE_BASE_URL for real answers."
        )


def example_for(schema: dict[str, Any], seed: str) -> Any:
    """A value valid against common JSON-schema shapes (object, array, enum, const, scalars)."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        options = schema["enum"]
        return options[int(seed[:4], 16) % len(options)]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return example_for(schema[key][0], seed)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties: dict[str, Any] = schema.get("properties", {})
        return {name: example_for(sub, seed + name) for name, sub in properties.items()}
    if kind == "array":
        count = max(1, int(schema.get("minItems", 1)))
        return [example_for(schema.get("items", {}), seed + str(i)) for i in range(count)]
    if kind == "integer":
        return max(int(schema.get("minimum", 0)), 1) if "minimum" in schema else 1
    if kind == "number":
        return float(schema.get("minimum", 0.5))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    text = f"offline-{seed[:8]}"
    min_length = int(schema.get("minLength", 0))
    return text.ljust(min_length, "x")[: int(schema.get("maxLength", max(len(text), min_length)))]


def _pieces(text: str, count: int = 4) -> list[str]:
    size = max(1, math.ceil(len(text) / count))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _usage(request: ModelRequest, text: str) -> Usage:
    prompt = len(request.system) + sum(len(m.content) for m in request.messages)
    return Usage(input_tokens=math.ceil(prompt / 4), output_tokens=math.ceil(len(text) / 4))
