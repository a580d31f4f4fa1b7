"""An in-memory agent store (unit tests of the registry)."""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID

from guildstack.domain.agents import Agent
from guildstack.domain.errors import Conflict
from guildstack.domain.identity import Principal


class InMemoryAgentStore:
    def __init__(self) -> None:
        self.rows: dict[tuple[UUID, str], Agent] = {}

    async def list(self, actor: Principal, workspace_id: UUID) -> list[Agent]:
        return [a for (ws, _), a in self.rows.items() if ws == workspace_id]

    async def get(self, actor: Principal, workspace_id: UUID, code: str) -> Agent | None:
        return self.rows.get((workspace_id, code))

    async def insert(self, actor: Principal, workspace_id: UUID, agent: Agent) -> Agent:
        if (workspace_id, agent.code) in self.rows:
            raise Conflict("That already exists.")
        return await self.save(actor, workspace_id, agent)

    async def save(self, actor: Principal, workspace_id: UUID, agent: Agent) -> Agent:
        stored = replace(agent, customized=True)
        self.rows[(workspace_id, agent.code)] = stored
        return stored
