"""Stream tickets: short-lived credentials for one event stream.

A browser's `EventSource` cannot send headers, so it cannot present an access token but in
the URL, where proxies and histories keep it. A ticket is what goes in the URL instead: it
opens one stream (one run's or one conversation's events, in one workspace), for the caller
who asked for it, for a minute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from guildstack.domain.principal import Principal


@dataclass(frozen=True)
class StreamGrant:
    """What a ticket opens, and for whom: `subject` is `run:<id>` or `conversation:<id>`."""

    subject: str
    workspace_id: UUID
    user_id: UUID
    email: str | None
    claims: dict[str, Any] = field(repr=False)
    session_id: str | None = None

    @classmethod
    def of(cls, principal: Principal, workspace_id: UUID, subject: str) -> StreamGrant:
        return cls(
            subject=subject,
            workspace_id=workspace_id,
            user_id=principal.user_id,
            email=principal.email,
            claims=dict(principal.claims),
            session_id=principal.session_id,
        )

    def principal(self) -> Principal:
        return Principal(self.user_id, self.email, dict(self.claims), self.session_id)


class StreamTickets(Protocol):
    async def issue(self, grant: StreamGrant, ttl_seconds: int) -> str:
        """A new ticket for `grant`, valid for `ttl_seconds`."""
        ...

    async def redeem(self, ticket: str) -> StreamGrant | None:
        """The grant a ticket carries, or None when it is unknown or expired."""
        ...
