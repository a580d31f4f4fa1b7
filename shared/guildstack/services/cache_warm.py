"""The hourly cache warm-up: for every workspace active in the last day, the caches its
members read first are filled before they ask: the effective agent list, this month's
usage summaries (closed days), the company codex and the most frequent recent memory
searches (each re-run as the member who asked it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from uuid import UUID

from guildstack.observability import logger, metrics
from guildstack.ports.uow import UnitOfWork
from guildstack.services.agents import AgentRegistry
from guildstack.services.memory import MemoryService
from guildstack.services.onboarding import Codex
from guildstack.services.usage import UsageService

ACTIVE_WITHIN = timedelta(days=1)
# Searches re-run per workspace and hour.
FREQUENT_SEARCHES = 10


class CacheWarmer:
    def __init__(
        self,
        uow: UnitOfWork,
        agents: AgentRegistry,
        usage: UsageService | None = None,
        codex: Codex | None = None,
        memory: MemoryService | None = None,
    ) -> None:
        self._uow = uow
        self._agents = agents
        self._usage = usage
        self._codex = codex
        self._memory = memory

    async def warm(self) -> dict[str, int]:
        async with self._uow.system("cache warm-up: active workspaces") as tx:
            workspaces = await tx.audits.active_workspaces(ACTIVE_WITHIN)
        counts = {"workspaces": len(workspaces), "agents": 0, "usage": 0, "codex": 0, "searches": 0}
        for workspace_id in workspaces:
            for name, warmed in (await self._workspace(workspace_id)).items():
                counts[name] += warmed
        metrics.add_metric(name="CacheWarmedWorkspaces", unit="Count", value=len(workspaces))
        logger.info("cache warm-up", extra=counts)
        return counts

    async def _workspace(self, workspace_id: UUID) -> dict[str, int]:
        """One workspace's caches; a part that fails is logged and the rest still warm."""
        warmed = {"agents": 0, "usage": 0, "codex": 0, "searches": 0}
        parts: list[tuple[str, Callable[[], Awaitable[int | bool]]]] = [
            ("agents", partial(self._agents.warm, workspace_id))
        ]
        if self._usage is not None:
            parts.append(("usage", partial(self._usage.warm, workspace_id)))
        if self._codex is not None:
            parts.append(("codex", partial(self._codex.warm, workspace_id)))
        if self._memory is not None:
            parts.append(("searches", partial(self._memory.warm, workspace_id, FREQUENT_SEARCHES)))
        for name, part in parts:
            try:
                warmed[name] = int(await part())
            except Exception:  # noqa: BLE001 - one part's failure leaves the others warm
                logger.warning("cache warm-up part failed", extra={"part": name}, exc_info=True)
        return warmed
