"""The agent registry: the catalog every workspace sees, plus the workspace's own agents."""

from __future__ import annotations

import asyncio
import builtins
import json
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from guildstack.domain.agents import Agent, AgentActivity, AgentSource, AgentSpec, AgentStatus
from guildstack.domain.authorization import Action
from guildstack.domain.cache import CacheType
from guildstack.domain.errors import Conflict, InvalidInput, NotFound
from guildstack.domain.identity import Principal
from guildstack.ports.uow import Tx, UnitOfWork
from guildstack.services.access import authorized
from guildstack.services.cache import CacheService, Lookup

# The window of the success rates and latencies `GET /agents` reports.
ACTIVITY_WINDOW = timedelta(days=7)

EDITABLE = frozenset(
    {
        "name",
        "role",
        "guild",
        "description",
        "system_prompt",
        "model_tier",
        "temperature",
        "max_tokens",
        "capabilities",
    }
)


class AgentRegistry:
    """The catalog every workspace sees, merged with the workspace's own agent rows."""

    def __init__(
        self,
        catalog: Sequence[AgentSpec],
        uow: UnitOfWork,
        cache: CacheService | None = None,
    ) -> None:
        self._catalog = {spec.code: spec for spec in catalog}
        self._uow = uow
        # The workspace's agent rows (`agent_catalog` cache, an hour; writes invalidate).
        self._cache = cache
        # The catalog as every workspace without rows of its own sees it, in list order.
        self._catalog_agents = sorted(
            (Agent(spec, AgentSource.CATALOG) for spec in self._catalog.values()),
            key=lambda a: (a.spec.guild, a.code),
        )

    def catalog(self) -> list[AgentSpec]:
        """The built-in agent templates (by guild and code)."""
        return [agent.spec for agent in self._catalog_agents]

    async def list(
        self,
        actor: Principal,
        workspace_id: UUID,
        *,
        guild: str | None = None,
        role: str | None = None,
        q: str | None = None,
        include_retired: bool = False,
    ) -> list[Agent]:
        """The workspace's agents: catalog ones (as the workspace changed them) and its own."""
        async with self._cached_rows(workspace_id) as cached, self._uow.reading(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
            agents = self.merged(await self._rows(tx, workspace_id, cached=cached))
        return _filtered(agents, guild, role, q, include_retired)

    async def list_with_activity(
        self,
        actor: Principal,
        workspace_id: UUID,
        window: timedelta = ACTIVITY_WINDOW,
        *,
        guild: str | None = None,
        role: str | None = None,
        q: str | None = None,
        include_retired: bool = False,
    ) -> tuple[builtins.list[Agent], dict[str, AgentActivity]]:
        """As `list`, with each agent's steps over the window (success rate, latency,
        running now), read in the same transaction."""
        async with self._cached_rows(workspace_id) as cached, self._uow.reading(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
            activity = await tx.agents.activity(workspace_id, window)
            agents = self.merged(await self._rows(tx, workspace_id, cached=cached))
        return _filtered(agents, guild, role, q, include_retired), activity

    async def get(self, actor: Principal, workspace_id: UUID, code: str) -> Agent:
        async with self._uow.reading(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
            return await self.resolve(tx, workspace_id, code)

    async def get_with_activity(
        self, actor: Principal, workspace_id: UUID, code: str, window: timedelta = ACTIVITY_WINDOW
    ) -> tuple[Agent, dict[str, AgentActivity]]:
        """As `get`, with the workspace's agents' steps over the window (one transaction)."""
        async with self._uow.reading(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
            agent = await self.resolve(tx, workspace_id, code)
            return agent, await tx.agents.activity(workspace_id, window)

    async def create(self, actor: Principal, workspace_id: UUID, spec: AgentSpec) -> Agent:
        """A custom agent (admin+). Its code must not be a catalog code or already used."""
        if spec.code in self._catalog:
            raise Conflict(f"{spec.code!r} is a built-in agent's code; choose another.")
        # spawning → idle: a definition needs no warm-up, so it is ready at once.
        agent = Agent(spec, AgentSource.CUSTOM, AgentStatus.SPAWNING).moved_to(AgentStatus.IDLE)
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.MANAGE_AGENTS)
            created = await tx.agents.insert(workspace_id, agent)
        await self._invalidate(workspace_id)
        return created

    async def update(
        self,
        actor: Principal,
        workspace_id: UUID,
        code: str,
        changes: dict[str, Any],
        status: AgentStatus | None = None,
    ) -> Agent:
        """Change fields and/or move the status (409 for a transition the lifecycle forbids).
        Changing a catalog agent stores the workspace's own copy of it."""
        unknown = set(changes) - EDITABLE
        if unknown:
            raise InvalidInput(f"These fields cannot be changed: {sorted(unknown)}.")
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.MANAGE_AGENTS)
            agent = await self.resolve(tx, workspace_id, code)
            if agent.status is AgentStatus.TERMINATED:
                raise Conflict(f"Agent {code!r} is retired and cannot change.")
            if status is not None:
                agent = agent.moved_to(status)
            if changes:
                agent = replace(agent, spec=replace(agent.spec, **changes))
            saved = await tx.agents.save(workspace_id, agent)
        await self._invalidate(workspace_id)
        return saved

    async def retire(self, actor: Principal, workspace_id: UUID, code: str) -> None:
        """Terminate the agent in this workspace; retiring a retired agent changes nothing."""
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.MANAGE_AGENTS)
            agent = await self.resolve(tx, workspace_id, code)
            if agent.status is not AgentStatus.TERMINATED:
                await tx.agents.save(workspace_id, agent.moved_to(AgentStatus.TERMINATED))
        await self._invalidate(workspace_id)

    async def warm(self, workspace_id: UUID) -> int:
        """Pre-fill the workspace's agent list in the cache (the hourly warm-up, as the
        system); how many agents it holds."""
        async with self._uow.system("warm the agent list") as tx:
            rows = await self._rows(tx, workspace_id, refresh=True)
        return len(self.merged(rows))

    @asynccontextmanager
    async def _cached_rows(self, workspace_id: UUID) -> AsyncIterator[asyncio.Task[Lookup] | None]:
        """The cache's answer for the workspace's agent rows, asked for while the caller's
        transaction checks access (the round trips overlap); dropped if the caller fails
        first (it is only used once access is granted)."""
        if self._cache is None:
            yield None
            return
        task = asyncio.create_task(
            self._cache.lookup(CacheType.AGENT_CATALOG, workspace_id, ROWS_KEY)
        )
        try:
            yield task
        finally:
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _rows(
        self,
        tx: Tx,
        workspace_id: UUID,
        *,
        refresh: bool = False,
        cached: Awaitable[Lookup] | None = None,
    ) -> builtins.list[Agent]:
        if self._cache is None:
            return await tx.agents.all(workspace_id)
        if cached is None:
            cached = self._cache.lookup(CacheType.AGENT_CATALOG, workspace_id, ROWS_KEY)
        found = await cached
        if found.value is not None and not refresh:
            return decode_agents(found.value)
        rows = await tx.agents.all(workspace_id)
        value = encode_agents(rows)
        await self._cache.store(
            CacheType.AGENT_CATALOG, workspace_id, ROWS_KEY, value, found.generation
        )
        return rows

    async def _invalidate(self, workspace_id: UUID) -> None:
        if self._cache is not None:
            await self._cache.invalidate(CacheType.AGENT_CATALOG, workspace_id)

    # Inside another use case's unit of work (the caller has authorized it) -----------------

    async def resolve(self, tx: Tx, workspace_id: UUID, code: str) -> Agent:
        """The workspace's agent `code`: its own row, else the catalog's; `NotFound`."""
        return self.pick(await tx.agents.get(workspace_id, code), code)

    def pick(self, stored: Agent | None, code: str) -> Agent:
        """The workspace's row of agent `code` when it has one, else the catalog's."""
        agent = self.find(stored, code)
        if agent is None:
            raise NotFound(f"No agent {code!r} in this workspace.")
        return agent

    def find(self, stored: Agent | None, code: str) -> Agent | None:
        """As `pick`, None when neither the workspace nor the catalog has it."""
        if stored is not None:
            return stored
        spec = self._catalog.get(code)
        return Agent(spec, AgentSource.CATALOG) if spec is not None else None

    async def all_in(self, tx: Tx, workspace_id: UUID) -> builtins.list[Agent]:
        """Every agent of the workspace, retired ones included, by guild and code."""
        return self.merged(await tx.agents.all(workspace_id))

    def merged(self, stored: Sequence[Agent]) -> builtins.list[Agent]:
        """The catalog with the workspace's rows over it, plus its own agents."""
        if not stored:
            return [*self._catalog_agents]
        rows = {agent.code: agent for agent in stored}
        merged = [rows.get(agent.code) or agent for agent in self._catalog_agents]
        merged += [agent for code, agent in rows.items() if code not in self._catalog]
        return sorted(merged, key=lambda a: (a.spec.guild, a.code))


ROWS_KEY = "rows"


def encode_agents(agents: Sequence[Agent]) -> str:
    return json.dumps(
        [
            {
                "spec": {
                    **asdict(agent.spec),
                    "model_tier": agent.spec.model_tier.value,
                },
                "source": agent.source.value,
                "status": agent.status.value,
                "created_at": agent.created_at.isoformat() if agent.created_at else None,
                "updated_at": agent.updated_at.isoformat() if agent.updated_at else None,
                "customized": agent.customized,
            }
            for agent in agents
        ]
    )


def decode_agents(raw: str) -> builtins.list[Agent]:
    return [
        Agent(
            AgentSpec.of(**item["spec"]),
            AgentSource(item["source"]),
            AgentStatus(item["status"]),
            datetime.fromisoformat(item["created_at"]) if item["created_at"] else None,
            datetime.fromisoformat(item["updated_at"]) if item["updated_at"] else None,
            bool(item["customized"]),
        )
        for item in json.loads(raw)
    ]


def _filtered(
    agents: Sequence[Agent],
    guild: str | None,
    role: str | None,
    q: str | None,
    include_retired: bool,
) -> builtins.list[Agent]:
    needle = q.casefold() if q else None
    return [
        agent
        for agent in agents
        if (include_retired or agent.status is not AgentStatus.TERMINATED)
        and (guild is None or agent.spec.guild == guild)
        and (role is None or agent.spec.role == role)
        and (needle is None or needle in _searchable(agent.spec))
    ]


def _searchable(spec: AgentSpec) -> str:
    return " ".join(
        (spec.code, spec.name, spec.role, spec.description, *spec.capabilities)
    ).casefold()
