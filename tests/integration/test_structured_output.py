"""`complete_json` through the real container: Anthropic's wire format over a scripted
transport, the real failover chain and metered model, and the usage ledger in PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest

from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.domain.errors import InvalidModelOutput
from guildstack.domain.models import ChatMessage, ModelRequest, Tier
from guildstack.services.structured import complete_json
from tests.fakes import wire
from tests.fixtures.postgres import MakeUser
from tests.integration.test_model_providers import harness

ROUTER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "routes": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "agent": {"type": "string", "enum": ["seo", "design", "copy"]},
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                },
                "required": ["agent", "confidence"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["routes"],
    "additionalProperties": False,
}
ROUTE = ModelRequest(
    system="Route the request to our agents.",
    messages=(ChatMessage("user", "Get my bakery found on Google."),),
    tier=Tier.FAST,
    max_tokens=300,
    json_schema=ROUTER_SCHEMA,
)
OUT_OF_RANGE = '{"routes": [{"agent": "seo", "confidence": 1.4}]}'
VALID = {"routes": [{"agent": "seo", "confidence": 0.9}, {"agent": "copy", "confidence": 0.4}]}


async def test_given_an_invalid_then_a_valid_reply_when_completing_json_then_two_rows(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    h = await harness(
        database,
        make_user,
        [
            wire.anthropic_message(OUT_OF_RANGE, output_tokens=15),
            wire.anthropic_message(f"```json\n{json.dumps(VALID)}\n```", output_tokens=30),
        ],
        [],
    )

    result = await complete_json(h.container.model, ROUTE, h.context)

    assert (result.value, result.attempts) == (VALID, 2)
    assert (result.completion.provider, result.completion.usage.output_tokens) == ("anthropic", 30)
    first, second = h.anthropic.bodies()
    assert "output_config" in first and "output_config" in second
    assert first["messages"] == [{"role": "user", "content": "Get my bakery found on Google."}]
    assert second["messages"][:2] == [
        first["messages"][0],
        {"role": "assistant", "content": OUT_OF_RANGE},
    ]
    correction = second["messages"][2]
    assert correction["role"] == "user"
    assert "$.routes[0].confidence: must be at most 1, got 1.4" in correction["content"]
    rows = await h.usage_rows()
    assert [(r["provider"], r["agent_code"], r["output_tokens"]) for r in rows] == [
        ("anthropic", "nicole_core", 15),
        ("anthropic", "nicole_core", 30),
    ]
    assert rows[1]["cost_usd"] == result.completion.cost_usd > 0
    assert await h.reservations() == 0


async def test_given_two_invalid_replies_when_completing_json_then_an_error_and_both_paid(
    database: PostgresDatabase, make_user: MakeUser
) -> None:
    h = await harness(
        database,
        make_user,
        [wire.anthropic_message("I would route this to SEO."), wire.anthropic_message("{}")],
        [],
    )

    with pytest.raises(InvalidModelOutput) as raised:
        await complete_json(h.container.model, ROUTE, h.context)

    assert raised.value.problems == ["$.routes: is required but missing"]
    assert len(h.anthropic.requests) == 2 and h.openai.requests == []  # no failover
    assert len(await h.usage_rows()) == 2  # both answers were delivered, so both are paid
    assert await h.reservations() == 0
