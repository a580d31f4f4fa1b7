"""Conversations and their messages: chats with the assistant and its specialists, and team
discussions; their lifecycle, limits and exports. No I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from guildstack.domain.errors import Conflict, InvalidInput
from guildstack.domain.identity import AccountKind, Role
from guildstack.domain.time import rfc3339
from guildstack.domain.vocabulary import (
    ConversationEventType,
    ConversationMode,
    ConversationStatus,
    MessageType,
    SenderKind,
)

__all__ = [
    "STATUS_TRANSITIONS",
    "Conversation",
    "ConversationEvent",
    "ConversationEventType",
    "ConversationMode",
    "ConversationStatus",
    "Message",
    "MessageType",
    "NewMessage",
    "SenderKind",
    "check_content",
    "export_json",
    "export_markdown",
    "moved_to",
    "status_changed",
]

MAX_MESSAGE_CHARS = 20_000
MAX_GOAL_CHARS = 4_000
MAX_CONVERSATION_TITLE_CHARS = 200
MAX_CONVERSATION_AGENTS = 12


STATUS_TRANSITIONS: dict[ConversationStatus, frozenset[ConversationStatus]] = {
    ConversationStatus.ACTIVE: frozenset({ConversationStatus.PAUSED, ConversationStatus.COMPLETED}),
    ConversationStatus.PAUSED: frozenset({ConversationStatus.ACTIVE, ConversationStatus.COMPLETED}),
    ConversationStatus.COMPLETED: frozenset(),
}


@dataclass(frozen=True)
class Standing:
    """Where a member stands before sending a chat message: their role and account kind,
    what they sent today and (image prompts) this week, and the workspace's budget left
    this month (None: no budget)."""

    role: Role
    account_kind: AccountKind
    sent_today: int
    images_this_week: int
    budget_left: Decimal | None = None


@dataclass(frozen=True)
class ConversationEvent:
    type: ConversationEventType
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class Conversation:
    id: UUID
    workspace_id: UUID
    created_by: UUID | None
    title: str
    mode: ConversationMode
    status: ConversationStatus
    created_at: datetime
    updated_at: datetime
    goal: str | None = None
    shared: bool = False
    agents: tuple[str, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    final_summary: str | None = None
    run_id: UUID | None = None
    # A discussion's result: why it ended, the proposal chosen, every tally, the dissent.
    result: Mapping[str, Any] | None = None
    message_count: int = 0
    last_message_at: datetime | None = None


@dataclass(frozen=True)
class NewMessage:
    """A message to add to a conversation (numbered by the store)."""

    sender_kind: SenderKind
    sender_id: str
    type: MessageType
    content: str
    reply_to: UUID | None = None
    requires_user_response: bool = False
    routing: Mapping[str, Any] | None = None
    usage: Mapping[str, Any] | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def announced(self) -> ConversationEvent:
        """The `message.new` event that announces it (the store adds its id and number)."""
        return ConversationEvent(
            ConversationEventType.MESSAGE_NEW,
            {
                "sender_kind": self.sender_kind.value,
                "sender_id": self.sender_id,
                "type": self.type.value,
                "content": self.content,
                "reply_to": str(self.reply_to) if self.reply_to else None,
                "requires_user_response": self.requires_user_response,
            },
        )


@dataclass(frozen=True)
class Message:
    id: UUID
    conversation_id: UUID
    seq: int
    sender_kind: SenderKind
    sender_id: str
    type: MessageType
    content: str
    created_at: datetime
    reply_to: UUID | None = None
    requires_user_response: bool = False
    routing: Mapping[str, Any] | None = None
    usage: Mapping[str, Any] | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


def status_changed(before: ConversationStatus, after: ConversationStatus) -> ConversationEvent:
    """The `status.changed` event of a conversation's move."""
    return ConversationEvent(
        ConversationEventType.STATUS_CHANGED, {"from": before.value, "to": after.value}
    )


def moved_to(conversation: Conversation, target: ConversationStatus) -> ConversationStatus:
    """`target`, if the lifecycle allows it from the conversation's status (409 otherwise)."""
    current = conversation.status
    if target is not current and target not in STATUS_TRANSITIONS[current]:
        raise Conflict(f"A {current.value} conversation cannot become {target.value}.")
    return target


def check_content(content: str, field_name: str = "content") -> str:
    """The message text, trimmed; 422 for empty, oversize or NUL-carrying text."""
    text = content.strip()

    def invalid(message: str, kind: str) -> InvalidInput:
        return InvalidInput(message, [{"loc": ["body", field_name], "msg": message, "type": kind}])

    if not text:
        raise invalid(f"{field_name} is empty", "empty")
    if "\x00" in text:
        raise invalid(f"{field_name} contains a NUL character", "nul_character")
    if len(text) > MAX_MESSAGE_CHARS:
        raise invalid(f"{field_name} is over {MAX_MESSAGE_CHARS} characters", "too_long")
    return text


def export_json(conversation: Conversation, messages: Sequence[Message]) -> str:
    """The conversation and every message, as one JSON document."""
    return json.dumps(
        {
            "conversation": {
                "id": str(conversation.id),
                "title": conversation.title,
                "mode": conversation.mode.value,
                "status": conversation.status.value,
                "goal": conversation.goal,
                "agents": list(conversation.agents),
                "final_summary": conversation.final_summary,
                "result": conversation.result,
                "created_at": rfc3339(conversation.created_at),
            },
            "messages": [
                {
                    "id": str(m.id),
                    "seq": m.seq,
                    "sender_kind": m.sender_kind.value,
                    "sender_id": m.sender_id,
                    "type": m.type.value,
                    "content": m.content,
                    "reply_to": str(m.reply_to) if m.reply_to else None,
                    "requires_user_response": m.requires_user_response,
                    "routing": m.routing,
                    "usage": m.usage,
                    "metadata": dict(m.metadata),
                    "created_at": rfc3339(m.created_at),
                }
                for m in messages
            ],
        },
        ensure_ascii=False,
        default=str,
    )


def export_markdown(conversation: Conversation, messages: Sequence[Message]) -> str:
    """A readable transcript: a heading, the goal, each message under its sender."""
    lines = [f"# {conversation.title}", ""]
    if conversation.goal:
        lines += [f"**Goal:** {conversation.goal}", ""]
    lines += [f"*{conversation.mode.value}, {conversation.status.value}*", ""]
    for m in messages:
        who = "You" if m.sender_kind is SenderKind.USER else m.sender_id
        kind = "" if m.type in (MessageType.CHAT, MessageType.DISCUSSION) else f" ({m.type.value})"
        lines += [f"## {who}{kind} · {rfc3339(m.created_at)}", "", m.content.strip(), ""]
    if conversation.final_summary:
        lines += ["## Final summary", "", conversation.final_summary.strip(), ""]
    lines += _result_lines(conversation.result)
    return "\n".join(lines)


def _result_lines(result: Mapping[str, Any] | None) -> list[str]:
    if not result:
        return []
    lines = ["## Result", "", f"- Ended: {result.get('reason') or 'unknown'}"]
    proposal = result.get("proposal")
    if proposal:
        lines.append(f"- Proposal {proposal.get('number')}: {proposal.get('title')}")
    for t in result.get("tallies", []):
        votes = ", ".join(f"{who} {vote}" for who, vote in t.get("votes", {}).items())
        verdict = "accepted" if t.get("accepted") else "rejected"
        lines.append(f"- Proposal {t.get('proposal')} {verdict}: {votes}")
    if result.get("dissent"):
        lines.append(f"- Dissent: {', '.join(result['dissent'])}")
    return [*lines, ""]
