"""The chat router: the routing model's picks when it answers well, keyword routing when it
is slow, wrong, down or offline — and every decision records how it was made."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from guildstack.agents.catalog import load_agents
from guildstack.agents.router import AgentRouter
from guildstack.domain.agents import AgentSpec
from guildstack.domain.errors import BudgetExceeded, ProviderUnavailable
from guildstack.domain.models import (
    CallContext,
    Completion,
    ModelRequest,
    Ticket,
    Usage,
)
from guildstack.domain.routing import RoutingMethod
from tests.fakes.models import ScriptedModel

CATALOG = load_agents(Path(__file__).resolve().parents[2] / "infra/catalog/agents.yaml")
CORE = [spec for spec in CATALOG if spec.guild == "core"]
CONTEXT = CallContext(workspace_id=uuid.uuid4())
SEO_MESSAGE = "Which keywords should my bakery's website rank for on Google?"


def picks(*pairs: tuple[str, float]) -> str:
    return json.dumps({"agents": [{"code": c, "confidence": v} for c, v in pairs]})


async def test_given_a_valid_model_answer_then_its_known_picks_and_core_last() -> None:
    model = ScriptedModel([picks(("seo_agent", 0.9), ("made_up", 0.8), ("design_agent", 0.4))])

    decision = await AgentRouter(model).route(SEO_MESSAGE, CORE, CONTEXT)

    assert decision.method is RoutingMethod.MODEL
    assert decision.codes == ("seo_agent", "design_agent", "nicole_core")
    assert [a.confidence for a in decision.agents] == [0.9, 0.4, 1.0]
    assert decision.model == "scripted/m1" and decision.latency_ms >= 0
    assert "seo_agent" in model.requests[0].system  # the roster is in the prompt


async def test_given_invalid_model_output_twice_then_keywords_decide() -> None:
    model = ScriptedModel(["not json", '{"agents": "nope"}'])

    decision = await AgentRouter(model).route(SEO_MESSAGE, CORE, CONTEXT)

    assert decision.method is RoutingMethod.KEYWORDS and decision.model is None
    assert "seo_agent" in decision.codes and decision.codes[-1] == "nicole_core"
    assert len(model.requests) == 2  # the answer and one correction


async def test_given_a_failing_model_then_keywords_decide() -> None:
    model = ScriptedModel([ProviderUnavailable("all down")])

    decision = await AgentRouter(model).route(SEO_MESSAGE, CORE, CONTEXT)

    assert decision.method is RoutingMethod.KEYWORDS and "seo_agent" in decision.codes


class NeverAnswers(ScriptedModel):
    async def complete(
        self,
        request: ModelRequest,
        context: CallContext,
        *,
        settle: bool = True,
        ticket: Ticket | None = None,
    ) -> Completion:
        await asyncio.Event().wait()  # a provider that hangs
        raise AssertionError("unreachable")


async def test_given_a_slow_model_then_keywords_decide_at_the_deadline() -> None:
    router = AgentRouter(NeverAnswers([]), timeout_seconds=0.01)

    decision = await router.route(SEO_MESSAGE, CORE, CONTEXT)

    assert decision.method is RoutingMethod.KEYWORDS and "seo_agent" in decision.codes


async def test_given_the_offline_provider_then_keywords_decide() -> None:
    offline = Completion(picks(("design_agent", 1.0)), Usage(1, 1), "offline", "offline", 0.1)
    decision = await AgentRouter(ScriptedModel([offline])).route(SEO_MESSAGE, CORE, CONTEXT)

    assert decision.method is RoutingMethod.KEYWORDS and "design_agent" not in decision.codes


async def test_given_no_routing_model_then_keywords_decide_without_a_model_call() -> None:
    model = ScriptedModel([picks(("design_agent", 1.0))])

    decision = await AgentRouter(model, model_routing=False).route(SEO_MESSAGE, CORE, CONTEXT)

    assert decision.method is RoutingMethod.KEYWORDS and "seo_agent" in decision.codes
    assert model.requests == []


async def test_given_explicit_agents_then_no_model_call_and_unknown_codes_dropped() -> None:
    model = ScriptedModel([picks(("seo_agent", 0.9))])

    decision = await AgentRouter(model).route(
        "hi", CORE, CONTEXT, explicit=["design_agent", "nobody"]
    )

    assert decision.method is RoutingMethod.EXPLICIT
    assert decision.codes == ("design_agent", "nicole_core") and model.requests == []


async def test_given_no_budget_then_the_refusal_passes_through() -> None:
    with pytest.raises(BudgetExceeded):
        await AgentRouter(ScriptedModel([BudgetExceeded("no money")])).route(
            SEO_MESSAGE, CORE, CONTEXT
        )


async def test_given_only_the_core_agent_then_no_specialists_and_no_model_call() -> None:
    core_only: list[AgentSpec] = [s for s in CORE if s.code == "nicole_core"]
    model = ScriptedModel([])
    decision = await AgentRouter(model).route("anything", core_only, CONTEXT)
    assert decision.codes == ("nicole_core",) and model.requests == []
