"""Agents: who they are, which guild they serve in, and their lifecycle."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from guildstack.domain.errors import Conflict
from guildstack.domain.vocabulary import AgentStatus, Guild, Tier

__all__ = [
    "TRANSITIONS",
    "Agent",
    "AgentSource",
    "AgentSpec",
    "AgentStatus",
    "Guild",
    "check_transition",
]


# spawning → idle ↔ working / paused, error, terminated. Terminated is final.
TRANSITIONS: dict[AgentStatus, frozenset[AgentStatus]] = {
    AgentStatus.SPAWNING: frozenset({AgentStatus.IDLE, AgentStatus.ERROR, AgentStatus.TERMINATED}),
    AgentStatus.IDLE: frozenset(
        {AgentStatus.WORKING, AgentStatus.PAUSED, AgentStatus.ERROR, AgentStatus.TERMINATED}
    ),
    AgentStatus.WORKING: frozenset(
        {AgentStatus.IDLE, AgentStatus.PAUSED, AgentStatus.ERROR, AgentStatus.TERMINATED}
    ),
    AgentStatus.PAUSED: frozenset({AgentStatus.IDLE, AgentStatus.TERMINATED}),
    AgentStatus.ERROR: frozenset({AgentStatus.IDLE, AgentStatus.TERMINATED}),
    AgentStatus.TERMINATED: frozenset(),
}


def check_transition(current: AgentStatus, target: AgentStatus) -> None:
    """Raise Conflict (409) unless the lifecycle allows `current → target`."""
    if target != current and target not in TRANSITIONS[current]:
        raise Conflict(f"An agent cannot go from {current} to {target}.")


class AgentSource(StrEnum):
    CATALOG = "catalog"  # a built-in agent (infra/catalog/agents.yaml)
    CUSTOM = "custom"  # created by the workspace


@dataclass(frozen=True)
class AgentSpec:
    """An agent's definition: everything needed to call a model as this agent."""

    code: str
    name: str
    role: str
    guild: str
    description: str
    system_prompt: str
    model_tier: Tier = Tier.STANDARD
    temperature: float = 0.7
    max_tokens: int = 2048
    capabilities: tuple[str, ...] = ()
    # Words and short phrases that send a chat message to this agent when routing falls back
    # to keywords (see `guildstack.domain.routing`); custom agents have none.
    keywords: tuple[str, ...] = ()

    @classmethod
    def of(cls, **fields: Any) -> AgentSpec:
        """From edge-model fields: enums to their values, lists to tuples, text trimmed."""
        values: dict[str, Any] = {
            k: v.strip() if isinstance(v, str) else v for k, v in fields.items()
        }
        values["guild"] = str(values["guild"])
        values["model_tier"] = Tier(values.get("model_tier", Tier.STANDARD))
        values["capabilities"] = tuple(values.get("capabilities") or ())
        values["keywords"] = tuple(values.get("keywords") or ())
        return cls(**values)


@dataclass(frozen=True)
class Agent:
    """An agent as a workspace sees it: a definition plus its status there."""

    spec: AgentSpec
    source: AgentSource
    status: AgentStatus = AgentStatus.IDLE
    created_at: datetime | None = None
    updated_at: datetime | None = None
    customized: bool = field(default=False)

    @property
    def code(self) -> str:
        return self.spec.code

    def moved_to(self, target: AgentStatus) -> Agent:
        check_transition(self.status, target)
        return replace(self, status=target)


@dataclass(frozen=True)
class AgentActivity:
    """What an agent's steps did over a window: settled steps, how many succeeded, their
    duration (started → finished) percentiles, steps running now, and whether the last
    settled step failed."""

    window_days: int
    settled: int = 0
    succeeded: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    running: int = 0
    last_failed: bool = False

    @property
    def success_rate(self) -> float | None:
        return round(self.succeeded / self.settled, 4) if self.settled else None


def live_status(stored: AgentStatus, activity: AgentActivity | None) -> AgentStatus:
    """An available agent is `working` while one of its steps runs, `error` when its last
    settled step failed, `idle` otherwise; paused, spawning and retired agents keep their
    status (nothing runs them)."""
    if stored not in (AgentStatus.IDLE, AgentStatus.WORKING, AgentStatus.ERROR):
        return stored
    if activity is None:
        return AgentStatus.IDLE
    if activity.running:
        return AgentStatus.WORKING
    if activity.last_failed:
        return AgentStatus.ERROR
    return AgentStatus.IDLE
