"""`OfflineProvider`: a deterministic stand-in that needs no network and no key.

It answers from the request alone (same request, same answer), says plainly that it is
offline, fills JSON-schema requests with JSON valid against the schema, and streams in
several deltas.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from guildstack.domain.jsonschema import validate
from guildstack.domain.models import (
    OFFLINE,
    Completion,
    Delta,
    ModelRequest,
    StreamItem,
    Usage,
)
from guildstack.domain.tools import ToolCall, offline_directives


class OfflineProvider:
    name = OFFLINE

    async def complete(self, model: str, request: ModelRequest) -> Completion:
        started = time.perf_counter()
        calls = self.tool_calls(request)
        text = "" if calls else self.answer(request)
        return Completion(
            text=text,
            usage=_usage(request, text),
            provider=OFFLINE,
            model=OFFLINE,
            latency_ms=(time.perf_counter() - started) * 1000,
            stop_reason="tool_use" if calls else "end_turn",
            tool_calls=calls,
        )

    def tool_calls(self, request: ModelRequest) -> tuple[ToolCall, ...]:
        """The offline provider calls tools when its first user message asks it to, one
        `@tool name {json}` line per call, one call per round, in order (tools not offered
        to it are passed over); then it answers."""
        if not request.tools or not request.messages or request.tool_choice == "none":
            return ()
        offered = {tool.name for tool in request.tools}
        wanted = [d for d in offline_directives(request.messages[0].content) if d[0] in offered]
        done = sum(len(m.tool_calls) for m in request.messages if m.role == "assistant")
        if done >= len(wanted):
            return ()
        name, arguments = wanted[done]
        return (ToolCall(f"offline-call-{done + 1}", name, arguments),)

    async def stream(self, model: str, request: ModelRequest) -> AsyncIterator[StreamItem]:
        completion = await self.complete(model, request)
        for piece in _pieces(completion.text):
            yield Delta(piece)
        yield completion

    def answer(self, request: ModelRequest) -> str:
        results = [r for m in request.messages for r in m.tool_results]
        digest = hashlib.sha256(
            json.dumps(
                [request.system, [(m.role, m.content) for m in request.messages]]
                + ([[(r.name, r.content) for r in results]] if results else []),
                ensure_ascii=False,
            ).encode()
        ).hexdigest()
        if request.json_schema is not None:
            return json.dumps(example_for(request.json_schema, digest), ensure_ascii=False)
        said = [m.content for m in request.messages if m.content]
        topic = " ".join((said[-1] if said else "").split())[:160]
        answer = (
            f"[offline model {digest[:8]}] No model provider is configured, so this is a "
            f'deterministic placeholder answer. You asked: "{topic}". Configure '
            "ANTHROPIC_API_KEY, OPENAI_API_KEY or OPENAI_COMPATIBLE_BASE_URL for real answers."
        )
        if results:
            seen = "; ".join(
                f"{r.name} ({'error' if r.is_error else 'ok'}): {' '.join(r.content.split())[:200]}"
                for r in results
            )
            answer += f" Tool results: {seen}"
        return answer


def example_for(schema: Mapping[str, Any] | bool, seed: str) -> Any:
    """A value that `guildstack.domain.jsonschema.validate` accepts for `schema`, so that
    offline runs exercise the same parse-and-validate path as real models do.

    Every property is filled (optional ones too, to show the whole shape), arrays get
    `minItems` items (at least one, at most `maxItems`), numbers sit mid-range, lengths
    stay within their bounds, and the choice of enum values, alternatives and words
    depends only on `seed`: the same request gives the same JSON. A schema's `default`,
    when it is valid, is the answer. An unsatisfiable schema gets a best effort rather than
    an error."""
    if isinstance(schema, bool):
        return _text(seed) if schema else None
    if "default" in schema and not validate(schema["default"], schema):
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        rest = _without(schema, "enum")
        options = [o for o in schema["enum"] if not validate(o, rest)] or list(schema["enum"])
        return options[_pick(seed, len(options))]
    if schema.get("allOf"):
        return example_for(_merge(_without(schema, "allOf"), *schema["allOf"]), seed)
    for key in ("oneOf", "anyOf"):
        if schema.get(key):
            # An example of one alternative may match another too (1 is an integer and a
            # number): keep the first candidate the whole schema accepts.
            rest = _without(schema, key)
            candidates = [
                example_for(_merge(rest, option), f"{seed}|{index}")
                for index, option in enumerate(schema[key])
            ]
            return next((c for c in candidates if not validate(c, schema)), candidates[0])
    kind = _kind(schema)
    if kind == "object":
        return _object_for(schema, seed)
    if kind == "array":
        count = max(1, int(schema.get("minItems", 0)))
        if "maxItems" in schema:
            count = min(count, int(schema["maxItems"]))
        items = schema.get("items", True)
        return [example_for(items, f"{seed}[{i}]") for i in range(count)]
    if kind == "integer":
        return int(_within(1, schema, integer=True))
    if kind == "number":
        return float(_within(0.5, schema, integer=False))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string_for(schema, seed)


def _object_for(schema: Mapping[str, Any], seed: str) -> dict[str, Any]:
    properties: Mapping[str, Any] = schema.get("properties", {})
    value = {name: example_for(sub, f"{seed}.{name}") for name, sub in properties.items()}
    extra = schema.get("additionalProperties", True)
    for name in schema.get("required", ()):
        if name not in value:
            fallback = extra if isinstance(extra, Mapping) else True
            value[name] = example_for(fallback, f"{seed}.{name}")
    return value


def _string_for(schema: Mapping[str, Any], seed: str) -> str:
    text = _text(seed)
    min_length = int(schema.get("minLength", 0))
    max_length = int(schema.get("maxLength", max(len(text), min_length)))
    if max_length < len(text):
        text = _digest(seed)  # short strings keep the varying part, not the prefix
    return text.ljust(min_length, "x")[:max_length]


def _kind(schema: Mapping[str, Any]) -> str:
    """The JSON type to produce: the first listed one other than null (a nullable field is
    filled), else the type the schema's keywords imply."""
    declared = schema.get("type")
    if isinstance(declared, str):
        return declared
    if isinstance(declared, list) and declared:
        return next((name for name in declared if name != "null"), "null")
    implied = (
        ("object", ("properties", "required", "additionalProperties")),
        ("array", ("items", "minItems", "maxItems")),
        ("number", ("minimum", "maximum")),
    )
    return next((kind for kind, keys in implied if any(k in schema for k in keys)), "string")


def _within(preferred: float, schema: Mapping[str, Any], *, integer: bool) -> float:
    """The middle of [minimum, maximum] when both are set, else `preferred` moved inside
    the one bound there is (bounds rounded inwards for integers)."""
    low: float | None = schema.get("minimum")
    high: float | None = schema.get("maximum")
    if integer:
        low = math.ceil(low) if low is not None else None
        high = math.floor(high) if high is not None else None
    if low is not None and high is not None:
        return low + (high - low) // 2 if integer else (low + high) / 2
    if low is not None:
        return max(preferred, low)
    if high is not None:
        return min(preferred, high)
    return preferred


def _merge(base: Mapping[str, Any], *parts: Mapping[str, Any] | bool) -> dict[str, Any]:
    """One schema asking for what all of `base` and `parts` ask: properties and required
    names are united, other keywords taken from the later part."""
    merged = dict(base)
    for part in parts:
        if not isinstance(part, Mapping):
            continue
        for key, value in part.items():
            if key == "properties":
                merged[key] = {**merged.get(key, {}), **value}
            elif key == "required":
                merged[key] = list(dict.fromkeys([*merged.get(key, ()), *value]))
            else:
                merged[key] = value
    return merged


def _without(schema: Mapping[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != key}


def _pick(seed: str, count: int) -> int:
    return int(_digest(seed)[:8], 16) % count


def _text(seed: str) -> str:
    return f"offline-{_digest(seed)[:8]}"


def _digest(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def _pieces(text: str, count: int = 4) -> list[str]:
    size = max(1, math.ceil(len(text) / count))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _usage(request: ModelRequest, text: str) -> Usage:
    prompt = len(request.system) + sum(m.size() for m in request.messages)
    return Usage(input_tokens=math.ceil(prompt / 4), output_tokens=math.ceil(len(text) / 4))
