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
    """Kinds of work (the marketing platform's task types); each picks a default tier."""

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


class RunKind(StrEnum):
    """Workflow shapes. A client starts the first four through POST /runs; a chat turn and a
    team discussion are runs the chat area starts itself, a campaign's brief the campaigns
    area."""

    SINGLE = "single"
    PIPELINE = "pipeline"
    PARALLEL = "parallel"
    DAG = "dag"
    CHAT = "chat"
    DISCUSSION = "discussion"
    CAMPAIGN_BRIEF = "campaign_brief"  # the council's plan for a campaign's brief
    ONBOARDING = "onboarding"  # the 12-step onboarding of a company


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING_APPROVAL = "waiting_approval"
    WAITING_INPUT = "waiting_input"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class StepStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD = "dead"
    SKIPPED = "skipped"
    WAITING_APPROVAL = "waiting_approval"
    WAITING_INPUT = "waiting_input"


class EventType(StrEnum):
    """Every kind of event a run appends to its log (`GET /runs/{id}/events`, SSE)."""

    RUN_CREATED = "run.created"
    RUN_STATUS = "run.status"
    RUN_FINISHED = "run.finished"
    STEP_ADDED = "step.added"  # a running run grew a step (a discussion's next turn)
    STEP_QUEUED = "step.queued"
    STEP_STARTED = "step.started"
    # Streamed text of one attempt; every token event names its attempt, so a reader can
    # drop the text of an attempt that later failed.
    STEP_TOKEN = "step.token"  # noqa: S105 - an event name, not a secret
    STEP_SUCCEEDED = "step.succeeded"
    STEP_FAILED = "step.failed"
    STEP_DEFERRED = "step.deferred"
    STEP_SKIPPED = "step.skipped"
    STEP_DEAD = "step.dead"
    APPROVAL_REQUESTED = "approval.requested"
    APPROVAL_DECIDED = "approval.decided"
    QUESTION_ASKED = "question.asked"
    QUESTION_ANSWERED = "question.answered"
    # A step's agent called a tool (name, exact arguments), and what came back.
    TOOL_CALLED = "tool.called"
    TOOL_RESULT = "tool.result"


class JobKind(StrEnum):
    """Kinds of leased background job; each queue message names one."""

    STEP = "step"
    DOCUMENT = "document"


class OnReject(StrEnum):
    """What a rejected approval does to its step: fail the run, or skip the step."""

    FAIL = "fail"
    SKIP = "skip"


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class GateStatus(StrEnum):
    """The status filter of approvals and questions."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    ANSWERED = "answered"
    CANCELLED = "cancelled"  # a question left unanswered when its run was cancelled


class ConversationMode(StrEnum):
    CHAT = "chat"  # the assistant answers, with the specialists the router picks
    DISCUSSION = "discussion"  # a team of personas works a goal to a decision


class ConversationStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"  # waiting for the user (a discussion's question), or paused by them
    COMPLETED = "completed"


class ConversationEventType(StrEnum):
    """What a conversation's event log (and its SSE stream) carries."""

    MESSAGE_NEW = "message.new"
    AGENT_TYPING = "agent.typing"  # an agent's turn started
    AGENT_RESPONSE_COMPLETE = "agent.response.complete"
    STATUS_CHANGED = "status.changed"
    CONSENSUS_REACHED = "consensus.reached"
    TURN_FAILED = "turn.failed"


class SenderKind(StrEnum):
    USER = "user"
    AGENT = "agent"
    SYSTEM = "system"


class MessageType(StrEnum):
    CHAT = "chat"
    DISCUSSION = "discussion"
    PROPOSAL = "proposal"
    VOTE = "vote"
    QUESTION_TO_USER = "question_to_user"
    USER_RESPONSE = "user_response"
    SUMMARY = "summary"


class Collection(StrEnum):
    """Memory collections: the personal assistant's memories and the marketing platform's
    knowledge collections."""

    CORE = "core"
    DOCUMENTS = "documents"
    BUSINESS = "business"
    DESIGN_GUIDELINES = "design_guidelines"
    CODEX_KNOWLEDGE = "codex_knowledge"
    CAMPAIGN_BRIEFS = "campaign_briefs"
    COMPETITOR_INTEL = "competitor_intel"
    INDUSTRY_RESEARCH = "industry_research"
    USER_PREFERENCES = "user_preferences"


class MemoryScope(StrEnum):
    """A memory is its owner's alone (`user`) or every member's (`workspace`)."""

    USER = "user"
    WORKSPACE = "workspace"


class Role(StrEnum):
    """Workspace roles, strongest first: owner > admin > operator > analyst > viewer."""

    OWNER = "owner"
    ADMIN = "admin"
    OPERATOR = "operator"
    ANALYST = "analyst"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


_RANKS = {
    Role.OWNER: 5,
    Role.ADMIN: 4,
    Role.OPERATOR: 3,
    Role.ANALYST: 2,
    Role.VIEWER: 1,
}
