"""Who may open an event stream without headers: tickets, issued to a caller who can read
the stream, for that stream alone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from guildstack.domain.errors import DependencyUnavailable, Unauthorized
from guildstack.ports.tickets import StreamGrant, StreamTickets

if TYPE_CHECKING:
    from guildstack.domain.principal import Principal
    from guildstack.services.conversations import ConversationService
    from guildstack.services.runs import RunService


@dataclass(frozen=True)
class Ticket:
    ticket: str
    expires_at: datetime
    stream: str  # the stream's path, to which `?ticket=` is added


class StreamAccess:
    def __init__(
        self,
        runs: RunService,
        conversations: ConversationService,
        tickets: StreamTickets | None,
        *,
        ttl_seconds: int,
    ) -> None:
        self._runs = runs
        self._conversations = conversations
        self._tickets = tickets
        self._ttl = ttl_seconds

    async def run_ticket(self, actor: Principal, workspace_id: UUID, run_id: UUID) -> Ticket:
        """A ticket for the run's stream (404 when the caller cannot read the run)."""
        await self._runs.get(actor, workspace_id, run_id)
        return await self._issue(actor, workspace_id, "run", run_id)

    async def conversation_ticket(
        self, actor: Principal, workspace_id: UUID, conversation_id: UUID
    ) -> Ticket:
        """A ticket for the conversation's stream (404 when the caller cannot read it)."""
        await self._conversations.get(actor, workspace_id, conversation_id)
        return await self._issue(actor, workspace_id, "conversation", conversation_id)

    async def redeem(self, ticket: str, kind: str, subject_id: UUID) -> StreamGrant:
        """The grant of a live ticket for this very stream; 401 otherwise. Reading the
        stream checks the caller's access again, as with a token."""
        grant = await self._store().redeem(ticket)
        if grant is None or grant.subject != f"{kind}:{subject_id}":
            raise Unauthorized("The stream ticket is unknown, expired, or for another stream.")
        return grant

    async def _issue(
        self, actor: Principal, workspace_id: UUID, kind: str, subject_id: UUID
    ) -> Ticket:
        grant = StreamGrant.of(actor, workspace_id, f"{kind}:{subject_id}")
        expires_at = datetime.now(UTC) + timedelta(seconds=self._ttl)
        ticket = await self._store().issue(grant, self._ttl)
        return Ticket(ticket, expires_at, f"/{kind}s/{subject_id}/stream")

    def _store(self) -> StreamTickets:
        if self._tickets is None:
            raise DependencyUnavailable("Stream tickets need Redis (UPSTASH_REDIS_REST_URL).")
        return self._tickets
