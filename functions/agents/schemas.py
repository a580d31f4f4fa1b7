"""Request and response models of the Agents function (/agents*, /usage)."""

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from guildstack.domain.vocabulary import Guild, Tier

if TYPE_CHECKING:  # only in signatures: cold start loads just the vocabulary
    from collections.abc import Mapping

    from guildstack.domain.agents import Agent, AgentActivity, AgentSpec
    from guildstack.domain.usage import BudgetStatus, UsageReport, UsageTotals

AgentCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{1,63}$")]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,31}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
Description = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=10, max_length=2000)
]
Prompt = Annotated[str, StringConstraints(strip_whitespace=True, min_length=10, max_length=20000)]
Temperature = Annotated[float, Field(ge=0, le=1)]
MaxTokens = Annotated[int, Field(ge=16, le=32000)]
Capabilities = Annotated[list[Slug], Field(max_length=32)]


class CreateAgentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: AgentCode
    name: Name
    role: Slug
    guild: Guild
    description: Description
    system_prompt: Prompt
    model_tier: Tier
    temperature: Temperature = 0.7
    max_tokens: MaxTokens = 2048
    capabilities: Capabilities = Field(default_factory=list)

    def to_spec(self) -> "AgentSpec":
        from guildstack.domain.agents import AgentSpec

        return AgentSpec.of(**self.model_dump())


class UpdateAgentRequest(BaseModel):
    """Fields to change; `status` pauses (`paused`) or resumes (`idle`) the agent."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    role: Slug | None = None
    guild: Guild | None = None
    description: Description | None = None
    system_prompt: Prompt | None = None
    model_tier: Tier | None = None
    temperature: Temperature | None = None
    max_tokens: MaxTokens | None = None
    capabilities: Capabilities | None = None
    status: Literal["idle", "paused"] | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("nothing to change")
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in self.model_fields_set - {"status"}:
            value = getattr(self, name)
            if isinstance(value, Guild):
                value = value.value
            elif isinstance(value, list):
                value = tuple(value)
            values[name] = value
        return values


class AgentTrialRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=8000)]


class AgentTrialResponse(BaseModel):
    agent: str
    text: str
    provider: str
    model: str
    tier: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms: float


class AgentTemplateResponse(BaseModel):
    code: str
    name: str
    role: str
    guild: str
    description: str
    system_prompt: str
    model_tier: Tier
    temperature: float
    max_tokens: int
    capabilities: list[str]

    @classmethod
    def of(cls, spec: "AgentSpec") -> Self:
        return cls(
            code=spec.code,
            name=spec.name,
            role=spec.role,
            guild=spec.guild,
            description=spec.description,
            system_prompt=spec.system_prompt,
            model_tier=spec.model_tier,
            temperature=spec.temperature,
            max_tokens=spec.max_tokens,
            capabilities=list(spec.capabilities),
        )


class AgentStatsResponse(BaseModel):
    """The agent's steps over the window: settled steps, success rate, latency."""

    window_days: int
    steps: int
    success_rate: float | None
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    running: int

    @classmethod
    def of(cls, activity: "AgentActivity") -> Self:
        return cls(
            window_days=activity.window_days,
            steps=activity.settled,
            success_rate=activity.success_rate,
            p50_latency_ms=activity.p50_ms,
            p95_latency_ms=activity.p95_ms,
            running=activity.running,
        )


class AgentResponse(AgentTemplateResponse):
    status: str
    source: str
    customized: bool
    updated_at: datetime | None
    stats: AgentStatsResponse | None = None

    @classmethod
    def of_agent(
        cls,
        agent: "Agent",
        activity: "Mapping[str, AgentActivity] | None" = None,
        window_days: int = 7,
    ) -> Self:
        """With `activity` (per code), the agent's stats and its live status (working while
        a step runs, error after a failed one)."""
        from guildstack.domain.agents import AgentActivity, live_status

        base = AgentTemplateResponse.of(agent.spec).model_dump()
        stats = None
        status = agent.status
        if activity is not None:
            mine = activity.get(agent.code)
            stats = AgentStatsResponse.of(mine or AgentActivity(window_days=window_days))
            status = live_status(agent.status, mine)
        return cls(
            **base,
            status=status.value,
            source=agent.source.value,
            customized=agent.customized,
            updated_at=agent.updated_at,
            stats=stats,
        )


class TotalsResponse(BaseModel):
    calls: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: float

    @classmethod
    def of(cls, totals: "UsageTotals") -> Self:
        return cls(
            calls=totals.calls,
            input_tokens=totals.input_tokens,
            output_tokens=totals.output_tokens,
            cache_read_tokens=totals.cache_read_tokens,
            cache_write_tokens=totals.cache_write_tokens,
            cost_usd=float(totals.cost_usd),
        )


class GroupResponse(TotalsResponse):
    key: str | None


class BudgetResponse(BaseModel):
    monthly_usd: float | None
    spent_usd: float
    remaining_usd: float | None

    @classmethod
    def of(cls, budget: "BudgetStatus") -> Self:
        return cls(
            monthly_usd=_money(budget.monthly_usd),
            spent_usd=float(budget.spent_usd),
            remaining_usd=_money(budget.remaining_usd),
        )


class UsageResponse(BaseModel):
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    group_by: str | None
    totals: TotalsResponse
    groups: list[GroupResponse]
    budget: BudgetResponse

    @classmethod
    def of(cls, report: "UsageReport", group_by: str | None) -> Self:
        return cls(
            from_=report.start,
            to=report.end,
            group_by=group_by,
            totals=TotalsResponse.of(report.totals),
            groups=[
                GroupResponse(key=g.key, **TotalsResponse.of(g.totals).model_dump())
                for g in report.groups
            ],
            budget=BudgetResponse.of(report.budget),
        )


def _money(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None
