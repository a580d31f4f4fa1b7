"""Request and response models of the Campaigns function (/campaigns*)."""

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from guildstack.domain.campaigns import CampaignStatus, DecisionKind, ObjectiveType

if TYPE_CHECKING:  # only in signatures
    from guildstack.domain.campaigns import Campaign, Decision, Quest

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Long = Annotated[str, StringConstraints(max_length=2000)]
Money = Annotated[Decimal, Field(ge=0, le=1_000_000, max_digits=12, decimal_places=4)]
Cohorts = Annotated[list[Short], Field(max_length=20)]


class Positioning(BaseModel):
    """Where the campaign stands: what it says, to whom, against what, and why to believe."""

    model_config = ConfigDict(extra="forbid")

    statement: Long | None = None
    category: Short | None = None
    differentiator: Long | None = None
    reason_to_believe: Long | None = None


class CreateCampaignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    objective_type: ObjectiveType
    positioning: Positioning = Field(default_factory=Positioning)
    target_cohorts: Cohorts = Field(default_factory=list)
    budget: Money | None = None  # US dollars
    start_date: date | None = None
    end_date: date | None = None


class UpdateCampaignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    objective_type: ObjectiveType | None = None
    positioning: Positioning | None = None
    target_cohorts: Cohorts | None = None
    budget: Money | None = None
    start_date: date | None = None
    end_date: date | None = None
    status: CampaignStatus | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        return self


class GenerateBriefRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A person approves the Herald's brief before it is written (an approval gate).
    human_approval: bool = False


class StartedResponse(BaseModel):
    run_id: str


class MetricIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Short
    target: Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)]
    current: Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)] = 0


class ChapterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Short
    tasks: Annotated[list[Long], Field(max_length=50)] = Field(default_factory=list)


class CreateQuestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Name
    chapters: Annotated[list[ChapterIn], Field(min_length=1, max_length=20)]
    success_metrics: Annotated[list[MetricIn], Field(max_length=20)] = Field(default_factory=list)


class TaskProgress(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chapter: Annotated[int, Field(ge=0, le=100)]
    task: Annotated[int, Field(ge=0, le=100)]
    done: bool = True


class QuestProgressRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tasks: Annotated[list[TaskProgress], Field(max_length=500)] = Field(default_factory=list)
    metrics: Annotated[
        dict[Short, Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)]],
        Field(max_length=20),
    ] = Field(default_factory=dict)

    # Start this chapter's tasks as a run (operators and up).
    start_chapter: Annotated[int, Field(ge=0, le=100)] | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> Self:
        if not self.tasks and not self.metrics and self.start_chapter is None:
            raise ValueError("give tasks, metrics or start_chapter")
        return self


class MetricOut(BaseModel):
    name: str
    target: float
    current: float
    progress: float


class ChapterOut(BaseModel):
    position: int
    title: str
    tasks: list[dict[str, Any]]
    progress: float
    run_id: str | None


class QuestResponse(BaseModel):
    id: str
    campaign_id: str
    title: str
    chapters: list[ChapterOut]
    success_metrics: list[MetricOut]
    progress: float
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, q: "Quest") -> "QuestResponse":
        return cls(
            id=str(q.id),
            campaign_id=str(q.campaign_id),
            title=q.title,
            chapters=[
                ChapterOut(
                    position=i,
                    title=c.title,
                    tasks=[{"title": t, "done": d} for t, d in zip(c.tasks, c.done, strict=True)],
                    progress=c.progress,
                    run_id=str(c.run_id) if c.run_id else None,
                )
                for i, c in enumerate(q.chapters)
            ],
            success_metrics=[
                MetricOut(name=m.name, target=m.target, current=m.current, progress=m.progress)
                for m in q.success_metrics
            ],
            progress=q.progress,
            created_at=q.created_at,
            updated_at=q.updated_at,
        )


class CampaignResponse(BaseModel):
    id: str
    name: str
    objective_type: ObjectiveType
    status: CampaignStatus
    positioning: dict[str, Any]
    target_cohorts: list[str]
    budget: float | None
    start_date: date | None
    end_date: date | None
    brief: dict[str, Any] | None
    brief_run_id: str | None
    quests: list[QuestResponse] | None = None
    created_by: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, c: "Campaign", quests: "list[Quest] | None" = None) -> "CampaignResponse":
        return cls(
            id=str(c.id),
            name=c.name,
            objective_type=c.objective_type,
            status=c.status,
            positioning=dict(c.positioning),
            target_cohorts=list(c.target_cohorts),
            budget=float(c.budget_usd) if c.budget_usd is not None else None,
            start_date=c.start_date,
            end_date=c.end_date,
            brief=dict(c.brief) if c.brief is not None else None,
            brief_run_id=str(c.brief_run_id) if c.brief_run_id else None,
            quests=[QuestResponse.of(q) for q in quests] if quests is not None else None,
            created_by=str(c.created_by) if c.created_by else None,
            created_at=c.created_at,
            updated_at=c.updated_at,
        )


class DecisionResponse(BaseModel):
    id: str
    kind: DecisionKind
    lord: str
    summary: str
    detail: dict[str, Any]
    run_id: str | None
    step_key: str | None
    created_at: datetime | None

    @classmethod
    def of(cls, d: "Decision") -> "DecisionResponse":
        return cls(
            id=str(d.id),
            kind=d.kind,
            lord=d.lord,
            summary=d.summary,
            detail=dict(d.detail),
            run_id=str(d.run_id) if d.run_id else None,
            step_key=d.step_key,
            created_at=d.created_at,
        )


class OnboardingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The company as the owner describes it: name, what it sells, to whom, goals.
    company: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]


class OnboardingStarted(BaseModel):
    run_id: str
    resumed: bool
