"""The typed cache: entries per type and workspace, invalidated by generation numbers."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from guildstack.domain.cache import CacheType


class Cache(Protocol):
    async def get(self, kind: CacheType, workspace_id: UUID, key: str) -> str | None:
        """The entry, when present and of the type's current generation."""
        ...

    async def put(
        self, kind: CacheType, workspace_id: UUID, key: str, value: str, ttl_seconds: int
    ) -> None: ...

    async def invalidate(self, kind: CacheType, workspace_id: UUID) -> None:
        """Make every entry of this type in the workspace unreachable (bump its generation)."""
        ...
