"""Workspace agents: custom ones and the workspace's changes to catalog ones (RLS)."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from guildstack.domain.agents import Agent
from guildstack.domain.identity import Principal


class AgentStore(Protocol):
    async def list(self, actor: Principal, workspace_id: UUID) -> list[Agent]:
        """Every agent row the workspace holds (custom agents and catalog overrides)."""
        ...

    async def get(self, actor: Principal, workspace_id: UUID, code: str) -> Agent | None: ...

    async def insert(self, actor: Principal, workspace_id: UUID, agent: Agent) -> Agent:
        """Store a new row; `Conflict` when the workspace already has this code."""
        ...

    async def save(self, actor: Principal, workspace_id: UUID, agent: Agent) -> Agent:
        """Insert or replace the workspace's row for `agent.code`."""
        ...
