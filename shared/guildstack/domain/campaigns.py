"""Campaigns: objective types, the status machine, quests with chapters and success metrics,
the brief's sections, and the council's plan (which guild agents do what, in which order,
for which share of the campaign's budget) with its validation.

No I/O. `services.campaigns` applies these rules inside its transactions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from guildstack.domain.errors import Conflict, InvalidInput

__all__ = [
    "BRIEF_SECTIONS",
    "MIN_TASK_USD",
    "Campaign",
    "CampaignStatus",
    "Chapter",
    "Decision",
    "DecisionKind",
    "Metric",
    "ObjectiveType",
    "Plan",
    "PlanTask",
    "Quest",
    "check_transition",
    "validate_plan",
]


class ObjectiveType(StrEnum):
    AWARENESS = "awareness"
    CONSIDERATION = "consideration"
    CONVERSION = "conversion"
    RETENTION = "retention"
    ADVOCACY = "advocacy"


class CampaignStatus(StrEnum):
    PLANNING = "planning"
    APPROVED = "approved"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"


S = CampaignStatus
# planning → approved → active ⇄ paused → completed (a paused campaign may also end).
TRANSITIONS: Mapping[CampaignStatus, frozenset[CampaignStatus]] = {
    S.PLANNING: frozenset({S.APPROVED}),
    S.APPROVED: frozenset({S.ACTIVE}),
    S.ACTIVE: frozenset({S.PAUSED, S.COMPLETED}),
    S.PAUSED: frozenset({S.ACTIVE, S.COMPLETED}),
    S.COMPLETED: frozenset(),
}


def check_transition(current: CampaignStatus, target: CampaignStatus) -> None:
    """`Conflict` (409) unless the machine allows `current → target`."""
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (it is completed)"
        raise Conflict(
            f"A {current.value} campaign cannot become {target.value}; allowed: {allowed}."
        )


# The intelligence brief, section by section, in the order it is read.
BRIEF_SECTIONS: tuple[str, ...] = (
    "situation",
    "audience",
    "competitors",
    "positioning",
    "messages",
    "channels",
    "risks_compliance",
    "kpis",
)


@dataclass(frozen=True)
class Campaign:
    id: UUID
    workspace_id: UUID
    created_by: UUID | None
    name: str
    objective_type: ObjectiveType
    positioning: Mapping[str, Any]
    target_cohorts: tuple[str, ...]
    budget_usd: Decimal | None
    start_date: date | None
    end_date: date | None
    status: CampaignStatus
    created_at: datetime
    updated_at: datetime
    brief: Mapping[str, Any] | None = None
    brief_run_id: UUID | None = None

    def moved_to(self, target: CampaignStatus, now: datetime) -> Campaign:
        check_transition(self.status, target)
        return replace(self, status=target, updated_at=now)

    def describe(self) -> str:
        """The campaign as the council reads it."""
        positioning = "; ".join(f"{k}: {v}" for k, v in self.positioning.items() if v)
        lines = [
            f"Campaign: {self.name}",
            f"Objective: {self.objective_type.value}",
            f"Target cohorts: {', '.join(self.target_cohorts) or 'not set'}",
            f"Positioning: {positioning or 'not set'}",
        ]
        if self.budget_usd is not None:
            lines.append(f"Budget (USD): {self.budget_usd}")
        return "\n".join(lines)


# --- quests ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    name: str
    target: float
    current: float = 0.0

    @property
    def progress(self) -> float:
        if self.target == 0:
            return 1.0
        return round(max(0.0, min(1.0, self.current / self.target)), 4)


@dataclass(frozen=True)
class Chapter:
    title: str
    tasks: tuple[str, ...] = ()
    done: tuple[bool, ...] = ()
    run_id: UUID | None = None

    def __post_init__(self) -> None:
        if not self.done:
            object.__setattr__(self, "done", (False,) * len(self.tasks))
        if len(self.done) != len(self.tasks):
            raise ValueError("a chapter has one done flag per task")

    @property
    def progress(self) -> float:
        return round(sum(self.done) / len(self.done), 4) if self.done else 0.0


@dataclass(frozen=True)
class Quest:
    id: UUID
    workspace_id: UUID
    campaign_id: UUID
    title: str
    chapters: tuple[Chapter, ...]
    success_metrics: tuple[Metric, ...]
    created_at: datetime
    updated_at: datetime

    @property
    def progress(self) -> float:
        """Tasks done over all tasks (metrics are reported apart)."""
        total = sum(len(c.tasks) for c in self.chapters)
        return round(sum(sum(c.done) for c in self.chapters) / total, 4) if total else 0.0


def _problem(loc: Sequence[str | int], msg: str, kind: str = "value_error") -> dict[str, Any]:
    return {"loc": ["body", *map(str, loc)], "msg": msg, "type": kind}


def progressed(
    quest: Quest,
    *,
    tasks_done: Iterable[tuple[int, int, bool]] = (),
    metrics: Mapping[str, float] | None = None,
    now: datetime,
) -> Quest:
    """The quest with tasks marked (chapter index, task index, done) and metrics' current
    values set; 422 naming each index or metric that does not exist."""
    problems: list[dict[str, Any]] = []
    chapters = [list(c.done) for c in quest.chapters]
    for i, (chapter, task, done) in enumerate(tasks_done):
        if not 0 <= chapter < len(chapters) or not 0 <= task < len(chapters[chapter]):
            problems.append(_problem(["tasks", i], f"no task {task} in chapter {chapter}"))
            continue
        chapters[chapter][task] = done
    names = {m.name for m in quest.success_metrics}
    for name in metrics or {}:
        if name not in names:
            problems.append(_problem(["metrics", name], f"no metric {name!r} in this quest"))
    if problems:
        raise InvalidInput("The progress names tasks or metrics the quest does not have.", problems)
    values = metrics or {}
    return replace(
        quest,
        chapters=tuple(
            replace(c, done=tuple(flags)) for c, flags in zip(quest.chapters, chapters, strict=True)
        ),
        success_metrics=tuple(
            replace(m, current=float(values.get(m.name, m.current))) for m in quest.success_metrics
        ),
        updated_at=now,
    )


# --- the council's decisions -------------------------------------------------------------


class DecisionKind(StrEnum):
    PLAN = "plan"  # a lord's plan, accepted
    BUDGET = "budget"  # how the campaign's budget is split between the plan's tasks
    APPROVAL = "approval"  # a lord approved a guild's output
    REJECTION = "rejection"  # a lord sent a guild's output back, with reasons
    REFUSAL = "refusal"  # a plan refused before any work (invalid, over budget)
    BRIEF = "brief"  # the brief landed in the campaign


@dataclass(frozen=True)
class Decision:
    campaign_id: UUID
    kind: DecisionKind
    lord: str
    summary: str
    detail: Mapping[str, Any] = field(default_factory=dict)
    run_id: UUID | None = None
    step_key: str | None = None
    id: UUID | None = None
    created_at: datetime | None = None


# --- the plan ----------------------------------------------------------------------------

# The brief's last step (the Herald writes the brief from the guilds' approved work).
BRIEF_STEP = "brief"
HERALD = "LORD-007"

# The least a task may be given: one modest call and its review.
MIN_TASK_USD = Decimal("0.01")
MAX_PLAN_TASKS = 16
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
PLAN_GUILDS = ("research", "matrix", "muse", "guardian")


@dataclass(frozen=True)
class PlanTask:
    key: str
    agent: str
    instruction: str
    depends_on: tuple[str, ...] = ()
    budget_share: float = 0.0  # of the campaign's budget, in (0, 1]


@dataclass(frozen=True)
class Plan:
    lord: str
    rationale: str
    tasks: tuple[PlanTask, ...]

    @classmethod
    def of(cls, lord: str, value: Mapping[str, Any]) -> Plan:
        """From the JSON the lord answered (already valid against `plan_schema`)."""
        return cls(
            lord=lord,
            rationale=str(value.get("rationale", "")),
            tasks=tuple(
                PlanTask(
                    key=str(t["key"]),
                    agent=str(t["agent"]),
                    instruction=str(t["instruction"]),
                    depends_on=tuple(str(d) for d in t.get("depends_on", ())),
                    budget_share=float(t["budget_share"]),
                )
                for t in value.get("tasks", ())
            ),
        )

    def caps(self, budget_usd: Decimal) -> dict[str, Decimal]:
        """Each task's cap in US dollars: its share of the budget (rounded down to a cent
        hundredth, so the caps never add up to more than the budget)."""
        return {
            t.key: (budget_usd * Decimal(str(t.budget_share))).quantize(
                Decimal("0.0001"), rounding=ROUND_DOWN
            )
            for t in self.tasks
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "lord": self.lord,
            "rationale": self.rationale,
            "tasks": [
                {
                    "key": t.key,
                    "agent": t.agent,
                    "instruction": t.instruction,
                    "depends_on": list(t.depends_on),
                    "budget_share": t.budget_share,
                }
                for t in self.tasks
            ],
        }


class PlanRefused(InvalidInput):
    """A plan that cannot become a run (422 naming every problem)."""


class PlanOverBudget(PlanRefused):
    """A plan whose tasks ask more than the campaign's budget."""


def validate_plan(
    plan: Plan,
    agents: Mapping[str, str],
    budget_usd: Decimal,
    *,
    reserve_usd: Decimal = Decimal(0),
) -> Plan:
    """The plan when it can run: every agent known and active in the workspace (`agents`:
    code → guild, active ones only) and of a guild the council commands, keys unique, no
    dangling or cyclic dependencies, and budget shares that fit the campaign's budget once
    `reserve_usd` (the council's own calls) is set aside, with every task at least
    `MIN_TASK_USD`. `PlanOverBudget` when only the money is wrong, else `PlanRefused`."""
    problems: list[dict[str, Any]] = []
    tasks = plan.tasks
    if not tasks:
        problems.append(_problem(["plan", "tasks"], "the plan has no tasks", "empty_plan"))
    if len(tasks) > MAX_PLAN_TASKS:
        problems.append(
            _problem(["plan", "tasks"], f"at most {MAX_PLAN_TASKS} tasks", "too_many_tasks")
        )
    keys = [t.key for t in tasks]
    seen: set[str] = set()
    for i, t in enumerate(tasks):
        loc: list[str | int] = ["plan", "tasks", i]
        if not _KEY.match(t.key):
            problems.append(_problem([*loc, "key"], f"bad key {t.key!r}", "bad_key"))
        if t.key in seen:
            problems.append(_problem([*loc, "key"], f"duplicate key {t.key!r}", "duplicate_key"))
        seen.add(t.key)
        guild = agents.get(t.agent)
        if guild is None:
            problems.append(
                _problem([*loc, "agent"], f"unknown or inactive agent {t.agent!r}", "unknown_agent")
            )
        elif guild not in PLAN_GUILDS:
            problems.append(
                _problem([*loc, "agent"], f"{t.agent} is not a guild agent", "not_a_guild_agent")
            )
        for dep in t.depends_on:
            if dep == t.key or dep not in keys:
                problems.append(
                    _problem([*loc, "depends_on"], f"{t.key!r} cannot depend on {dep!r}", "cycle")
                    if dep == t.key
                    else _problem(
                        [*loc, "depends_on"],
                        f"{t.key!r} depends on unknown task {dep!r}",
                        "dangling_dependency",
                    )
                )
    if not problems:
        cycle = _find_cycle(tasks)
        if cycle:
            problems.append(
                _problem(["plan", "tasks"], "dependency cycle: " + " → ".join(cycle), "cycle")
            )
    if problems:
        raise PlanRefused("The council's plan cannot run.", problems)
    money: list[dict[str, Any]] = []
    available = budget_usd - reserve_usd
    caps = plan.caps(budget_usd)
    for i, t in enumerate(tasks):
        if not 0 < t.budget_share <= 1:
            money.append(
                _problem(["plan", "tasks", i, "budget_share"], "a share is in (0, 1]", "bad_share")
            )
        elif caps[t.key] < MIN_TASK_USD:
            money.append(
                _problem(
                    ["plan", "tasks", i, "budget_share"],
                    f"{t.key!r} gets USD {caps[t.key]}, under the USD {MIN_TASK_USD} a task needs",
                    "over_budget",
                )
            )
    total = sum(caps.values(), Decimal(0))
    if total > available:
        money.append(
            _problem(
                ["plan", "tasks"],
                f"the tasks ask USD {total}, the campaign has USD {max(available, Decimal(0))}"
                " for them",
                "over_budget",
            )
        )
    if money:
        raise PlanOverBudget("The council's plan exceeds the campaign's budget.", money)
    return plan


def _find_cycle(tasks: Sequence[PlanTask]) -> list[str]:
    deps = {t.key: t.depends_on for t in tasks}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(key: str) -> list[str]:
        state[key] = 1
        path.append(key)
        for dep in deps.get(key, ()):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        path.pop()
        state[key] = 2
        return []

    for key in deps:
        if key not in state:
            found = visit(key)
            if found:
                return found
    return []
