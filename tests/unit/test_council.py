"""The Council of Lords on the step engine over the in-memory unit of work, with a scripted
model: a brief planned, reviewed and landed; a plan over budget (and a budget too small)
refused before any guild agent (or any model) is called; a task whose calls would pass its
cap stops; a lord rejecting the revision too fails the task with its reasons recorded."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from guildstack.agents.catalog import load_agents
from guildstack.domain.campaigns import (
    BRIEF_SECTIONS,
    Campaign,
    CampaignStatus,
    DecisionKind,
    ObjectiveType,
    PlanOverBudget,
)
from guildstack.domain.errors import BudgetExceeded
from guildstack.domain.identity import Member, Principal, Role, Workspace
from guildstack.domain.jobs import JobKind
from guildstack.domain.memory import Collection
from guildstack.domain.models import CallContext, Completion, ModelRequest, Usage
from guildstack.domain.vocabulary import RunKind, RunStatus
from guildstack.services.agents import AgentRegistry
from guildstack.services.council import CouncilService, CouncilSteps
from guildstack.services.engine import StepEngine
from guildstack.services.run_finishers import BriefFinisher
from tests.fakes.models import AnsweringModel
from tests.fakes.uow import Clock, InMemoryUnitOfWork

CATALOG = load_agents(Path(__file__).resolve().parents[2] / "infra/catalog/agents.yaml")
LORDS = {a.code: a for a in CATALOG if a.guild == "council"}
START = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@dataclass
class CouncilModel(AnsweringModel):
    """Plans with `plan` (None: the schema's default), reviews with `verdicts` in order
    (then approves), writes the brief from the schema's default; every call costs `cost`."""

    plan: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    verdicts: list[str] = field(default_factory=list)
    cost: Decimal = Decimal(0)
    calls: list[tuple[str | None, str]] = field(default_factory=list)  # (agent, kind)

    def answer(self, request: ModelRequest, context: CallContext) -> Completion:
        schema = request.json_schema or {}
        props = schema.get("properties", {})
        if "tasks" in props:
            kind, value = "plan", schema["default"]
            text = json.dumps(self.plan(value) if self.plan else value)
        elif "verdict" in props:
            kind = "review"
            verdict = self.verdicts.pop(0) if self.verdicts else "approve"
            reasons = [] if verdict == "approve" else ["Cite a source."]
            text = json.dumps({"verdict": verdict, "reasons": reasons})
        elif "situation" in props:
            kind, text = "brief", json.dumps(schema["default"])
        else:
            kind, text = "task", f"{context.agent_code} did the task."
        self.calls.append((context.agent_code, kind))
        return Completion(text, Usage(10, 5), "scripted", "m1", latency_ms=1.0, cost_usd=self.cost)


@dataclass
class Council:
    uow: InMemoryUnitOfWork
    model: CouncilModel
    engine: StepEngine
    service: CouncilService
    workspace: uuid.UUID
    member: Principal
    delivered: int = 0

    async def drain(self) -> None:
        while self.delivered < len(self.uow.sent):
            message, _ = self.uow.sent[self.delivered]
            self.delivered += 1
            if message.kind is JobKind.STEP:
                try:
                    await self.engine.handle(message)
                except Exception:  # noqa: BLE001, S112 - a failed attempt: the step says why
                    continue

    def campaign(self, budget: Decimal | None = Decimal(5), name: str = "Launch") -> Campaign:
        c = Campaign(
            uuid.uuid4(), self.workspace, self.member.user_id, name, ObjectiveType.CONVERSION,
            {"statement": "Calm notes"}, ("founders",), budget, None, None,
            CampaignStatus.PLANNING, START, START,
        )  # fmt: skip
        self.uow.world.campaigns[c.id] = c
        return c

    def decisions(self, campaign: Campaign) -> list[tuple[DecisionKind, str]]:
        return [(d.kind, d.lord) for d in self.uow.world.decisions if d.campaign_id == campaign.id]


def council(model: CouncilModel | None = None) -> Council:
    uow = InMemoryUnitOfWork(
        clock=Clock(START), finishers={RunKind.CAMPAIGN_BRIEF: BriefFinisher()}
    )
    world = uow.world
    workspace = uuid.uuid4()
    world.workspaces[workspace] = Workspace(workspace, "Shop", "shop", Decimal(100), START)
    uid = uuid.uuid4()
    member = Principal(uid, None, {"sub": str(uid), "role": "authenticated"})
    world.members[workspace] = {uid: Member(workspace, uid, None, None, Role.OPERATOR, START)}
    model = model or CouncilModel()
    registry = AgentRegistry(CATALOG, uow)
    engine = StepEngine(
        uow,
        registry,
        model,
        executors={RunKind.CAMPAIGN_BRIEF: CouncilSteps(uow, model, LORDS)},
    )
    return Council(uow, model, engine, CouncilService(uow, registry, model), workspace, member)


async def test_given_a_brief_then_each_task_is_reviewed_and_the_brief_lands() -> None:
    c = council()
    campaign = c.campaign()
    run = await c.service.generate_brief(c.member, c.workspace, campaign.id)
    await c.drain()

    stored = c.uow.world.runs[run.id]
    assert stored.run.status is RunStatus.SUCCEEDED
    landed = c.uow.world.campaigns[campaign.id]
    assert landed.brief is not None and set(landed.brief["sections"]) == set(BRIEF_SECTIONS)
    kinds = [k for k, _ in c.decisions(campaign)]
    tasks = [k for k in stored.steps if k != "brief"]
    assert kinds[:2] == [DecisionKind.PLAN, DecisionKind.BUDGET]
    assert kinds.count(DecisionKind.APPROVAL) == len(tasks)
    assert kinds[-1] is DecisionKind.BRIEF
    (document,) = c.uow.world.documents.values()
    assert document.document.collection is Collection.CAMPAIGN_BRIEFS
    # Research and matrix run side by side: none of them waits on another.
    roots = [k for k, s in stored.steps.items() if not s.depends_on]
    assert {k.split("_")[0] for k in roots} == {"research", "matrix"}


async def test_given_a_plan_over_the_budget_then_it_is_refused_before_any_guild_call() -> None:
    def greedy(plan: dict[str, Any]) -> dict[str, Any]:
        for task in plan["tasks"]:
            task["budget_share"] = 0.5
        return plan

    c = council(CouncilModel(plan=greedy))
    campaign = c.campaign()
    with pytest.raises(PlanOverBudget):
        await c.service.generate_brief(c.member, c.workspace, campaign.id)
    assert c.model.calls == [("LORD-003", "plan")]
    assert c.uow.world.runs == {}
    assert c.decisions(campaign) == [(DecisionKind.REFUSAL, "LORD-003")]


async def test_given_a_budget_too_small_then_no_model_is_called() -> None:
    c = council()
    campaign = c.campaign(budget=Decimal("0.05"))
    with pytest.raises(BudgetExceeded):
        await c.service.generate_brief(c.member, c.workspace, campaign.id)
    assert c.model.calls == []
    assert c.decisions(campaign) == [(DecisionKind.REFUSAL, "LORD-001")]


async def test_given_calls_dearer_than_a_task_s_cap_then_the_task_stops_within_it() -> None:
    # Each of the 15 tasks gets about USD 0.053 of USD 1; a call costs USD 0.05: the draft
    # fits, the review would pass the cap.
    c = council(CouncilModel(cost=Decimal("0.05")))
    campaign = c.campaign(budget=Decimal(1))
    run = await c.service.generate_brief(c.member, c.workspace, campaign.id)
    await c.drain()

    stored = c.uow.world.runs[run.id]
    assert stored.run.status is RunStatus.FAILED
    failed = [s for s in stored.steps.values() if s.error]
    assert failed and all("cap" in (s.error or "") for s in failed)
    assert ("LORD-002", "review") not in c.model.calls
    assert c.uow.world.campaigns[campaign.id].brief is None


async def test_given_a_lord_rejecting_the_revision_too_then_the_task_fails_with_reasons() -> None:
    c = council(CouncilModel(verdicts=["reject", "reject"]))
    campaign = c.campaign()
    run = await c.service.generate_brief(c.member, c.workspace, campaign.id)
    await c.drain()

    stored = c.uow.world.runs[run.id]
    assert stored.run.status is RunStatus.FAILED
    rejections = [d for d in c.uow.world.decisions if d.kind is DecisionKind.REJECTION]
    assert len(rejections) == 2
    assert [d.detail["revision"] for d in rejections] == [False, True]
    assert rejections[0].detail["reasons"] == ["Cite a source."]
    assert "rejected the revision" in (stored.run.error or "")
