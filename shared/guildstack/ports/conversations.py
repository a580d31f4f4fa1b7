"""Conversations, their messages and their event log, bound to one unit of work (the
caller's RLS applies: a conversation is its creator's unless shared)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

from guildstack.domain.conversations import (
    Conversation,
    ConversationEvent,
    ConversationMode,
    ConversationStatus,
    Message,
    NewMessage,
    Standing,
)
from guildstack.domain.paging import Page, PageRequest
from guildstack.domain.runs import Event


class ConversationRepository(Protocol):
    async def create(self, conversation: Conversation) -> Conversation:
        """Store a new conversation (and its counters)."""
        ...

    async def get(self, workspace_id: UUID, conversation_id: UUID) -> Conversation:
        """`NotFound` unless the caller may see it."""
        ...

    async def list_conversations(
        self,
        workspace_id: UUID,
        page: PageRequest,
        *,
        status: ConversationStatus | None = None,
        mode: ConversationMode | None = None,
        text: str | None = None,
    ) -> Page[Conversation]:
        """Newest first; `text` keeps those with a message matching it (full text)."""
        ...

    async def save(self, conversation: Conversation) -> Conversation:
        """Write back title, status, sharing, settings, summary and run; `Forbidden` when
        the caller may see it but not change it."""
        ...

    async def delete(self, workspace_id: UUID, conversation_id: UUID) -> bool:
        """False when the caller may see it but not delete it."""
        ...

    async def append(
        self,
        workspace_id: UUID,
        conversation_id: UUID,
        messages: Sequence[NewMessage] = (),
        events: Sequence[ConversationEvent] = (),
    ) -> list[Message]:
        """Number and store messages, then events (each `message.new` event gets its
        message's id and seq merged into the payload), in order."""
        ...

    async def messages(
        self, workspace_id: UUID, conversation_id: UUID, after: int, limit: int
    ) -> list[Message]: ...

    async def recent(self, workspace_id: UUID, conversation_id: UUID, limit: int) -> list[Message]:
        """The last `limit` messages, oldest first."""
        ...

    async def pending(self, workspace_id: UUID, conversation_id: UUID) -> list[Message]:
        """Questions to the user that no user response answers yet."""
        ...

    async def events(
        self, workspace_id: UUID, conversation_id: UUID, after: int, limit: int
    ) -> list[Event]: ...

    async def delete_expired(self, limit: int) -> int:
        """Delete up to `limit` conversations older than their workspace keeps them (the
        system only); how many were deleted."""
        ...

    async def standing(
        self, workspace_id: UUID, day_start: datetime, week_start: datetime
    ) -> Standing | None:
        """The actor's standing in the workspace (None when not a member): one read."""
        ...
