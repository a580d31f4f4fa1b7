"""Model calls: requests, results, usage and tiers. No I/O."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from guildstack.domain.tools import ToolCall, ToolResult, ToolSpec
from guildstack.domain.vocabulary import DEFAULT_TIER, TaskType, Tier

OFFLINE = "offline"
__all__ = [
    "DEFAULT_TIER",
    "OFFLINE",
    "CallContext",
    "CallPlan",
    "ChatMessage",
    "Completion",
    "Delta",
    "ModelRef",
    "ModelRequest",
    "Price",
    "Reservation",
    "StreamItem",
    "TaskType",
    "Ticket",
    "Tier",
    "Usage",
    "tier_for",
]


def tier_for(task_type: TaskType | None, requested: Tier | None) -> Tier:
    """An explicit tier wins; otherwise the task type's default; otherwise standard."""
    if requested is not None:
        return requested
    return DEFAULT_TIER[task_type] if task_type is not None else Tier.STANDARD


@dataclass(frozen=True)
class ModelRef:
    """A concrete model at a provider, written `provider/model` in config."""

    provider: str
    model: str

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        provider, sep, model = text.partition("/")
        if not sep or not provider or not model:
            raise ValueError(f"{text!r} is not 'provider/model'")
        return cls(provider, model)

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True)
class ChatMessage:
    """One turn. An assistant turn may carry the tool calls the model made; the user turn
    after it carries their results (and `content` may then be empty)."""

    role: Literal["user", "assistant"]
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_results: tuple[ToolResult, ...] = ()

    def size(self) -> int:
        return (
            len(self.content)
            + sum(len(str(c.arguments)) + len(c.name) for c in self.tool_calls)
            + sum(len(r.content) + 200 for r in self.tool_results)
        )


@dataclass(frozen=True)
class CallContext:
    """Who a call is for, so its usage lands on the right ledger row."""

    workspace_id: UUID
    user_id: UUID | None = None
    agent_code: str | None = None
    run_id: UUID | None = None
    step_key: str | None = None
    # A per-run cap on top of the workspace's monthly budget.
    run_budget_usd: Decimal | None = None
    # The most this one call may cost (what is left of a delegated step's budget share).
    spend_cap_usd: Decimal | None = None


@dataclass(frozen=True)
class ModelRequest:
    system: str
    messages: tuple[ChatMessage, ...]
    tier: Tier | None = None  # None: the task type's default tier
    model: str | None = None  # an explicit "provider/model" skips tier selection
    temperature: float = 0.7
    max_tokens: int = 1024
    json_schema: dict[str, Any] | None = field(default=None, hash=False)
    task_type: TaskType | None = None
    # Tools the model may call; its calls come back in `Completion.tool_calls`.
    tools: tuple[ToolSpec, ...] = ()
    # "none": the tools stay declared (earlier turns used them) but the model must answer.
    tool_choice: Literal["auto", "none"] = "auto"

    def estimated_input_tokens(self) -> int:
        """A deliberately generous count (~3 characters a token plus framing) for budgeting."""
        chars = len(self.system) + sum(m.size() for m in self.messages)
        if self.json_schema is not None:
            chars += len(str(self.json_schema))
        chars += sum(len(t.name) + len(t.description) + len(str(t.parameters)) for t in self.tools)
        return math.ceil(chars / 3) + 8 * (len(self.messages) + 1)


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
class Price:
    """US dollars per million tokens of each kind."""

    input: Decimal
    output: Decimal
    cache_read: Decimal = Decimal(0)
    cache_write: Decimal = Decimal(0)

    def cost(self, usage: Usage) -> Decimal:
        total = (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_read_tokens * self.cache_read
            + usage.cache_write_tokens * self.cache_write
        )
        return total / _MILLION

    def estimate(self, input_tokens: int, max_output_tokens: int) -> Decimal:
        """The most a call can cost: all input uncached (or cache-written), all output used."""
        per_input = max(self.input, self.cache_write)
        return (input_tokens * per_input + max_output_tokens * self.output) / _MILLION


_MILLION = Decimal(1_000_000)
FREE = Price(Decimal(0), Decimal(0))


@dataclass(frozen=True)
class Reservation:
    """Money set aside for one call until it is settled or released."""

    id: UUID
    workspace_id: UUID
    amount_usd: Decimal


@dataclass(frozen=True)
class CallPlan:
    """The models a call may use (its tier's failover chain) and the most it may cost."""

    chain: tuple[ModelRef, ...]
    estimate_usd: Decimal
    tier: Tier | None
    downgraded_from: Tier | None


@dataclass(frozen=True)
class Ticket:
    """A call planned and paid for in advance (its reservation), to be made later."""

    plan: CallPlan
    reservation: Reservation


@dataclass(frozen=True)
class Completion:
    """What a provider answered, and what it cost in tokens and time."""

    text: str
    usage: Usage
    provider: str
    model: str
    latency_ms: float
    stop_reason: str | None = None
    attempts: int = 1
    cost_usd: Decimal = Decimal(0)
    tier: Tier | None = None
    # The tier the task asked for, when the budget forced a cheaper one.
    downgraded_from: Tier | None = None
    # Set when the caller asked to settle the call in its own transaction: the reservation
    # that transaction must replace by this call's usage row.
    unsettled: Reservation | None = None
    # The tools the model asked to call (its turn ends there: `stop_reason` "tool_use").
    tool_calls: tuple[ToolCall, ...] = ()
    # Answered from the response cache: no provider was asked, it cost nothing.
    cached: bool = False


@dataclass(frozen=True)
class Delta:
    """A piece of streamed text."""

    text: str


StreamItem = Delta | Completion
