"""Workspace agents: custom ones and the workspace's changes to catalog ones."""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol
from uuid import UUID

from guildstack.domain.agents import Agent, AgentActivity


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

    async def activity(self, workspace_id: UUID, window: timedelta) -> dict[str, AgentActivity]:
        """Per agent code, what its steps did in the window (and which run now)."""
        ...
