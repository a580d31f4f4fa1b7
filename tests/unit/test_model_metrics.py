"""Model calls' metrics: one EMF record per call with bounded `agent`, `model` and `guild`
dimensions (custom agents and unpriced models collapse to one value each) and the outcome."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import pytest

from guildstack.agents.catalog import load_model_book
from guildstack.config import DEFAULT_CATALOG_DIR
from guildstack.domain.errors import ProviderUnavailable
from guildstack.domain.metrics import call_dimensions
from guildstack.domain.models import CallContext, ChatMessage, ModelRef, ModelRequest, Price
from guildstack.services.failover import FailoverChain
from guildstack.services.models import MeteredModel
from tests.fakes.models import InMemoryLedger, ScriptedProvider

BOOK = load_model_book(
    DEFAULT_CATALOG_DIR / "models.yaml", defaults={"compatible": Price(Decimal(1), Decimal(1))}
)
GUILDS = {"seo_agent": "research"}
WS = uuid.uuid4()


def _records(out: str) -> list[dict[str, Any]]:
    records = []
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            records.append(json.loads(line))
    return records


def test_given_agents_and_models_then_dimensions_stay_in_a_bounded_set() -> None:
    haiku = ModelRef("anthropic", "claude-haiku-4-5")
    assert call_dimensions("seo_agent", haiku, GUILDS, BOOK) == {
        "agent": "seo_agent",
        "model": "anthropic/claude-haiku-4-5",
        "guild": "research",
    }
    tenant_made = call_dimensions("my-agent-7f3a", ModelRef("compatible", "x/y"), GUILDS, BOOK)
    assert tenant_made == {"agent": "custom", "model": "compatible/other", "guild": "custom"}
    assert call_dimensions(None, None, GUILDS, BOOK) == {
        "agent": "none",
        "model": "none",
        "guild": "none",
    }


async def test_given_calls_then_each_writes_one_emf_record_with_its_dimensions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ledger = InMemoryLedger(budget=Decimal(5))
    ok = ScriptedProvider("anthropic", ["fine answer"])
    model = MeteredModel(FailoverChain({"anthropic": ok}), BOOK, ledger.uow, guilds=lambda: GUILDS)
    request = ModelRequest(system="s", messages=(ChatMessage("user", "hi"),))
    capsys.readouterr()

    await model.complete(request, CallContext(WS, agent_code="seo_agent"))
    failing = ScriptedProvider("anthropic", [ProviderUnavailable("down")])
    broken = MeteredModel(FailoverChain({"anthropic": failing}), BOOK, ledger.uow)
    with pytest.raises(ProviderUnavailable):
        await broken.complete(request, CallContext(WS, agent_code="tenant-agent"))

    first, second = _records(capsys.readouterr().out)
    assert {k: first[k] for k in ("agent", "model", "guild", "outcome")} == {
        "agent": "seo_agent",
        "model": "anthropic/claude-sonnet-4-6",
        "guild": "research",
        "outcome": "ok",
    }
    assert (
        first["ModelCalls"] == [1.0] and first["ModelTokens"] == [21.0] and "ModelLatency" in first
    )
    [directive] = first["_aws"]["CloudWatchMetrics"]
    assert {"agent", "model", "guild", "outcome"} <= set(directive["Dimensions"][0])
    assert (second["agent"], second["guild"], second["outcome"]) == ("custom", "custom", "error")
    assert "ModelTokens" not in second
