"""`complete_json`: a model call whose answer must be JSON valid against a schema.

Providers constrain output to a schema only partly, and OpenAI-compatible servers often
not at all, so the reply is parsed and validated here, the one place every provider's
answer passes. A reply that does not fit gets one more try, with the model shown its own
answer and told what is wrong with it: most mistakes are a missing field or a value out of
range, which a model fixes when told. A second miss raises `InvalidModelOutput` rather
than handing callers a value they would have to distrust.

Both calls go through the `LanguageModel`, so each is budgeted and recorded on its own.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

from guildstack.domain.errors import InvalidModelOutput
from guildstack.domain.jsonschema import validate
from guildstack.domain.models import CallContext, ChatMessage, Completion, ModelRequest
from guildstack.ports.models import LanguageModel

__all__ = ["MAX_ATTEMPTS", "StructuredResult", "complete_json", "parse_reply"]

MAX_ATTEMPTS = 2  # the first answer and one correction
# How many problems a correction prompt or an error lists; the rest are counted.
_LISTED_PROBLEMS = 12
# Stop reasons meaning the reply was cut off at max_tokens (Anthropic's and OpenAI's).
_TRUNCATED = frozenset({"max_tokens", "length"})
# A reply that is one fenced block, with or without a language tag: ```json\n{...}\n```
_FENCE = re.compile(
    r"\A```(?:json\b|[\w-]*(?=\s))?\s*(?P<body>.*?)\s*```\Z", re.DOTALL | re.IGNORECASE
)


@dataclass(frozen=True)
class StructuredResult:
    """The parsed JSON, the completion it came from (its usage and cost are the last
    call's; each call has its own ledger row) and how many model calls it took."""

    value: Any
    completion: Completion
    attempts: int


async def complete_json(
    model: LanguageModel, request: ModelRequest, context: CallContext
) -> StructuredResult:
    """Ask `model` for JSON matching `request.json_schema`, correcting it once if needed.

    Raises `InvalidModelOutput` when the second answer still does not fit, and whatever
    `model.complete` raises (`BudgetExceeded`, `ProviderUnavailable`, ...) unchanged."""
    schema = request.json_schema
    if schema is None:
        raise ValueError("complete_json needs a request with a json_schema")
    current = request
    problems: list[str] = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        completion = await model.complete(current, context)
        value, problems = parse_reply(completion.text, schema)
        if not problems:
            return StructuredResult(value, completion, attempt)
        if completion.stop_reason in _TRUNCATED:
            problems.append("the reply was cut off at the length limit: answer more briefly")
        current = replace(
            current,
            messages=(
                *current.messages,
                # Anthropic refuses empty messages, and an empty reply is a likely failure.
                ChatMessage("assistant", completion.text.strip() or "(no reply)"),
                ChatMessage("user", _correction(problems)),
            ),
        )
    raise InvalidModelOutput(
        f"The model's reply did not match the requested JSON schema after {MAX_ATTEMPTS} "
        f"attempts: {_listed(problems, '; ')}",
        problems,
    )


def parse_reply(text: str, schema: dict[str, Any]) -> tuple[Any, list[str]]:
    """The JSON in `text` (a reply wrapped whole in a ``` fence is unwrapped) and what is
    wrong with it: either why it is not JSON, or its schema violations."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group("body").strip()
    if not body:
        return None, ["the reply is empty: it must be one JSON value"]
    try:
        value = json.loads(body, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        return None, [f"the reply is not valid JSON ({exc.msg} at {where})"]
    except ValueError as exc:
        return None, [f"the reply is not valid JSON ({exc})"]
    return value, validate(value, schema)


def _correction(problems: list[str]) -> str:
    return (
        "That reply cannot be used. Problems found:\n"
        + _listed(problems, "\n", bullet="- ")
        + "\nReply again with only the corrected JSON, valid against the schema, and "
        "nothing else: no explanation, no code fence."
    )


def _listed(problems: list[str], sep: str, *, bullet: str = "") -> str:
    shown = [f"{bullet}{p}" for p in problems[:_LISTED_PROBLEMS]]
    if len(problems) > _LISTED_PROBLEMS:
        shown.append(f"{bullet}... and {len(problems) - _LISTED_PROBLEMS} more")
    return sep.join(shown)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")
