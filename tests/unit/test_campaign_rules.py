"""The campaign rules without I/O: the status machine, the council's plan validation
(agents, cycles, budget), caps, quest progress and the keyword baseline plan."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from guildstack.adapters.models.offline import example_for
from guildstack.agents.catalog import load_agents
from guildstack.agents.council_prompts import (
    COUNCIL_SHARE,
    REVIEW_SCHEMA,
    baseline_plan,
    plan_schema,
)
from guildstack.domain.campaigns import (
    TRANSITIONS,
    Campaign,
    CampaignStatus,
    Chapter,
    Metric,
    ObjectiveType,
    Plan,
    PlanOverBudget,
    PlanRefused,
    PlanTask,
    Quest,
    check_transition,
    progressed,
    validate_plan,
)
from guildstack.domain.errors import Conflict, InvalidInput
from guildstack.domain.jsonschema import validate

CATALOG = load_agents(Path(__file__).resolve().parents[2] / "infra/catalog/agents.yaml")
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
S = CampaignStatus
AGENTS = {"RES-001": "research", "MTX-001": "matrix", "MUSE-001": "muse", "LORD-001": "council"}


def campaign(**changes: object) -> Campaign:
    values: dict[str, object] = {
        "id": uuid.uuid4(), "workspace_id": uuid.uuid4(), "created_by": None,
        "name": "Spring launch", "objective_type": ObjectiveType.AWARENESS,
        "positioning": {"statement": "The calm notes app"},
        "target_cohorts": ("founders",), "budget_usd": Decimal(10), "start_date": None,
        "end_date": None, "status": S.PLANNING, "created_at": NOW, "updated_at": NOW,
    }  # fmt: skip
    values.update(changes)
    return Campaign(**values)  # type: ignore[arg-type]


def plan(*tasks: PlanTask) -> Plan:
    return Plan("LORD-003", "why", tasks)


@pytest.mark.parametrize(
    ("current", "target"),
    [(a, b) for a in S for b in S],
)
def test_given_any_two_statuses_then_only_the_machine_s_moves_are_allowed(
    current: CampaignStatus, target: CampaignStatus
) -> None:
    allowed = {
        (S.PLANNING, S.APPROVED), (S.APPROVED, S.ACTIVE), (S.ACTIVE, S.PAUSED),
        (S.PAUSED, S.ACTIVE), (S.ACTIVE, S.COMPLETED), (S.PAUSED, S.COMPLETED),
    }  # fmt: skip
    if (current, target) in allowed:
        check_transition(current, target)
        assert target in TRANSITIONS[current]
    else:
        with pytest.raises(Conflict):
            check_transition(current, target)


def test_given_a_valid_plan_then_it_passes_and_caps_add_up_within_the_budget() -> None:
    p = plan(
        PlanTask("research", "RES-001", "facts", (), 0.3),
        PlanTask("matrix", "MTX-001", "signals", (), 0.2),
        PlanTask("muse", "MUSE-001", "messages", ("research", "matrix"), 0.3),
    )
    assert validate_plan(p, AGENTS, Decimal(10), reserve_usd=Decimal(2)) is p
    caps = p.caps(Decimal(10))
    assert caps == {"research": Decimal(3), "matrix": Decimal(2), "muse": Decimal(3)}


def test_given_unknown_lord_and_cyclic_tasks_then_every_problem_is_named() -> None:
    p = plan(
        PlanTask("a", "RES-404", "x", ("b",), 0.1),
        PlanTask("b", "LORD-001", "y", ("a",), 0.1),
        PlanTask("c", "MTX-001", "z", ("nowhere", "c"), 0.1),
        PlanTask("c", "MTX-001", "z", (), 0.1),
    )
    with pytest.raises(PlanRefused) as refused:
        validate_plan(p, AGENTS, Decimal(10))
    kinds = sorted(e["type"] for e in refused.value.errors)
    assert kinds == [
        "cycle", "dangling_dependency", "duplicate_key", "not_a_guild_agent", "unknown_agent",
    ]  # fmt: skip
    assert not isinstance(refused.value, PlanOverBudget)


def test_given_a_cycle_through_three_tasks_then_it_is_found() -> None:
    p = plan(
        PlanTask("a", "RES-001", "x", ("c",), 0.1),
        PlanTask("b", "MTX-001", "y", ("a",), 0.1),
        PlanTask("c", "MUSE-001", "z", ("b",), 0.1),
    )
    with pytest.raises(PlanRefused) as refused:
        validate_plan(p, AGENTS, Decimal(10))
    assert refused.value.errors[0]["msg"].startswith("dependency cycle: a → c → b → a")


def test_given_shares_over_the_budget_then_the_plan_is_over_budget() -> None:
    p = plan(
        PlanTask("a", "RES-001", "x", (), 0.5),
        PlanTask("b", "MTX-001", "y", (), 0.4),
    )
    with pytest.raises(PlanOverBudget) as over:
        validate_plan(p, AGENTS, Decimal(10), reserve_usd=Decimal(2))
    assert [e["type"] for e in over.value.errors] == ["over_budget"]
    # The same plan fits once nothing is set aside.
    validate_plan(p, AGENTS, Decimal(10))


def test_given_a_share_under_a_task_s_minimum_then_it_is_refused() -> None:
    p = plan(PlanTask("a", "RES-001", "x", (), 0.001))
    with pytest.raises(PlanOverBudget):
        validate_plan(p, AGENTS, Decimal(1))


def test_given_quest_progress_then_tasks_and_metrics_move_and_bad_names_are_422() -> None:
    q = Quest(
        uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), "Q",
        (Chapter("one", ("a", "b")), Chapter("two", ("c",))),
        (Metric("signups", 100),), NOW, NOW,
    )  # fmt: skip
    moved = progressed(q, tasks_done=[(0, 0, True), (1, 0, True)], metrics={"signups": 50}, now=NOW)
    assert moved.progress == pytest.approx(2 / 3, abs=1e-3)
    assert moved.chapters[0].progress == 0.5
    assert moved.success_metrics[0].progress == 0.5
    undone = progressed(moved, tasks_done=[(1, 0, False)], now=NOW)
    assert undone.chapters[1].done == (False,)
    with pytest.raises(InvalidInput) as bad:
        progressed(q, tasks_done=[(0, 2, True), (3, 0, True)], metrics={"x": 1}, now=NOW)
    assert len(bad.value.errors) == 3
    assert Metric("over", 10, 25).progress == 1.0


def test_given_the_catalog_then_the_baseline_plan_is_valid_and_the_offline_answer_is_it() -> None:
    guild_agents = [a for a in CATALOG if a.guild in ("research", "matrix", "muse", "guardian")]
    c = campaign()
    default = baseline_plan(c, guild_agents)
    schema = plan_schema(guild_agents, default)
    assert validate(default, schema) == []
    assert example_for(schema, "seed") == default
    p = Plan.of("LORD-003", default)
    budget = Decimal(1)
    validate_plan(
        p,
        {a.code: a.guild for a in guild_agents},
        budget,
        reserve_usd=budget * Decimal(str(COUNCIL_SHARE)),
    )
    guilds = [t.key.split("_")[0] for t in p.tasks]
    available = {g: sum(a.guild == g for a in guild_agents) for g in ("research", "matrix", "muse")}
    assert [guilds.count(g) for g in ("research", "matrix", "muse", "guardian")] == [
        min(5, available["research"]), min(5, available["matrix"]), min(4, available["muse"]), 1,
    ]  # fmt: skip
    assert example_for(REVIEW_SCHEMA, "x") == {"verdict": "approve", "reasons": []}
