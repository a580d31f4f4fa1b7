"""Team discussions: start one on the durable engine, answer the question it waits on, and
read its analytics. The turns themselves are `discussion_turns.DiscussionTurns`."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from decimal import Decimal
from typing import Any
from uuid import UUID

from guildstack.domain.authorization import Action
from guildstack.domain.conversations import (
    Conversation,
    ConversationEvent,
    ConversationEventType,
    ConversationMode,
    ConversationStatus,
    Message,
    MessageType,
    NewMessage,
    SenderKind,
    check_content,
    status_changed,
)
from guildstack.domain.discussion_results import analytics
from guildstack.domain.discussions import Phase, Turn, TurnKind
from guildstack.domain.errors import Conflict, InvalidInput
from guildstack.domain.identity import Principal
from guildstack.domain.paging import PageRequest
from guildstack.domain.run_graph import RunGraph
from guildstack.domain.runs import Node, Run, Workflow
from guildstack.domain.vocabulary import AgentStatus, GateStatus, RunKind
from guildstack.ports.uow import Tx, UnitOfWork
from guildstack.services.access import authorized
from guildstack.services.agents import AgentRegistry
from guildstack.services.conversations import changeable
from guildstack.services.discussion_turns import MAX_MESSAGES, discussion_of, facilitator_of

UNAVAILABLE = frozenset({AgentStatus.PAUSED, AgentStatus.TERMINATED})
MAX_BUDGET_USD = Decimal(10_000)


class DiscussionService:
    def __init__(self, uow: UnitOfWork, agents: AgentRegistry) -> None:
        self._uow = uow
        self._agents = agents

    async def start(
        self,
        actor: Principal,
        workspace_id: UUID,
        conversation_id: UUID,
        budget_usd: Decimal | None = None,
    ) -> Run:
        """The discussion's run, its first turn (the facilitator opens) queued. A discussion
        runs once: 409 when it is running or has concluded."""
        if budget_usd is not None and not Decimal(0) < budget_usd <= MAX_BUDGET_USD:
            raise InvalidInput(
                "budget_usd must be above 0 and at most 10000.",
                [{"loc": ["body", "budget_usd"], "msg": "out of range", "type": "value_error"}],
            )
        async with self._uow(actor) as tx:
            conversation = await changeable(tx, actor, workspace_id, conversation_id)
            _startable(conversation)
            agents = {a.code: a for a in await self._agents.all_in(tx, workspace_id)}
            missing = [
                c for c in conversation.agents if c not in agents or agents[c].status in UNAVAILABLE
            ]
            if missing:
                raise Conflict(f"These agents are not available: {', '.join(missing)}.")
        facilitator = facilitator_of(conversation.agents)
        first = Turn(1, TurnKind.OPEN, facilitator, Phase.INITIALIZATION)
        workflow = Workflow(
            RunKind.DISCUSSION,
            f"Discussion: {conversation.title}"[:200],
            conversation.goal or conversation.title,
            (Node(first.key, first.agent, first.prompt()),),
            budget_usd,
        )
        # A system transaction: the member may start it (checked above); runs of their own
        # are for operators, but a discussion is the conversation's.
        async with self._uow.system("start a discussion") as tx:
            current = await tx.conversations.get(workspace_id, conversation_id)
            _startable(current)
            graph = RunGraph.start(
                workspace_id,
                actor.user_id,
                workflow,
                now=tx.now,
                context={"conversation_id": str(conversation_id)},
            )
            run = await tx.runs.add(graph)
            await tx.conversations.save(
                replace(current, run_id=run.id, status=ConversationStatus.ACTIVE)
            )
            events = [
                ConversationEvent(
                    ConversationEventType.AGENT_TYPING,
                    {"agent": first.agent, "turn": first.number, "kind": first.kind.value},
                )
            ]
            if current.status is not ConversationStatus.ACTIVE:
                events.insert(0, status_changed(current.status, ConversationStatus.ACTIVE))
            await tx.conversations.append(workspace_id, conversation_id, events=events)
        return run

    async def answer(
        self, actor: Principal, conversation: Conversation, question: Message, content: str
    ) -> Message:
        """The user's answer to the question a discussion waits on: stored, the run's
        question answered (its step runs again with the answer), the conversation active.
        The caller has checked that the actor may post here."""
        text = check_content(content)
        workspace_id, conversation_id = conversation.workspace_id, conversation.id
        async with self._uow.system("answer a discussion's question") as tx:
            current = await tx.conversations.get(workspace_id, conversation_id)
            reply = NewMessage(
                SenderKind.USER,
                str(actor.user_id),
                MessageType.USER_RESPONSE,
                text,
                reply_to=question.id,
            )
            events = [reply.announced()]
            if current.status is ConversationStatus.PAUSED:
                events.append(status_changed(current.status, ConversationStatus.ACTIVE))
                await tx.conversations.save(replace(current, status=ConversationStatus.ACTIVE))
            (stored,) = await tx.conversations.append(
                workspace_id, conversation_id, [reply], events
            )
            await self._answer_run(tx, current, question, text, actor)
        return stored

    async def _answer_run(
        self, tx: Tx, conversation: Conversation, question: Message, text: str, actor: Principal
    ) -> None:
        run_id, step = conversation.run_id, question.metadata.get("step")
        if run_id is None or not step:
            return
        page = await tx.runs.questions(
            conversation.workspace_id, GateStatus.PENDING, PageRequest(limit=200)
        )
        waiting = [q for q in page.items if q.run_id == run_id and q.step_key == step]
        if not waiting:
            return
        async with tx.runs.locked(conversation.workspace_id, run_id) as graph:
            graph.answer(waiting[0].id, step, text, by=actor.user_id, now=tx.now)

    async def analytics(
        self, actor: Principal, workspace_id: UUID, conversation_id: UUID
    ) -> dict[str, Any]:
        """Turns, tokens and cost per persona, rounds, votes, time to consensus."""
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
            conversation = await tx.conversations.get(workspace_id, conversation_id)
            if conversation.mode is not ConversationMode.DISCUSSION:
                raise Conflict("Analytics are kept for discussions.")
            messages = await tx.conversations.messages(
                workspace_id, conversation_id, 0, MAX_MESSAGES
            )
        usage: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for m in messages:
            if m.sender_kind is SenderKind.AGENT and m.usage:
                for field in ("input_tokens", "output_tokens", "cost_usd"):
                    usage[m.sender_id][field] += float(m.usage.get(field) or 0)
        d = discussion_of(conversation, messages)
        ended = (
            conversation.updated_at if conversation.status is ConversationStatus.COMPLETED else None
        )
        return {
            "conversation_id": str(conversation_id),
            "status": conversation.status.value,
            **analytics(d, usage, ended),
        }


def _startable(conversation: Conversation) -> None:
    if conversation.mode is not ConversationMode.DISCUSSION:
        raise Conflict("Only a discussion is started; a chat answers each message.")
    if conversation.status is ConversationStatus.COMPLETED:
        raise Conflict("The discussion has concluded.")
    if conversation.run_id is not None:
        raise Conflict("The discussion is already running.")
