"""Workspace agents: custom ones and the workspace's changes to catalog ones."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from guildstack.domain.agents import Agent


class AgentRepository(Protocol):
    async def all(self, workspace_id: UUID) -> list[Agent]:
        """Every agent row the workspace holds (custom agents and catalog overrides)."""
        ...

    async def get(self, workspace_id: UUID, code: str) -> Agent | None: ...

    async def insert(self, workspace_id: UUID, agent: Agent) -> Agent:
        """Store a new row; `Conflict` when the workspace already has this code."""
        ...

    async def save(self, workspace_id: UUID, agent: Agent) -> Agent:
        """Insert or replace the workspace's row for `agent.code`."""
        ...
