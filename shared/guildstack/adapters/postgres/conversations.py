"""`PostgresConversationRepository`: conversations, messages and conversation events, under
the caller's RLS (the engine writes agents' replies in system transactions)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

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
    Standing,
)
from guildstack.domain.errors import Forbidden, NotFound
from guildstack.domain.identity import AccountKind, Role
from guildstack.domain.paging import Page, PageRequest
from guildstack.domain.runs import Event
from guildstack.ports.event_feed import conversation_log

_NOT_FOUND = "No such conversation in this workspace."
_COLUMNS = (
    "c.id, c.workspace_id, c.created_by, c.title, c.goal, c.mode, c.status, c.shared,"
    " c.agents, c.settings, c.final_summary, c.result, c.run_id, c.created_at, c.updated_at,"
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

# One statement for a change to a conversation: the counter row (locked until commit, so
# messages and events commit in number order) numbers the new messages and events.
_APPEND = f"""
    with counter as (
        update public.conversation_counters set
            last_message_seq = last_message_seq + %(n)s,
            last_event_seq = last_event_seq + %(e)s,
            last_message_at = case when %(n)s > 0 then now() else last_message_at end
        where conversation_id = %(c)s and workspace_id = %(ws)s
        returning last_message_seq - %(n)s as message_base, last_event_seq - %(e)s as event_base
    ),
    added as (
        insert into public.messages (id, workspace_id, conversation_id, seq, sender_kind,
            sender_id, type, content, reply_to, requires_user_response, routing, usage,
            metadata)
        select x.id, %(ws)s, %(c)s, counter.message_base + x.ord, x.sender_kind, x.sender_id,
            x.type, x.content, x.reply_to, x.requires_user_response, x.routing, x.usage,
            coalesce(x.metadata, '{{}}')
        from counter, jsonb_to_recordset(%(messages)s::jsonb) as x(
            id uuid, ord int, sender_kind text, sender_id text, type text, content text,
            reply_to uuid, requires_user_response boolean, routing jsonb, usage jsonb,
            metadata jsonb)
        returning {_MESSAGE_COLUMNS}
    ),
    logged as (
        insert into public.conversation_events (workspace_id, conversation_id, seq, type,
            payload)
        select %(ws)s, %(c)s, counter.event_base + y.ord, y.type,
            case when y.message_ord is null then y.payload
                 else y.payload || jsonb_build_object('seq', counter.message_base + y.message_ord)
            end
        from counter, jsonb_to_recordset(%(events)s::jsonb) as y(
            ord int, type text, payload jsonb, message_ord int)
    )
    select added.*, counter.event_base, now() as logged_at
    from counter left join added on true order by added.seq
"""  # noqa: S608 - constant column list


def _numbered(
    logged: list[dict[str, Any]], added: list[Message], numbers: Mapping[str, Any]
) -> list[Event]:
    """The events `_APPEND` logged as `events()` will read them: numbered after the
    counter's base, a `message.new` carrying the number of the message it announces."""
    base, at = numbers["event_base"], numbers["logged_at"]
    events = []
    for item in logged:
        payload = dict(item["payload"])
        if item["message_ord"] is not None:
            payload["seq"] = added[item["message_ord"] - 1].seq
        events.append(Event(base + item["ord"], item["type"], payload, at))
    return events


class PostgresConversationRepository:
    def __init__(
        self,
        conn: Connection,
        *,
        member: bool = False,
        logged: list[tuple[str, Callable[[], Awaitable[list[Event]]]]] | None = None,
    ) -> None:
        self._conn = conn
        # Where the events this transaction logs are announced for the feed (see the unit
        # of work), when it has one.
        self._logged = logged
        # A member changes a conversation's title, status and sharing; what the system
        # records (its run, summary, result and rules) is not theirs to write.
        self._member = member

    async def create(self, conversation: Conversation) -> Conversation:
        c = conversation
        # One round trip; two statements, as the counter's policy must see the conversation.
        async with self._conn.pipeline():
            await self._conn.execute(
                "insert into public.conversations (id, workspace_id, created_by, title, goal,"
                " mode, status, shared, agents, settings, created_at, updated_at)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (c.id, c.workspace_id, c.created_by, c.title, c.goal, c.mode, c.status,
                 c.shared, list(c.agents), json.dumps(dict(c.settings)), c.created_at,
                 c.updated_at),
            )  # fmt: skip
            await self._conn.execute(
                "insert into public.conversation_counters (conversation_id, workspace_id)"
                " values (%s, %s)",
                (c.id, c.workspace_id),
            )
        return c

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
        if self._member:
            cur = await self._conn.execute(
                "update public.conversations set title = %s, status = %s, shared = %s,"
                " updated_at = now() where id = %s and workspace_id = %s returning id",
                (c.title, c.status, c.shared, c.id, c.workspace_id),
            )
        else:
            cur = await self._conn.execute(
                "update public.conversations set title = %s, status = %s, shared = %s,"
                " settings = %s, final_summary = %s, result = %s, run_id = %s, updated_at = now()"
                " where id = %s and workspace_id = %s returning id",
                (c.title, c.status, c.shared, json.dumps(dict(c.settings)), c.final_summary,
                 _json(c.result), c.run_id, c.id, c.workspace_id),
            )  # fmt: skip
        if await cur.fetchone() is None:  # the row is not the actor's to change
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
        ids = [uuid4() for _ in messages]
        rows = [
            {
                "id": str(ids[i - 1]),
                "ord": i,
                "sender_kind": m.sender_kind.value,
                "sender_id": m.sender_id,
                "type": m.type.value,
                "content": m.content,
                "reply_to": str(m.reply_to) if m.reply_to else None,
                "requires_user_response": m.requires_user_response,
                "routing": dict(m.routing) if m.routing is not None else None,
                "usage": dict(m.usage) if m.usage is not None else None,
                "metadata": dict(m.metadata),
            }
            for i, m in enumerate(messages, 1)
        ]
        logged, announced = [], 0
        for i, event in enumerate(events, 1):
            payload, message_ord = dict(event.payload), None
            # A `message.new` event names the message it announces (in order).
            if event.type is ConversationEventType.MESSAGE_NEW and "message_id" not in payload:
                if announced < len(ids):
                    payload["message_id"] = str(ids[announced])
                    announced += 1
                    message_ord = announced
            logged.append(
                {"ord": i, "type": event.type.value, "payload": payload, "message_ord": message_ord}
            )
        cur = await self._conn.execute(
            _APPEND,
            {
                "ws": workspace_id,
                "c": conversation_id,
                "n": len(messages),
                "e": len(events),
                "messages": json.dumps(rows, default=str),
                "events": json.dumps(logged, default=str),
            },
        )
        found = await cur.fetchall()
        if not found:
            raise NotFound(_NOT_FOUND)
        added = [_message(r) for r in found if r["id"] is not None]
        if events and self._logged is not None:
            numbered = _numbered(logged, added, found[0])

            async def for_feed() -> list[Event]:
                return numbered

            self._logged.append((conversation_log(conversation_id), for_feed))
        return added

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

    async def delete_expired(self, limit: int) -> int:
        cur = await self._conn.execute(
            "with expired as (select c.id from public.conversations c"
            " join public.workspaces w on w.id = c.workspace_id"
            " where w.conversation_retention_days is not null"
            " and c.created_at < now() - make_interval(days => w.conversation_retention_days)"
            " order by c.created_at limit %s)"
            " , gone as (delete from public.conversations c using expired e"
            " where c.id = e.id returning 1)"
            " select count(*) as n from gone",
            (limit,),
        )
        return int((await returned_row(cur))["n"])

    async def standing(
        self, workspace_id: UUID, day_start: datetime, week_start: datetime
    ) -> Standing | None:
        cur = await self._conn.execute(
            "select * from public.chat_standing(%s, %s, %s)", (workspace_id, day_start, week_start)
        )
        row = await cur.fetchone()
        if row is None:
            return None
        return Standing(
            Role(row["role"]),
            AccountKind(row["account_kind"]),
            row["sent_today"],
            row["images_this_week"],
            row["budget_left"],
        )


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
        result=row["result"],
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
