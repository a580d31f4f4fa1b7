"""`PostgresConversationRepository`: conversations, messages and conversation events, under
the caller's RLS (the engine writes agents' replies in system transactions)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from guildstack.adapters.postgres.database import Connection, returned_row
from guildstack.adapters.postgres.paging import fetch_page
from guildstack.domain.conversations import (
    Conversation,
    ConversationEvent,
    ConversationEventType,
    ConversationMode,
    ConversationStatus,
    Message,
    MessageType,
    NewMessage,
    SenderKind,
)
from guildstack.domain.errors import Forbidden, NotFound
from guildstack.domain.paging import Page, PageRequest
from guildstack.domain.runs import Event

_NOT_FOUND = "No such conversation in this workspace."
_COLUMNS = (
    "c.id, c.workspace_id, c.created_by, c.title, c.goal, c.mode, c.status, c.shared,"
    " c.agents, c.settings, c.final_summary, c.run_id, c.created_at, c.updated_at,"
    " k.last_message_seq, k.last_message_at"
)
_FROM = (
    " from public.conversations c"
    " left join public.conversation_counters k on k.conversation_id = c.id"
)
_MESSAGE_COLUMNS = (
    "id, conversation_id, seq, sender_kind, sender_id, type, content, reply_to,"
    " requires_user_response, routing, usage, metadata, created_at"
)

_INSERT_MESSAGE = f"""
    insert into public.messages (workspace_id, conversation_id, seq, sender_kind, sender_id,
        type, content, reply_to, requires_user_response, routing, usage, metadata)
    values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
    returning {_MESSAGE_COLUMNS}
"""  # noqa: S608 - constant column list


class PostgresConversationRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def create(self, conversation: Conversation) -> Conversation:
        c = conversation
        await self._conn.execute(
            "insert into public.conversations (id, workspace_id, created_by, title, goal, mode,"
            " status, shared, agents, settings, created_at, updated_at)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (c.id, c.workspace_id, c.created_by, c.title, c.goal, c.mode, c.status, c.shared,
             list(c.agents), json.dumps(dict(c.settings)), c.created_at, c.updated_at),
        )  # fmt: skip
        await self._conn.execute(
            "insert into public.conversation_counters (conversation_id, workspace_id)"
            " values (%s, %s)",
            (c.id, c.workspace_id),
        )
        return await self.get(c.workspace_id, c.id)

    async def get(self, workspace_id: UUID, conversation_id: UUID) -> Conversation:
        cur = await self._conn.execute(
            f"select {_COLUMNS}{_FROM} where c.id = %s and c.workspace_id = %s",  # noqa: S608
            (conversation_id, workspace_id),
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFound(_NOT_FOUND)
        return _conversation(row)

    async def list_conversations(
        self,
        workspace_id: UUID,
        page: PageRequest,
        *,
        status: ConversationStatus | None = None,
        mode: ConversationMode | None = None,
        text: str | None = None,
    ) -> Page[Conversation]:
        return await fetch_page(
            self._conn,
            f"select {_COLUMNS}{_FROM} where c.workspace_id = %(ws)s"  # noqa: S608
            " and (%(status)s::text is null or c.status = %(status)s)"
            " and (%(mode)s::text is null or c.mode = %(mode)s)"
            " and (%(text)s::text is null or exists ("
            "     select 1 from public.messages m where m.conversation_id = c.id"
            "     and m.content_tsv @@ websearch_to_tsquery('english', %(text)s)))",
            {"ws": workspace_id, "status": status, "mode": mode, "text": text},
            page,
            _conversation,
            lambda c: (c.created_at, c.id),
            key=("c.created_at", "c.id"),
        )

    async def save(self, conversation: Conversation) -> Conversation:
        c = conversation
        cur = await self._conn.execute(
            "update public.conversations set title = %s, status = %s, shared = %s,"
            " settings = %s, final_summary = %s, run_id = %s, updated_at = now()"
            " where id = %s and workspace_id = %s",
            (c.title, c.status, c.shared, json.dumps(dict(c.settings)), c.final_summary,
             c.run_id, c.id, c.workspace_id),
        )  # fmt: skip
        if cur.rowcount != 1:
            raise Forbidden("Only its creator (or an admin, if it is shared) may change it.")
        return await self.get(c.workspace_id, c.id)

    async def delete(self, workspace_id: UUID, conversation_id: UUID) -> bool:
        cur = await self._conn.execute(
            "delete from public.conversations where id = %s and workspace_id = %s",
            (conversation_id, workspace_id),
        )
        return bool(cur.rowcount == 1)

    async def append(
        self,
        workspace_id: UUID,
        conversation_id: UUID,
        messages: Sequence[NewMessage] = (),
        events: Sequence[ConversationEvent] = (),
    ) -> list[Message]:
        cur = await self._conn.execute(
            "update public.conversation_counters set"
            " last_message_seq = last_message_seq + %s, last_event_seq = last_event_seq + %s,"
            " last_message_at = case when %s > 0 then now() else last_message_at end"
            " where conversation_id = %s and workspace_id = %s"
            " returning last_message_seq - %s as message_base, last_event_seq - %s as event_base",
            (len(messages), len(events), len(messages), conversation_id, workspace_id,
             len(messages), len(events)),
        )  # fmt: skip
        counter = await cur.fetchone()
        if counter is None:
            raise NotFound(_NOT_FOUND)
        stored = [
            await self._insert(workspace_id, conversation_id, counter["message_base"] + i, m)
            for i, m in enumerate(messages, 1)
        ]
        by_order = iter(stored)
        for i, event in enumerate(events, 1):
            payload = dict(event.payload)
            if event.type is ConversationEventType.MESSAGE_NEW and "message_id" not in payload:
                message = next(by_order, None)
                if message is not None:
                    payload |= {"message_id": str(message.id), "seq": message.seq}
            await self._conn.execute(
                "insert into public.conversation_events"
                " (workspace_id, conversation_id, seq, type, payload) values (%s, %s, %s, %s, %s)",
                (workspace_id, conversation_id, counter["event_base"] + i, event.type,
                 json.dumps(payload, default=str)),
            )  # fmt: skip
        return stored

    async def _insert(
        self, workspace_id: UUID, conversation_id: UUID, seq: int, m: NewMessage
    ) -> Message:
        cur = await self._conn.execute(
            _INSERT_MESSAGE,
            (workspace_id, conversation_id, seq, m.sender_kind, m.sender_id, m.type, m.content,
             m.reply_to, m.requires_user_response, _json(m.routing), _json(m.usage),
             json.dumps(dict(m.metadata), default=str)),
        )  # fmt: skip
        return _message(await returned_row(cur))

    async def messages(
        self, workspace_id: UUID, conversation_id: UUID, after: int, limit: int
    ) -> list[Message]:
        return await self._messages(
            workspace_id, conversation_id, "m.seq > %s", (after,), "m.seq", limit
        )

    async def recent(self, workspace_id: UUID, conversation_id: UUID, limit: int) -> list[Message]:
        newest = await self._messages(
            workspace_id, conversation_id, "true", (), "m.seq desc", limit
        )
        return newest[::-1]

    async def pending(self, workspace_id: UUID, conversation_id: UUID) -> list[Message]:
        return await self._messages(
            workspace_id,
            conversation_id,
            "m.requires_user_response and not exists (select 1 from public.messages a"
            " where a.conversation_id = m.conversation_id and a.reply_to = m.id"
            " and a.type = %s)",
            (MessageType.USER_RESPONSE,),
            "m.seq",
            1000,
        )

    async def _messages(
        self,
        workspace_id: UUID,
        conversation_id: UUID,
        condition: str,
        params: tuple[Any, ...],
        order: str,
        limit: int,
    ) -> list[Message]:
        """Messages of a visible conversation (`NotFound` otherwise, even with none)."""
        columns = ", ".join(f"m.{c.strip()}" for c in _MESSAGE_COLUMNS.split(","))
        cur = await self._conn.execute(
            f"select c.id as visible, {columns} from public.conversations c"  # noqa: S608
            f" left join public.messages m on m.conversation_id = c.id and {condition}"
            f" where c.id = %s and c.workspace_id = %s order by {order} limit %s",
            (*params, conversation_id, workspace_id, limit),
        )
        rows = await cur.fetchall()
        if not rows:
            raise NotFound(_NOT_FOUND)
        return [_message(r) for r in rows if r["id"] is not None]

    async def events(
        self, workspace_id: UUID, conversation_id: UUID, after: int, limit: int
    ) -> list[Event]:
        cur = await self._conn.execute(
            "select e.seq, e.type, e.payload, e.created_at from public.conversations c"
            " left join public.conversation_events e"
            "   on e.conversation_id = c.id and e.seq > %s"
            " where c.id = %s and c.workspace_id = %s order by e.seq limit %s",
            (after, conversation_id, workspace_id, limit),
        )
        rows = await cur.fetchall()
        if not rows:
            raise NotFound(_NOT_FOUND)
        return [
            Event(r["seq"], r["type"], r["payload"], r["created_at"])
            for r in rows
            if r["seq"] is not None
        ]

    async def count_user_messages(
        self, workspace_id: UUID, user_id: UUID, since: datetime, *, images: bool = False
    ) -> int:
        cur = await self._conn.execute(
            "select count(*) as n from public.messages where workspace_id = %s"
            " and sender_kind = %s and sender_id = %s and created_at >= %s"
            " and (not %s or metadata @> '{\"image_prompt\": true}')",
            (workspace_id, SenderKind.USER, str(user_id), since, images),
        )
        return int((await returned_row(cur))["n"])


def _json(value: Any) -> str | None:
    return json.dumps(dict(value), default=str) if value is not None else None


def _conversation(row: dict[str, Any]) -> Conversation:
    return Conversation(
        id=row["id"],
        workspace_id=row["workspace_id"],
        created_by=row["created_by"],
        title=row["title"],
        mode=ConversationMode(row["mode"]),
        status=ConversationStatus(row["status"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        goal=row["goal"],
        shared=row["shared"],
        agents=tuple(row["agents"]),
        settings=row["settings"],
        final_summary=row["final_summary"],
        run_id=row["run_id"],
        message_count=row["last_message_seq"] or 0,
        last_message_at=row["last_message_at"],
    )


def _message(row: dict[str, Any]) -> Message:
    return Message(
        id=row["id"],
        conversation_id=row["conversation_id"],
        seq=row["seq"],
        sender_kind=SenderKind(row["sender_kind"]),
        sender_id=row["sender_id"],
        type=MessageType(row["type"]),
        content=row["content"],
        created_at=row["created_at"],
        reply_to=row["reply_to"],
        requires_user_response=row["requires_user_response"],
        routing=row["routing"],
        usage=row["usage"],
        metadata=row["metadata"],
    )
