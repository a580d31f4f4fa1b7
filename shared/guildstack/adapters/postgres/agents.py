"""`PostgresAgentRepository`: the workspace's agent rows (the caller's RLS applies)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from guildstack.adapters.postgres.database import Connection
from guildstack.domain.agents import Agent, AgentActivity, AgentSource, AgentSpec, AgentStatus
from guildstack.domain.errors import NotFound
from guildstack.domain.identity import Principal
from guildstack.domain.models import Tier
from guildstack.domain.vocabulary import StepStatus

# Steps that ran to an end: what success rates count.
SETTLED = (StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.DEAD)

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

    async def activity(self, workspace_id: UUID, window: timedelta) -> dict[str, AgentActivity]:
        cur = await self._conn.execute(
            """
            select agent_code,
                   count(*) filter (where status = any(%(settled)s)) as settled,
                   count(*) filter (where status = %(ok)s) as ok_steps,
                   percentile_cont(0.5) within group (order by ms) filter (where status = %(ok)s)
                       as p50,
                   percentile_cont(0.95) within group (order by ms) filter (where status = %(ok)s)
                       as p95,
                   count(*) filter (where status = %(running_status)s and lease_until > now())
                       as running_now,
                   (array_agg(status order by finished_at desc)
                       filter (where status = any(%(settled)s)))[1] as last_status
            from (
                select agent_code, status, finished_at, lease_until,
                       extract(epoch from finished_at - started_at) * 1000 as ms
                from public.steps
                where workspace_id = %(ws)s
                  and (finished_at >= now() - %(window)s or status = %(running_status)s)
            ) s
            group by agent_code
            """,
            {
                "ws": workspace_id,
                "window": window,
                "settled": [s.value for s in SETTLED],
                "ok": StepStatus.SUCCEEDED.value,
                "running_status": StepStatus.RUNNING.value,
            },
        )
        days = max(1, round(window.total_seconds() / 86_400))
        return {
            r["agent_code"]: AgentActivity(
                window_days=days,
                settled=int(r["settled"]),
                succeeded=int(r["ok_steps"]),
                p50_ms=round(float(r["p50"]), 1) if r["p50"] is not None else None,
                p95_ms=round(float(r["p95"]), 1) if r["p95"] is not None else None,
                running=int(r["running_now"]),
                last_failed=r["last_status"] is not None
                and r["last_status"] != StepStatus.SUCCEEDED.value,
            )
            for r in await cur.fetchall()
        }

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
