"""`PostgresToolRepository`: a workspace's tool settings, per-agent switches and MCP servers
(the caller's RLS applies), and what a run's tool calls used."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

from guildstack.adapters.postgres.database import Connection
from guildstack.domain.errors import Conflict
from guildstack.domain.tools import ToolSettings
from guildstack.domain.vocabulary import EventType
from guildstack.ports.tools import McpServer

_TOOL_PROVIDER = "tool"


class PostgresToolRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def settings(self, workspace_id: UUID) -> ToolSettings:
        cur = await self._conn.execute(
            """
            select s.fetch_hosts, s.max_calls_per_run, s.max_spend_per_run_usd,
                   coalesce((select array_agg(a.agent_code || ' ' || a.tool || ' '
                                              || a.enabled::text)
                             from public.agent_tools a where a.workspace_id = %(ws)s),
                            '{}') as switches
            from (select %(ws)s::uuid as workspace_id) w
            left join public.tool_settings s on s.workspace_id = w.workspace_id
            """,
            {"ws": workspace_id},
        )
        row = await cur.fetchone()
        assert row is not None  # noqa: S101 - the select always yields its one row
        switches: dict[tuple[str, str], bool] = {}
        for entry in row["switches"]:
            agent, tool, enabled = entry.split(" ")
            switches[(agent, tool)] = enabled == "true"
        if row["fetch_hosts"] is None:
            return ToolSettings(switches=switches)
        return ToolSettings(
            fetch_hosts=tuple(row["fetch_hosts"]),
            max_calls_per_run=int(row["max_calls_per_run"]),
            max_spend_per_run_usd=Decimal(row["max_spend_per_run_usd"]),
            switches=switches,
        )

    async def save_settings(
        self,
        workspace_id: UUID,
        *,
        fetch_hosts: Sequence[str],
        max_calls_per_run: int,
        max_spend_per_run_usd: Decimal,
    ) -> None:
        await self._conn.execute(
            """
            insert into public.tool_settings
                (workspace_id, fetch_hosts, max_calls_per_run, max_spend_per_run_usd, updated_at)
            values (%s, %s, %s, %s, now())
            on conflict (workspace_id) do update set
                fetch_hosts = excluded.fetch_hosts,
                max_calls_per_run = excluded.max_calls_per_run,
                max_spend_per_run_usd = excluded.max_spend_per_run_usd,
                updated_at = now()
            """,
            (workspace_id, list(fetch_hosts), max_calls_per_run, max_spend_per_run_usd),
        )

    async def switch(self, workspace_id: UUID, agent_code: str, tool: str, enabled: bool) -> None:
        await self._conn.execute(
            """
            insert into public.agent_tools (workspace_id, agent_code, tool, enabled, updated_at)
            values (%s, %s, %s, %s, now())
            on conflict (workspace_id, agent_code, tool) do update set
                enabled = excluded.enabled, updated_at = now()
            """,
            (workspace_id, agent_code, tool, enabled),
        )

    async def run_usage(self, workspace_id: UUID, run_id: UUID) -> tuple[int, Decimal]:
        cur = await self._conn.execute(
            """
            select (select count(*) from public.events
                    where run_id = %(run)s and workspace_id = %(ws)s and type = %(called)s)
                       as calls,
                   (select coalesce(sum(cost_usd), 0) from public.usage
                    where run_id = %(run)s and workspace_id = %(ws)s and provider = %(tool)s)
                       as spent
            """,
            {
                "run": run_id,
                "ws": workspace_id,
                "called": EventType.TOOL_CALLED.value,
                "tool": _TOOL_PROVIDER,
            },
        )
        row = await cur.fetchone()
        assert row is not None  # noqa: S101
        return int(row["calls"]), Decimal(row["spent"])

    async def mcp_servers(self, workspace_id: UUID) -> list[McpServer]:
        cur = await self._conn.execute(
            "select id, workspace_id, name, url, requires_approval, created_at"
            " from public.mcp_servers where workspace_id = %s order by name",
            (workspace_id,),
        )
        return [_server(r) for r in await cur.fetchall()]

    async def add_mcp_server(
        self, workspace_id: UUID, name: str, url: str, requires_approval: bool
    ) -> McpServer:
        cur = await self._conn.execute(
            "insert into public.mcp_servers (workspace_id, name, url, requires_approval)"
            " values (%s, %s, %s, %s) on conflict (workspace_id, name) do nothing"
            " returning id, workspace_id, name, url, requires_approval, created_at",
            (workspace_id, name, url, requires_approval),
        )
        row = await cur.fetchone()
        if row is None:
            raise Conflict(f"The workspace has an MCP server named {name!r}.")
        return _server(row)

    async def remove_mcp_server(self, workspace_id: UUID, server_id: UUID) -> bool:
        cur = await self._conn.execute(
            "delete from public.mcp_servers where workspace_id = %s and id = %s returning id",
            (workspace_id, server_id),
        )
        return await cur.fetchone() is not None


def _server(row: Any) -> McpServer:
    return McpServer(
        id=row["id"],
        workspace_id=row["workspace_id"],
        name=row["name"],
        url=row["url"],
        requires_approval=row["requires_approval"],
        created_at=row["created_at"],
    )
