"""Trying an agent: one turn of its persona (the workspace's own version, with any
override of prompt, tier or temperature) against a sample message, before it joins a
discussion or a run. The call is metered like any other; nothing is stored."""

from __future__ import annotations

from uuid import UUID

from guildstack.domain.authorization import Action
from guildstack.domain.errors import Conflict
from guildstack.domain.identity import Principal
from guildstack.domain.models import CallContext, ChatMessage, Completion, ModelRequest
from guildstack.domain.vocabulary import AgentStatus
from guildstack.ports.models import LanguageModel
from guildstack.ports.uow import UnitOfWork
from guildstack.services.access import authorized
from guildstack.services.agents import AgentRegistry


class AgentTrials:
    def __init__(self, uow: UnitOfWork, agents: AgentRegistry, model: LanguageModel) -> None:
        self._uow = uow
        self._agents = agents
        self._model = model

    async def test(
        self, actor: Principal, workspace_id: UUID, code: str, message: str
    ) -> Completion:
        """The agent's answer to `message` (operators and up: it costs a model call)."""
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.RUN)
            agent = await self._agents.resolve(tx, workspace_id, code)
        if agent.status is AgentStatus.TERMINATED:
            raise Conflict(f"Agent {code!r} is retired.")
        spec = agent.spec
        request = ModelRequest(
            system=spec.system_prompt,
            messages=(ChatMessage("user", message),),
            tier=spec.model_tier,
            temperature=spec.temperature,
            max_tokens=spec.max_tokens,
        )
        return await self._model.complete(request, CallContext(workspace_id, actor.user_id, code))
