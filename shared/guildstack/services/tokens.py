"""Tokens are only as good as their account: a verified token whose user was deleted or
banned (or, when asked, whose session has ended) is refused.

A JWT stays valid until it expires, whatever happens to its account meanwhile; asking the
database on every request would cost a round trip each. So positive answers are kept per
container for a short time: an account removed (or a session ended) is refused by every
container within `ttl_seconds`. Refusals are never kept (a user who signs up again, or a
transient error, must not stay locked out).

The token itself is verified (signature, claims) once per container too: a token that
passed every check is remembered (by its SHA-256) for the same time, never past its `exp`,
so a repeated token costs a dictionary look-up instead of an ES256 verification. A key
withdrawn from the JWKS, like an account removed, stops its tokens within `ttl_seconds`.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from uuid import UUID

from guildstack.domain.errors import Unauthorized
from guildstack.domain.identity import Principal
from guildstack.ports.identity import AccountDirectory, TokenVerifier

CacheKey = tuple[UUID, UUID | None]


class TokenGate:
    """A `TokenVerifier`: the signature and claims by `verifier`, then the account (and,
    with `check_sessions`, the session) by `directory`, remembered for `ttl_seconds`."""

    def __init__(
        self,
        verifier: TokenVerifier,
        directory: AccountDirectory,
        *,
        ttl_seconds: float,
        check_sessions: bool = False,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._verifier = verifier
        self._directory = directory
        self._ttl = ttl_seconds
        self._check_sessions = check_sessions
        self._max_entries = max_entries
        self._clock = clock
        self._alive_until: OrderedDict[CacheKey, float] = OrderedDict()
        self._passed: OrderedDict[bytes, tuple[Principal, float]] = OrderedDict()

    async def verify(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode()).digest()
        now = self._clock()
        passed = self._passed.get(digest)
        if passed is not None and passed[1] > now:
            return passed[0]
        principal = await self._verifier.verify(token)
        key = (principal.user_id, self._session_of(principal))
        if self._alive_until.get(key, 0.0) <= now:
            if not await self._directory.active(*key):
                self._alive_until.pop(key, None)
                raise Unauthorized("The token's account or session no longer exists.")
            self._remember(key, now + self._ttl)
        self._remember_token(digest, principal, self._alive_until.get(key, now))
        return principal

    def _remember_token(self, digest: bytes, principal: Principal, alive_until: float) -> None:
        """Keep a token that passed while its account's answer holds, never past its
        `exp` (wall clock)."""
        exp = principal.claims.get("exp")
        if isinstance(exp, bool) or not isinstance(exp, int | float) or self._ttl <= 0:
            return
        now = self._clock()
        until = min(alive_until, now + (exp - time.time()))
        if until <= now:
            return
        self._passed[digest] = (principal, until)
        self._passed.move_to_end(digest)
        while len(self._passed) > self._max_entries:
            self._passed.popitem(last=False)

    def _session_of(self, principal: Principal) -> UUID | None:
        if not self._check_sessions:
            return None
        try:
            return UUID(principal.session_id or "")
        except ValueError as exc:
            raise Unauthorized("The token names no session.") from exc

    def _remember(self, key: CacheKey, until: float) -> None:
        self._alive_until[key] = until
        self._alive_until.move_to_end(key)
        while len(self._alive_until) > self._max_entries:
            self._alive_until.popitem(last=False)  # the least recently confirmed
