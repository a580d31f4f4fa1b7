"""Stream tickets in Redis: a random token, stored under its hash with a time to live."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from typing import TYPE_CHECKING
from uuid import UUID

from guildstack.ports.tickets import StreamGrant

if TYPE_CHECKING:
    from guildstack.adapters.upstash import UpstashClientFactory

# secrets.token_urlsafe(32): 43 characters of the URL-safe alphabet.
_TICKET = re.compile(r"^[A-Za-z0-9_-]{43}$")


class UpstashStreamTickets:
    """Only the ticket's hash is a key: what Redis holds cannot be replayed as a ticket."""

    def __init__(self, redis: UpstashClientFactory, *, prefix: str = "gs:ticket") -> None:
        self._redis = redis
        self._prefix = prefix

    def _key(self, ticket: str) -> str:
        return f"{self._prefix}:{hashlib.sha256(ticket.encode()).hexdigest()}"

    async def issue(self, grant: StreamGrant, ttl_seconds: int) -> str:
        ticket = secrets.token_urlsafe(32)
        value = {
            "subject": grant.subject,
            "workspace_id": str(grant.workspace_id),
            "user_id": str(grant.user_id),
            "email": grant.email,
            "claims": grant.claims,
            "session_id": grant.session_id,
        }
        await self._redis.client().set(self._key(ticket), json.dumps(value), ex=ttl_seconds)
        return ticket

    async def redeem(self, ticket: str) -> StreamGrant | None:
        if not _TICKET.match(ticket):
            return None
        raw = await self._redis.client().get(self._key(ticket))
        if raw is None:
            return None
        value = json.loads(raw)
        return StreamGrant(
            subject=value["subject"],
            workspace_id=UUID(value["workspace_id"]),
            user_id=UUID(value["user_id"]),
            email=value["email"],
            claims=value["claims"],
            session_id=value["session_id"],
        )
