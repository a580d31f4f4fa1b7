"""In-memory stand-ins for the identity ports (unit tests of services and routes only)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field

from guildstack.domain.errors import Conflict, Unauthorized
from guildstack.domain.identity import AuthUser, Principal, Session, SignedIn


@dataclass
class FakeIdentity:
    users: dict[str, tuple[uuid.UUID, str]] = field(default_factory=dict)
    refresh_tokens: dict[str, uuid.UUID] = field(default_factory=dict)
    signed_out: list[str] = field(default_factory=list)

    def _session(self, user_id: uuid.UUID) -> Session:
        token = secrets.token_urlsafe(16)
        self.refresh_tokens[token] = user_id
        return Session(access_token=f"access-{user_id}", refresh_token=token, expires_in=3600)

    async def sign_up(self, email: str, password: str, full_name: str | None) -> SignedIn:
        if email in self.users:
            raise Conflict("An account with this email already exists.")
        user_id = uuid.uuid4()
        self.users[email] = (user_id, password)
        return SignedIn(AuthUser(user_id, email), self._session(user_id))

    async def sign_in(self, email: str, password: str) -> SignedIn:
        known = self.users.get(email)
        if known is None or known[1] != password:
            raise Unauthorized("The credentials or token are not valid.")
        return SignedIn(AuthUser(known[0], email), self._session(known[0]))

    async def refresh(self, refresh_token: str) -> Session:
        user_id = self.refresh_tokens.pop(refresh_token, None)
        if user_id is None:
            raise Unauthorized("The refresh token is not valid.")
        return self._session(user_id)

    async def sign_out(self, access_token: str) -> None:
        self.signed_out.append(access_token)


@dataclass
class StaticTokenVerifier:
    """Accepts `access-<uuid>` tokens issued by FakeIdentity; anything else is 401."""

    emails: dict[uuid.UUID, str] = field(default_factory=dict)

    async def verify(self, token: str) -> Principal:
        if not token.startswith("access-"):
            raise Unauthorized("The access token is not valid.")
        try:
            user_id = uuid.UUID(token.removeprefix("access-"))
        except ValueError as exc:
            raise Unauthorized("The access token is not valid.") from exc
        claims = {"sub": str(user_id), "role": "authenticated"}
        return Principal(user_id=user_id, email=self.emails.get(user_id), claims=claims)
