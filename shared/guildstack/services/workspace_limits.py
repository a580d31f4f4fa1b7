"""The per-workspace rate limit, counted only for the workspace's members.

A workspace's limit is shared by its members. Counting every request that names a workspace
in `X-Workspace-Id` would let anyone exhaust it (and learn from a 429 that it exists), so a
request is counted only once the caller is known to be a member. Asking the database on
every request would cost a transaction each; so answers (member or not) are kept per
container for `ttl_seconds`. A member removed can still use up the workspace's limit
(never read anything: the action checks membership again) for at most that long; a new
member's requests count from the next check.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from uuid import UUID

from guildstack.ports.ratelimit import RateDecision, RateLimiter
from guildstack.ports.uow import UnitOfWork

CacheKey = tuple[UUID, UUID]


class WorkspaceRateLimit:
    """At most the limiter's limit of members' requests per workspace."""

    def __init__(
        self,
        limiter: RateLimiter,
        uow: UnitOfWork,
        *,
        ttl_seconds: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limiter = limiter
        self._uow = uow
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._known: OrderedDict[CacheKey, tuple[bool, float]] = OrderedDict()

    @property
    def limiter(self) -> RateLimiter:
        return self._limiter

    def known(self, user_id: UUID, workspace_id: UUID) -> bool | None:
        """Whether the caller is a member, as this container last heard (None: not asked
        lately)."""
        known = self._known.get((user_id, workspace_id))
        if known is None or known[1] <= self._clock():
            return None
        return known[0]

    async def hit(self, user_id: UUID, workspace_id: UUID) -> RateDecision | None:
        """Count the request of `user_id` against the workspace: None when the caller is
        not a member (nothing counted; the action will answer 404)."""
        if not await self.is_member(user_id, workspace_id):
            return None
        return await self._limiter.hit(self.key(workspace_id))

    async def release(self, workspace_id: UUID, ticket: str) -> None:
        await self._limiter.release(self.key(workspace_id), ticket)

    @staticmethod
    def key(workspace_id: UUID) -> str:
        return f"ws:{workspace_id}"

    async def is_member(self, user_id: UUID, workspace_id: UUID) -> bool:
        key = (user_id, workspace_id)
        known = self.known(user_id, workspace_id)
        if known is not None:
            return known
        now = self._clock()
        async with self._uow.system("is the caller a member (workspace rate limit)") as tx:
            member = await tx.workspaces.role_of(workspace_id, user_id) is not None
        self._known[key] = (member, now + self._ttl)
        self._known.move_to_end(key)
        while len(self._known) > self._max_entries:
            self._known.popitem(last=False)  # the least recently checked
        return member
