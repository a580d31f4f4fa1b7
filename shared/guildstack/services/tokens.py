"""Tokens are only as good as their account: a verified token whose user was deleted or
banned (or, when asked, whose session has ended) is refused.

A JWT stays valid until it expires, whatever happens to its account meanwhile; asking the
database on every request would cost a round trip each. So positive answers are kept per
container for a short time: an account removed (or a session ended) is refused by every
container within `ttl_seconds`. Refusals are never kept (a user who signs up again, or a
transient error, must not stay locked out).
"""

from __future__ import annotations

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

    async def verify(self, token: str) -> Principal:
        principal = await self._verifier.verify(token)
        key = (principal.user_id, self._session_of(principal))
        now = self._clock()
        if self._alive_until.get(key, 0.0) > now:
            return principal
        if not await self._directory.active(*key):
            self._alive_until.pop(key, None)
            raise Unauthorized("The token's account or session no longer exists.")
        self._remember(key, now + self._ttl)
        return principal

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
