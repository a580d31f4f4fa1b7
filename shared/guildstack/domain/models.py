"""Model calls: requests, results, usage and tiers. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID


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


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True)
class CallContext:
    """Who a call is for, so its usage lands on the right ledger row."""

    workspace_id: UUID
    user_id: UUID | None = None
    agent_code: str | None = None
    run_id: UUID | None = None
    step_key: str | None = None


@dataclass(frozen=True)
class ModelRequest:
    system: str
    messages: tuple[ChatMessage, ...]
    tier: Tier = Tier.STANDARD
    model: str | None = None  # an explicit "provider/model" skips tier selection
    temperature: float = 0.7
    max_tokens: int = 1024
    json_schema: dict[str, Any] | None = field(default=None, hash=False)
    task_type: TaskType | None = None


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )


@dataclass(frozen=True)
class Completion:
    text: str
    usage: Usage
    provider: str
    model: str
    latency_ms: float
    stop_reason: str | None = None
