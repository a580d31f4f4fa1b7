"""`PostgresAgentRepository`: the workspace's agent rows (the caller's RLS applies)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from guildstack.adapters.postgres.database import Connection
from guildstack.domain.agents import Agent, AgentSource, AgentSpec, AgentStatus
from guildstack.domain.errors import NotFound
from guildstack.domain.identity import Principal
from guildstack.domain.models import Tier

_COLUMNS = """
    code, source, name, role, guild, description, system_prompt, model_tier, temperature,
    max_tokens, capabilities, status, created_at, updated_at
"""


class PostgresAgentRepository:
    def __init__(self, conn: Connection, actor: Principal | None) -> None:
        self._conn = conn
        self._actor = actor

    async def all(self, workspace_id: UUID) -> list[Agent]:
        cur = await self._conn.execute(
            f"select {_COLUMNS} from public.agents where workspace_id = %s order by code",  # noqa: S608
            (workspace_id,),
        )
        return [agent_of_row(r) for r in await cur.fetchall()]

    async def get(self, workspace_id: UUID, code: str) -> Agent | None:
        return await _get(self._conn, workspace_id, code)

    async def insert(self, workspace_id: UUID, agent: Agent) -> Agent:
        await self._conn.execute(
            f"insert into public.agents (workspace_id, created_by, {_COLUMNS})"  # noqa: S608
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now(), now())",
            (workspace_id, self._creator, *_values(agent)),
        )
        return await self._stored(workspace_id, agent.code)

    async def save(self, workspace_id: UUID, agent: Agent) -> Agent:
        await self._conn.execute(
            f"""
            insert into public.agents (workspace_id, created_by, {_COLUMNS})
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now(), now())
            on conflict (workspace_id, code) do update set
                name = excluded.name, role = excluded.role, guild = excluded.guild,
                description = excluded.description,
                system_prompt = excluded.system_prompt, model_tier = excluded.model_tier,
                temperature = excluded.temperature, max_tokens = excluded.max_tokens,
                capabilities = excluded.capabilities, status = excluded.status,
                updated_at = now()
            """,  # noqa: S608 - constant column list
            (workspace_id, self._creator, *_values(agent)),
        )
        return await self._stored(workspace_id, agent.code)

    @property
    def _creator(self) -> UUID | None:
        return self._actor.user_id if self._actor else None

    async def _stored(self, workspace_id: UUID, code: str) -> Agent:
        stored = await _get(self._conn, workspace_id, code)
        if stored is None:
            raise NotFound(f"Agent {code!r} is not visible after writing it.")
        return stored


async def _get(conn: Connection, workspace_id: UUID, code: str) -> Agent | None:
    cur = await conn.execute(
        f"select {_COLUMNS} from public.agents where workspace_id = %s and code = %s",  # noqa: S608
        (workspace_id, code),
    )
    row = await cur.fetchone()
    return agent_of_row(row) if row else None


def _values(agent: Agent) -> tuple[Any, ...]:
    spec = agent.spec
    return (
        spec.code,
        agent.source.value,
        spec.name,
        spec.role,
        spec.guild,
        spec.description,
        spec.system_prompt,
        spec.model_tier.value,
        spec.temperature,
        spec.max_tokens,
        list(spec.capabilities),
        agent.status.value,
    )


def agent_of_row(row: dict[str, Any]) -> Agent:
    spec = AgentSpec(
        code=row["code"],
        name=row["name"],
        role=row["role"],
        guild=row["guild"],
        description=row["description"],
        system_prompt=row["system_prompt"],
        model_tier=Tier(row["model_tier"]),
        temperature=round(float(row["temperature"]), 3),
        max_tokens=row["max_tokens"],
        capabilities=tuple(row["capabilities"]),
    )
    return Agent(
        spec=spec,
        source=AgentSource(row["source"]),
        status=AgentStatus(row["status"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        customized=True,
    )
