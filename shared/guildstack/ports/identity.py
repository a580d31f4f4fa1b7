"""The identity provider (Supabase Auth in production, the devstack's stand-in locally)."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from guildstack.domain.identity import Principal, Session, SignedIn


class IdentityProvider(Protocol):
    async def sign_up(self, email: str, password: str, full_name: str | None) -> SignedIn:
        """Create an account; raises Conflict if the email is taken, InvalidInput if weak."""
        ...

    async def sign_in(self, email: str, password: str) -> SignedIn:
        """Password grant; raises Unauthorized on wrong credentials."""
        ...

    async def refresh(self, refresh_token: str) -> Session:
        """Rotate a refresh token into a new session; raises Unauthorized if it is dead."""
        ...

    async def sign_out(self, access_token: str) -> None:
        """End the session the access token belongs to: its refresh tokens stop working."""
        ...


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> Principal:
        """Verify an access token; raises Unauthorized for anything not fully valid."""
        ...


class AccountDirectory(Protocol):
    async def active(self, user_id: UUID, session_id: UUID | None) -> bool:
        """Whether the user still exists (not deleted, not banned) and, when `session_id` is
        given, that session is still open."""
        ...
