"""The typed cache: entries per type and workspace, invalidated by generation numbers."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from guildstack.domain.cache import CacheType


class Cache(Protocol):
    async def generation(self, kind: CacheType, workspace_id: UUID) -> int:
        """The type's current generation in the workspace (entries of older ones are gone)."""
        ...

    async def get(
        self, kind: CacheType, workspace_id: UUID, generation: int, key: str
    ) -> str | None: ...

    async def lookup(self, kind: CacheType, workspace_id: UUID, key: str) -> tuple[int, str | None]:
        """The type's current generation and `key`'s entry under it: `generation` then
        `get`, in one round trip when the adapter can."""
        ...

    async def put(
        self,
        kind: CacheType,
        workspace_id: UUID,
        generation: int,
        key: str,
        value: str,
        ttl_seconds: int,
    ) -> None:
        """Store under `generation`: a value read before a write invalidated the type is
        stored under the old generation, so it is never served."""
        ...

    async def invalidate(self, kind: CacheType, workspace_id: UUID) -> None:
        """Make every entry of this type in the workspace unreachable (bump its generation)."""
        ...
