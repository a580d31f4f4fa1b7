"""The hourly cache warm-up: for every workspace active in the last day, the caches its
members read first are filled before they ask (the effective agent list)."""

from __future__ import annotations

from datetime import timedelta

from guildstack.observability import logger, metrics
from guildstack.ports.uow import UnitOfWork
from guildstack.services.agents import AgentRegistry

ACTIVE_WITHIN = timedelta(days=1)


class CacheWarmer:
    def __init__(self, uow: UnitOfWork, agents: AgentRegistry) -> None:
        self._uow = uow
        self._agents = agents

    async def warm(self) -> dict[str, int]:
        async with self._uow.system("cache warm-up: active workspaces") as tx:
            workspaces = await tx.audits.active_workspaces(ACTIVE_WITHIN)
        agents = 0
        for workspace_id in workspaces:
            agents += await self._agents.warm(workspace_id)
        metrics.add_metric(name="CacheWarmedWorkspaces", unit="Count", value=len(workspaces))
        logger.info("cache warm-up", extra={"workspaces": len(workspaces), "agents": agents})
        return {"workspaces": len(workspaces), "agents": agents}
