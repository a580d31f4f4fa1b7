"""Conversations: start, list (with full-text search), read, rename, pause and resume, share,
delete, read messages and pending questions, export, and the event log their streams read.

A conversation is its creator's unless shared with the workspace. Analysts and up chat;
the creator changes their own conversation, an admin may change or delete a shared one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from uuid import UUID

from guildstack.domain.authorization import Action, authorize
from guildstack.domain.conversations import (
    MAX_CONVERSATION_AGENTS,
    MAX_CONVERSATION_TITLE_CHARS,
    MAX_GOAL_CHARS,
    Conversation,
    ConversationEvent,
    ConversationMode,
    ConversationStatus,
    Message,
    MessageType,
    NewMessage,
    SenderKind,
    check_content,
    export_json,
    export_markdown,
    moved_to,
    status_changed,
)
from guildstack.domain.discussions import DiscussionSettings
from guildstack.domain.errors import Conflict, InvalidInput
from guildstack.domain.identity import Principal
from guildstack.domain.limits import MAX_WAIT_SECONDS
from guildstack.domain.paging import Page, PageRequest
from guildstack.domain.vocabulary import AgentStatus, Guild
from guildstack.ports.event_feed import EventFeed, conversation_log
from guildstack.ports.uow import Tx, UnitOfWork
from guildstack.services.access import authorized
from guildstack.services.agents import AgentRegistry
from guildstack.services.event_cursor import FEED_RECHECK_SECONDS, EventCursor, Following
from guildstack.services.polling import Poller, Sleep
from guildstack.services.runs import EventPage

if TYPE_CHECKING:
    from guildstack.services.discussions import DiscussionService

UNAVAILABLE = frozenset({AgentStatus.PAUSED, AgentStatus.TERMINATED})


def _invalid(field: str, message: str, kind: str = "value_error") -> InvalidInput:
    return InvalidInput(message, [{"loc": ["body", field], "msg": message, "type": kind}])


class ConversationService:
    def __init__(
        self,
        uow: UnitOfWork,
        agents: AgentRegistry,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        poll_seconds: tuple[float, float] = (0.05, 0.5),
        feed: EventFeed | None = None,
        feed_recheck_seconds: float = FEED_RECHECK_SECONDS,
        discussions: DiscussionService | None = None,
    ) -> None:
        self._uow = uow
        self._agents = agents
        self._discussions = discussions
        self._poller = Poller(sleep, clock, *poll_seconds)
        self._following = Following(uow, feed, self._poller, feed_recheck_seconds)

    async def create(
        self,
        actor: Principal,
        workspace_id: UUID,
        *,
        mode: ConversationMode = ConversationMode.CHAT,
        title: str | None = None,
        goal: str | None = None,
        agents: Sequence[str] = (),
        shared: bool = False,
        settings: dict[str, Any] | None = None,
    ) -> Conversation:
        """A chat, or a discussion of `goal` (by default among the discussion team)."""
        goal = goal.strip() if goal else None
        if mode is ConversationMode.DISCUSSION and not goal:
            raise _invalid("goal", "a discussion needs a goal", "missing")
        if goal and len(goal) > MAX_GOAL_CHARS:
            raise _invalid("goal", f"goal is over {MAX_GOAL_CHARS} characters", "too_long")
        if len(set(agents)) > MAX_CONVERSATION_AGENTS:
            raise _invalid("agents", f"at most {MAX_CONVERSATION_AGENTS} agents", "too_many")
        if mode is ConversationMode.DISCUSSION:
            settings = DiscussionSettings.of(settings).as_json()
        elif settings:
            raise _invalid("settings", "a chat takes no settings", "unexpected")
        title = (title or "").strip() or _default_title(mode, goal)
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.CHAT)
            chosen = await self._agents_for(tx, workspace_id, mode, agents)
            conversation = Conversation(
                id=uuid.uuid4(),
                workspace_id=workspace_id,
                created_by=actor.user_id,
                title=title[:MAX_CONVERSATION_TITLE_CHARS],
                mode=mode,
                status=ConversationStatus.ACTIVE,
                created_at=tx.now,
                updated_at=tx.now,
                goal=goal,
                shared=shared,
                agents=chosen,
                settings=settings or {},
            )
            return await tx.conversations.create(conversation)

    async def _agents_for(
        self, tx: Tx, workspace_id: UUID, mode: ConversationMode, wanted: Sequence[str]
    ) -> tuple[str, ...]:
        """The agents named (each must be the workspace's and available), else the mode's
        default: the discussion team for discussions, none (the router picks) for chats."""
        available = {
            a.code: a
            for a in await self._agents.all_in(tx, workspace_id)
            if a.status not in UNAVAILABLE
        }
        if wanted:
            unknown = [code for code in dict.fromkeys(wanted) if code not in available]
            if unknown:
                raise InvalidInput(
                    f"Unknown or unavailable agents: {', '.join(unknown)}.",
                    [
                        {"loc": ["body", "agents", i], "msg": f"unknown agent {code!r}",
                         "type": "unknown_agent"}
                        for i, code in enumerate(wanted) if code in unknown
                    ],
                )  # fmt: skip
            return tuple(dict.fromkeys(wanted))
        if mode is ConversationMode.DISCUSSION:
            return tuple(c for c, a in available.items() if a.spec.guild == Guild.DISCUSSION)
        return ()

    async def list_conversations(
        self,
        actor: Principal,
        workspace_id: UUID,
        page: PageRequest,
        *,
        status: ConversationStatus | None = None,
        mode: ConversationMode | None = None,
        q: str | None = None,
    ) -> Page[Conversation]:
        text = q.strip() if q else None
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
            return await tx.conversations.list_conversations(
                workspace_id, page, status=status, mode=mode, text=text or None
            )

    async def get(
        self, actor: Principal, workspace_id: UUID, conversation_id: UUID
    ) -> Conversation:
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
            return await tx.conversations.get(workspace_id, conversation_id)

    async def update(
        self,
        actor: Principal,
        workspace_id: UUID,
        conversation_id: UUID,
        *,
        title: str | None = None,
        status: ConversationStatus | None = None,
        shared: bool | None = None,
    ) -> Conversation:
        """Rename, pause or resume (409 for a move the lifecycle forbids), share."""
        async with self._uow(actor) as tx:
            conversation = await changeable(tx, actor, workspace_id, conversation_id)
            changed = conversation
            if title is not None:
                if not title.strip():
                    raise _invalid("title", "title is empty", "empty")
                changed = replace(changed, title=title.strip()[:MAX_CONVERSATION_TITLE_CHARS])
            if shared is not None:
                changed = replace(changed, shared=shared)
            events: list[ConversationEvent] = []
            if status is not None and status is not conversation.status:
                changed = replace(changed, status=moved_to(conversation, status))
                events.append(status_changed(conversation.status, status))
            saved = await tx.conversations.save(changed)
            if events:
                await tx.conversations.append(workspace_id, conversation_id, events=events)
            return saved

    async def delete(self, actor: Principal, workspace_id: UUID, conversation_id: UUID) -> None:
        """The conversation, its messages and its events."""
        async with self._uow(actor) as tx:
            await changeable(tx, actor, workspace_id, conversation_id)
            await tx.conversations.delete(workspace_id, conversation_id)

    async def post(
        self, actor: Principal, workspace_id: UUID, conversation_id: UUID, content: str
    ) -> Message:
        """The user's message, stored and announced (`message.new`). A message to a
        discussion waiting on a question answers that question, and the discussion goes on."""
        text = check_content(content)
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.CHAT)
            conversation = await tx.conversations.get(workspace_id, conversation_id)
            if conversation.status is ConversationStatus.COMPLETED:
                raise Conflict("The conversation is completed.")
            pending = await tx.conversations.pending(workspace_id, conversation_id)
            question = pending[0] if pending else None
            answers_run = (
                question is not None
                and conversation.run_id is not None
                and self._discussions is not None
            )
            if not answers_run:
                return await self._store(tx, conversation, actor, text, question)
        assert self._discussions is not None and question is not None  # noqa: S101
        return await self._discussions.answer(actor, conversation, question, text)

    async def _store(
        self,
        tx: Tx,
        conversation: Conversation,
        actor: Principal,
        text: str,
        question: Message | None,
    ) -> Message:
        workspace_id, conversation_id = conversation.workspace_id, conversation.id
        message = NewMessage(
            SenderKind.USER,
            str(actor.user_id),
            MessageType.USER_RESPONSE if question else MessageType.CHAT,
            text,
            reply_to=question.id if question else None,
        )
        (stored,) = await tx.conversations.append(
            workspace_id, conversation_id, [message], [message.announced()]
        )
        return stored

    async def messages(
        self,
        actor: Principal,
        workspace_id: UUID,
        conversation_id: UUID,
        *,
        after: int = 0,
        limit: int = 100,
    ) -> list[Message]:
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
            return await tx.conversations.messages(workspace_id, conversation_id, after, limit)

    async def pending(
        self, actor: Principal, workspace_id: UUID, conversation_id: UUID
    ) -> list[Message]:
        """Questions agents asked the user that no answer has settled yet."""
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
            return await tx.conversations.pending(workspace_id, conversation_id)

    async def export(
        self, actor: Principal, workspace_id: UUID, conversation_id: UUID, format_: str
    ) -> tuple[str, str]:
        """(media type, body) of the whole conversation as JSON or Markdown."""
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
            conversation = await tx.conversations.get(workspace_id, conversation_id)
            messages = await tx.conversations.messages(
                workspace_id, conversation_id, 0, conversation.message_count or 1
            )
        if format_ == "markdown":
            return "text/markdown; charset=utf-8", export_markdown(conversation, messages)
        return "application/json", export_json(conversation, messages)

    async def events(
        self,
        actor: Principal,
        workspace_id: UUID,
        conversation_id: UUID,
        *,
        after: int = 0,
        wait_seconds: float = 0,
        limit: int = 200,
    ) -> EventPage:
        """Events after `after`; with a wait, held until one arrives (at most 25 s)."""
        cursor = self.follow(actor, workspace_id, conversation_id, after=after, limit=limit)
        items = await cursor.next(min(wait_seconds, MAX_WAIT_SECONDS))
        return EventPage(items, cursor.after)

    def follow(
        self,
        actor: Principal,
        workspace_id: UUID,
        conversation_id: UUID,
        *,
        after: int = 0,
        limit: int = 200,
    ) -> EventCursor:
        """A cursor on the events after `after`, for a reader that keeps reading (a
        stream): it reads Postgres to resume and at least every few seconds (checking
        access each time), and otherwise waits on the hot feed."""

        return self._following.cursor(
            actor,
            workspace_id,
            conversation_log(conversation_id),
            lambda tx, since: tx.conversations.events(workspace_id, conversation_id, since, limit),
            after=after,
            limit=limit,
        )


async def changeable(
    tx: Tx, actor: Principal, workspace_id: UUID, conversation_id: UUID
) -> Conversation:
    """The conversation, when the actor may change it: its creator (an analyst or up), or
    an admin for a shared one."""
    role = await authorized(tx, workspace_id, Action.VIEW)
    conversation = await tx.conversations.get(workspace_id, conversation_id)
    own = conversation.created_by == actor.user_id
    authorize(role, Action.CHAT if own else Action.MODERATE_CONVERSATIONS)
    return conversation


def _default_title(mode: ConversationMode, goal: str | None) -> str:
    if goal:
        return goal if len(goal) <= 80 else goal[:77].rstrip() + "…"
    return "New discussion" if mode is ConversationMode.DISCUSSION else "New conversation"
