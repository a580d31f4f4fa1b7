"""The domain's named values (enums), in one light module.

Request schemas and settings validate against these at cold start; keeping them apart from
the dataclasses of `models`, `agents` and `usage` lets a function import only what its
routes need. Those modules re-export them.
"""

from __future__ import annotations

from enum import StrEnum


class Tier(StrEnum):
    """Model capability tiers, cheapest first."""

    FAST = "fast"
    STANDARD = "standard"
    STRONG = "strong"

    def cheaper(self) -> Tier | None:
        order = list(Tier)
        index = order.index(self)
        return order[index - 1] if index > 0 else None


class TaskType(StrEnum):
    """Kinds of work (source 004); each picks a default tier."""

    ROUTING = "routing"
    RESEARCH = "research"
    CONTENT = "content"
    ANALYSIS = "analysis"
    STRATEGY = "strategy"
    SYNTHESIS = "synthesis"


DEFAULT_TIER: dict[TaskType, Tier] = {
    TaskType.ROUTING: Tier.FAST,
    TaskType.RESEARCH: Tier.STANDARD,
    TaskType.CONTENT: Tier.STANDARD,
    TaskType.ANALYSIS: Tier.STANDARD,
    TaskType.STRATEGY: Tier.STRONG,
    TaskType.SYNTHESIS: Tier.STRONG,
}


class Guild(StrEnum):
    COUNCIL = "council"
    RESEARCH = "research"
    MUSE = "muse"
    MATRIX = "matrix"
    GUARDIAN = "guardian"
    CORE = "core"
    DELIVERY = "delivery"
    DISCUSSION = "discussion"


class AgentStatus(StrEnum):
    SPAWNING = "spawning"
    IDLE = "idle"
    WORKING = "working"
    PAUSED = "paused"
    ERROR = "error"
    TERMINATED = "terminated"


class GroupBy(StrEnum):
    AGENT = "agent"
    MODEL = "model"
    USER = "user"
    RUN = "run"
    DAY = "day"
