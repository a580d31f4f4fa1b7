"""Request and response models of the Chat function (/conversations*)."""

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from guildstack.domain.limits import MAX_BODY_TEXT_CHARS
from guildstack.domain.vocabulary import ConversationMode, ConversationStatus

if TYPE_CHECKING:  # only in signatures: cold start loads just the vocabulary
    from guildstack.domain.conversations import Conversation, Message

AgentCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{1,63}$")]
Title = Annotated[str, StringConstraints(max_length=200)]
# The message's own limits (empty, NUL bytes, length) are the service's: a 422 naming them.
Text = Annotated[str, StringConstraints(max_length=MAX_BODY_TEXT_CHARS)]


class CreateConversationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: ConversationMode = ConversationMode.CHAT
    title: Title | None = None
    goal: Text | None = None
    agents: Annotated[list[AgentCode], Field(max_length=50)] = Field(default_factory=list)
    shared: bool = False
    # A discussion's rules: consensus_rule (majority, two_thirds, unanimous), summary_every,
    # max_turns, max_rounds, stuck_turns, similarity_threshold, max_minutes.
    settings: dict[str, Any] = Field(default_factory=dict)


class StartDiscussionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The discussion's own budget (US dollars), within the workspace's.
    budget_usd: Annotated[Decimal, Field(gt=0, le=10_000)] | None = None


class StartedDiscussionResponse(BaseModel):
    run_id: str
    conversation_id: str


class UpdateConversationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    status: ConversationStatus | None = None
    shared: bool | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> Self:
        if self.title is None and self.status is None and self.shared is None:
            raise ValueError("give title, status or shared")
        return self


class PostMessageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: Text


class ConversationResponse(BaseModel):
    id: str
    title: str
    mode: str
    status: str
    goal: str | None
    shared: bool
    agents: list[str]
    settings: dict[str, Any]
    final_summary: str | None
    # A discussion's result: reason, consensus, proposal, tallies, dissent, turns, rounds.
    result: dict[str, Any] | None
    run_id: str | None
    created_by: str | None
    message_count: int
    last_message_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, c: "Conversation") -> Self:
        return cls(
            id=str(c.id),
            title=c.title,
            mode=c.mode.value,
            status=c.status.value,
            goal=c.goal,
            shared=c.shared,
            agents=list(c.agents),
            settings=dict(c.settings),
            final_summary=c.final_summary,
            result=dict(c.result) if c.result is not None else None,
            run_id=str(c.run_id) if c.run_id else None,
            created_by=str(c.created_by) if c.created_by else None,
            message_count=c.message_count,
            last_message_at=c.last_message_at,
            created_at=c.created_at,
            updated_at=c.updated_at,
        )


class MessageResponse(BaseModel):
    id: str
    conversation_id: str
    seq: int
    sender_kind: str
    sender_id: str
    type: str
    content: str
    reply_to: str | None
    requires_user_response: bool
    routing: dict[str, Any] | None
    usage: dict[str, Any] | None
    metadata: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, m: "Message") -> Self:
        return cls(
            id=str(m.id),
            conversation_id=str(m.conversation_id),
            seq=m.seq,
            sender_kind=m.sender_kind.value,
            sender_id=m.sender_id,
            type=m.type.value,
            content=m.content,
            reply_to=str(m.reply_to) if m.reply_to else None,
            requires_user_response=m.requires_user_response,
            routing=dict(m.routing) if m.routing is not None else None,
            usage=dict(m.usage) if m.usage is not None else None,
            metadata=dict(m.metadata),
            created_at=m.created_at,
        )


class MessagesResponse(BaseModel):
    """A page of messages in order; pass `next_cursor` back as `after` for the next."""

    items: list[MessageResponse]
    next_cursor: str | None
