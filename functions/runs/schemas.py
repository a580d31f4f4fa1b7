"""Request and response models of runs, approvals and questions (RunsFunction)."""

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from guildstack.domain.limits import (
    MAX_ANSWER_CHARS,
    MAX_BODY_TEXT_CHARS,
    MAX_COMMENT_CHARS,
    MAX_DEPENDENCIES,
    MAX_NODES,
    MAX_RUN_BUDGET_USD,
    MAX_TITLE_CHARS,
)
from guildstack.domain.vocabulary import Decision, OnReject, RunKind

if TYPE_CHECKING:
    from guildstack.domain.runs import Approval, Event, Question, Run, Step, Workflow
    from guildstack.domain.workflows import WorkflowTemplate

AgentCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{1,63}$")]
StepKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")]
AgentRef = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TITLE_CHARS)
]
# Over-large inputs and prompts are rejected by the workflow's own validation (422 naming
# the field); this bound only keeps absurd bodies out.
Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_BODY_TEXT_CHARS)]


class NodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: StepKey
    agent: AgentRef
    prompt: Text | None = None
    depends_on: Annotated[list[StepKey], Field(max_length=MAX_DEPENDENCIES)] = Field(
        default_factory=list
    )
    requires_approval: bool = False
    on_reject: OnReject = OnReject.FAIL


class CreateRunRequest(BaseModel):
    """A workflow (`kind`, `title`, `nodes`) or a named template (`template`) on `input`."""

    model_config = ConfigDict(extra="forbid")

    template: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,39}$")] | None = None
    kind: RunKind | None = None
    title: Title | None = None
    input: Text
    # Twice the domain's limit: a workflow just over it gets the workflow's own 422.
    nodes: Annotated[list[NodeRequest], Field(max_length=2 * MAX_NODES)] | None = None
    budget_usd: Annotated[Decimal, Field(gt=0, le=MAX_RUN_BUDGET_USD)] | None = None

    @model_validator(mode="after")
    def _workflow_or_template(self) -> Self:
        if self.template is not None:
            if self.kind is not None or self.title is not None or self.nodes is not None:
                raise ValueError("give either template or kind, title and nodes")
        elif self.kind is None or self.title is None or self.nodes is None:
            raise ValueError("give kind, title and nodes (or a template)")
        return self

    def to_workflow(self) -> "Workflow":
        from guildstack.domain.runs import Node, Workflow

        assert self.kind is not None and self.title is not None and self.nodes is not None  # noqa: S101
        return Workflow(
            kind=self.kind,
            title=self.title,
            input=self.input,
            nodes=tuple(
                Node(
                    key=n.key,
                    agent=n.agent,
                    prompt=n.prompt,
                    depends_on=tuple(n.depends_on),
                    requires_approval=n.requires_approval,
                    on_reject=n.on_reject,
                )
                for n in self.nodes
            ),
            budget_usd=self.budget_usd,
        )


class InvokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: Text
    wait: bool = False


class StepResponse(BaseModel):
    key: str
    agent: str
    status: str
    depends_on: list[str]
    requires_approval: bool
    attempt: int
    output: str | None
    error: str | None
    usage: dict[str, Any]
    started_at: datetime | None
    finished_at: datetime | None
    # For a step that carries out a tool call a person approves: the exact call.
    tool_call: dict[str, Any] | None = None

    @classmethod
    def of(cls, step: "Step") -> Self:
        from guildstack.domain.tools import approved_call

        call = approved_call(step.prompt)
        return cls(
            tool_call={"tool": call.name, "arguments": dict(call.arguments)} if call else None,
            key=step.key,
            agent=step.agent_code,
            status=step.status.value,
            depends_on=list(step.depends_on),
            requires_approval=step.requires_approval,
            attempt=step.attempt,
            output=step.output,
            error=step.error,
            usage={
                "provider": step.provider,
                "model": step.model,
                "input_tokens": step.input_tokens,
                "output_tokens": step.output_tokens,
                "cost_usd": float(step.cost_usd),
            },
            started_at=step.started_at,
            finished_at=step.finished_at,
        )


class RunSummary(BaseModel):
    """A run in a list: everything but its steps (`GET /runs/{id}` has them)."""

    id: str
    kind: str
    title: str
    status: str
    input: str
    output: str | None
    error: str | None
    budget_usd: float | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, run: "Run") -> Self:
        return cls(
            id=str(run.id),
            kind=run.kind.value,
            title=run.title,
            status=run.status.value,
            input=run.input,
            output=run.output,
            error=run.error,
            budget_usd=float(run.budget_usd) if run.budget_usd is not None else None,
            created_at=run.created_at,
            updated_at=run.updated_at,
            finished_at=run.finished_at,
        )


class RunResponse(RunSummary):
    steps: list[StepResponse]

    @classmethod
    def of(cls, run: "Run") -> Self:
        summary = RunSummary.of(run).model_dump()
        return cls(**summary, steps=[StepResponse.of(s) for s in run.steps])


class RunAccepted(BaseModel):
    run: RunResponse


class InvokeAccepted(BaseModel):
    run_id: str
    status: str


class InvokeResult(BaseModel):
    run_id: str
    status: str
    output: str | None
    usage: dict[str, Any]

    @classmethod
    def of(cls, run: "Run") -> Self:
        step = StepResponse.of(run.steps[0]) if run.steps else None
        return cls(
            run_id=str(run.id),
            status=run.status.value,
            output=run.output,
            usage=step.usage if step else {},
        )


class EventResponse(BaseModel):
    id: int
    type: str
    payload: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, event: "Event") -> Self:
        return cls(
            id=event.seq, type=event.type, payload=dict(event.payload), created_at=event.created_at
        )


class EventsResponse(BaseModel):
    items: list[EventResponse]
    next_after: int


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Decision
    comment: Annotated[str, StringConstraints(max_length=MAX_COMMENT_CHARS)] | None = None


class AnswerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ANSWER_CHARS)
    ]


class ApprovalResponse(BaseModel):
    id: str
    run_id: str
    step_key: str
    status: str
    comment: str | None
    decided_by: str | None
    decided_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, approval: "Approval") -> Self:
        return cls(
            id=str(approval.id),
            run_id=str(approval.run_id),
            step_key=approval.step_key,
            status=approval.status.value,
            comment=approval.comment,
            decided_by=str(approval.decided_by) if approval.decided_by else None,
            decided_at=approval.decided_at,
            created_at=approval.created_at,
        )


class QuestionResponse(BaseModel):
    id: str
    run_id: str
    step_key: str
    question: str
    status: str
    answer: str | None
    answered_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, question: "Question") -> Self:
        return cls(
            id=str(question.id),
            run_id=str(question.run_id),
            step_key=question.step_key,
            question=question.question,
            status=question.status.value,
            answer=question.answer,
            answered_at=question.answered_at,
            created_at=question.created_at,
        )


class WorkflowNodeResponse(BaseModel):
    key: str
    agent: str
    prompt: str | None
    depends_on: list[str]


class WorkflowResponse(BaseModel):
    name: str
    version: int
    title: str
    description: str
    kind: str
    nodes: list[WorkflowNodeResponse]

    @classmethod
    def of(cls, t: "WorkflowTemplate") -> "WorkflowResponse":
        return cls(
            name=t.name,
            version=t.version,
            title=t.title,
            description=t.description,
            kind=t.kind.value,
            nodes=[
                WorkflowNodeResponse(
                    key=n.key, agent=n.agent, prompt=n.prompt, depends_on=list(n.depends_on)
                )
                for n in t.nodes
            ],
        )
