"""`PostgresAgentStore`: the workspace's agent rows, read and written under the caller's RLS."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from guildstack.adapters.postgres.database import Connection, PostgresDatabase
from guildstack.domain.agents import Agent, AgentSource, AgentSpec, AgentStatus
from guildstack.domain.identity import Principal
from guildstack.domain.models import Tier

_COLUMNS = """
    code, source, name, role, guild, description, system_prompt, model_tier, temperature,
    max_tokens, capabilities, status, created_at, updated_at
"""


class PostgresAgentStore:
    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def list(self, actor: Principal, workspace_id: UUID) -> list[Agent]:
        async with self._db.transaction(actor.claims) as conn:
            cur = await conn.execute(
                f"select {_COLUMNS} from public.agents where workspace_id = %s order by code",  # noqa: S608
                (workspace_id,),
            )
            return [_to_agent(r) for r in await cur.fetchall()]

    async def get(self, actor: Principal, workspace_id: UUID, code: str) -> Agent | None:
        async with self._db.transaction(actor.claims) as conn:
            return await _get(conn, workspace_id, code)

    async def insert(self, actor: Principal, workspace_id: UUID, agent: Agent) -> Agent:
        async with self._db.transaction(actor.claims) as conn:
            await conn.execute(
                f"insert into public.agents (workspace_id, created_by, {_COLUMNS})"  # noqa: S608
                " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now(), now())",
                (workspace_id, actor.user_id, *_values(agent)),
            )
            stored = await _get(conn, workspace_id, agent.code)
        assert stored is not None  # noqa: S101 - just inserted
        return stored

    async def save(self, actor: Principal, workspace_id: UUID, agent: Agent) -> Agent:
        async with self._db.transaction(actor.claims) as conn:
            await conn.execute(
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
                (workspace_id, actor.user_id, *_values(agent)),
            )
            stored = await _get(conn, workspace_id, agent.code)
        assert stored is not None  # noqa: S101 - just written
        return stored


async def _get(conn: Connection, workspace_id: UUID, code: str) -> Agent | None:
    cur = await conn.execute(
        f"select {_COLUMNS} from public.agents where workspace_id = %s and code = %s",  # noqa: S608
        (workspace_id, code),
    )
    row = await cur.fetchone()
    return _to_agent(row) if row else None


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


def _to_agent(row: dict[str, Any]) -> Agent:
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
