"""`complete_json`: parse, validate, one correction, then `InvalidModelOutput` (a 502)."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import pytest

from guildstack.adapters.models.offline import OfflineProvider
from guildstack.agents.catalog import load_model_book
from guildstack.config import DEFAULT_CATALOG_DIR
from guildstack.domain.errors import BudgetExceeded, InvalidModelOutput
from guildstack.domain.jsonschema import validate
from guildstack.domain.models import (
    CallContext,
    ChatMessage,
    Completion,
    ModelRequest,
    Usage,
)
from guildstack.http.problems import status_for
from guildstack.services.failover import FailoverChain
from guildstack.services.models import MeteredModel
from guildstack.services.structured import StructuredResult, complete_json, parse_reply
from tests.fakes.models import InMemoryLedger, ScriptedModel, ScriptedProvider
from tests.unit.test_offline_json import ROUTER_SCHEMA, VOTE_SCHEMA

CONTEXT = CallContext(workspace_id=uuid.uuid4(), agent_code="router")
BOOK = load_model_book(DEFAULT_CATALOG_DIR / "models.yaml")


def ask(text: str = "Route: rank my site", schema: dict[str, Any] | None = None) -> ModelRequest:
    return ModelRequest(
        system="You route requests.",
        messages=(ChatMessage("user", text),),
        json_schema=VOTE_SCHEMA if schema is None else schema,
    )


GOOD_VOTE = {"vote": "accept", "reason": "The plan is sound.", "confidence": 0.8}


async def test_given_a_valid_reply_then_its_value_after_one_call() -> None:
    model = ScriptedModel([json.dumps(GOOD_VOTE)])

    result = await complete_json(model, ask(), CONTEXT)

    assert isinstance(result, StructuredResult)
    assert (result.value, result.attempts) == (GOOD_VOTE, 1)
    assert result.completion.text == json.dumps(GOOD_VOTE)
    assert len(model.requests) == 1


async def test_given_an_invalid_reply_then_a_valid_one_then_the_model_was_told_why() -> None:
    bad = '{"vote": "maybe", "reason": "Looks fine to me.", "confidence": 1.5}'
    model = ScriptedModel([bad, json.dumps(GOOD_VOTE)])

    result = await complete_json(model, ask(), CONTEXT)

    assert (result.value, result.attempts) == (GOOD_VOTE, 2)
    retry = model.requests[1]
    assert retry.json_schema == VOTE_SCHEMA and retry.system == "You route requests."
    assert retry.messages[0] == ChatMessage("user", "Route: rank my site")
    assert retry.messages[1] == ChatMessage("assistant", bad)
    correction = retry.messages[2]
    assert correction.role == "user" and len(retry.messages) == 3
    assert '$.vote: must be one of "accept", "reject", "abstain"; got "maybe"' in correction.content
    assert "$.confidence: must be at most 1, got 1.5" in correction.content


async def test_given_two_invalid_replies_then_invalid_model_output_with_the_problems() -> None:
    model = ScriptedModel(['{"vote": "accept"}', '{"vote": "accept", "reason": 3}'])

    with pytest.raises(InvalidModelOutput) as raised:
        await complete_json(model, ask(), CONTEXT)

    assert len(model.requests) == 2
    assert raised.value.problems == [
        "$.confidence: is required but missing",
        "$.reason: must be a string, got an integer (3)",
    ]
    assert "after 2 attempts" in raised.value.detail
    assert "$.confidence: is required but missing" in raised.value.detail
    assert raised.value.title == "Invalid Model Output"
    assert status_for(raised.value) == 502


@pytest.mark.parametrize(
    "reply",
    [
        "```json\n" + json.dumps(GOOD_VOTE, indent=2) + "\n```",
        "```\n" + json.dumps(GOOD_VOTE) + "\n```\n",
        "  ```JSON" + json.dumps(GOOD_VOTE) + "```  ",
        "\n" + json.dumps(GOOD_VOTE) + "\n",
    ],
)
async def test_given_json_in_a_code_fence_then_it_is_accepted_first_time(reply: str) -> None:
    model = ScriptedModel([reply])

    result = await complete_json(model, ask(), CONTEXT)

    assert (result.value, result.attempts) == (GOOD_VOTE, 1)


async def test_given_a_reply_that_is_not_json_then_the_correction_says_so() -> None:
    model = ScriptedModel(["Sure! I accept.", json.dumps(GOOD_VOTE)])

    result = await complete_json(model, ask(), CONTEXT)

    assert result.attempts == 2
    assert "the reply is not valid JSON (Expecting value at line 1 column 1)" in (
        model.requests[1].messages[-1].content
    )


async def test_given_a_truncated_empty_reply_then_the_correction_asks_for_brevity() -> None:
    cut = Completion("", Usage(10, 1024), "anthropic", "m", 1.0, stop_reason="max_tokens")
    model = ScriptedModel([cut, json.dumps(GOOD_VOTE)])

    await complete_json(model, ask(), CONTEXT)

    retry = model.requests[1].messages
    assert retry[1] == ChatMessage("assistant", "(no reply)")  # never an empty message
    assert "the reply is empty" in retry[2].content
    assert "cut off at the length limit" in retry[2].content


def test_given_non_standard_json_constants_then_they_are_not_json() -> None:
    value, problems = parse_reply('{"confidence": NaN}', {"type": "object"})

    assert value is None and problems == ["the reply is not valid JSON (NaN is not a JSON value)"]


def test_given_prose_around_a_fence_then_it_is_not_unwrapped() -> None:
    _, problems = parse_reply('Here it is:\n```json\n{"a": 1}\n```', {"type": "object"})

    assert problems and problems[0].startswith("the reply is not valid JSON")


async def test_given_a_request_without_a_schema_then_refused_before_any_call() -> None:
    model = ScriptedModel([])
    request = ModelRequest(system="", messages=(ChatMessage("user", "hi"),))

    with pytest.raises(ValueError, match="json_schema"):
        await complete_json(model, request, CONTEXT)
    assert model.requests == []


async def test_given_the_budget_runs_out_before_the_retry_then_budget_exceeded() -> None:
    model = ScriptedModel(["{}", BudgetExceeded("no budget left")])

    with pytest.raises(BudgetExceeded):
        await complete_json(model, ask(), CONTEXT)


async def test_given_a_metered_model_then_each_attempt_is_budgeted_and_recorded() -> None:
    ledger = InMemoryLedger(budget=Decimal("5"))
    provider = ScriptedProvider("anthropic", ['{"vote": "accept"}', json.dumps(GOOD_VOTE)])
    chain = FailoverChain({"anthropic": provider})
    model = MeteredModel(chain, BOOK, ledger.uow)

    result = await complete_json(model, ask(), CONTEXT)

    assert (result.value, result.attempts) == (GOOD_VOTE, 2)
    assert [r.completion.text for r in ledger.records] == [
        '{"vote": "accept"}',
        json.dumps(GOOD_VOTE),
    ]
    assert all(r.context == CONTEXT for r in ledger.records) and ledger.held == {}
    assert result.completion.cost_usd == ledger.records[-1].completion.cost_usd > 0


async def test_given_the_offline_provider_then_complete_json_succeeds_first_time() -> None:
    ledger = InMemoryLedger()
    model = MeteredModel(FailoverChain({"offline": OfflineProvider()}), BOOK, ledger.uow)

    result = await complete_json(model, ask("route me", ROUTER_SCHEMA), CONTEXT)

    assert result.attempts == 1 and result.completion.provider == "offline"
    assert validate(result.value, ROUTER_SCHEMA) == []
