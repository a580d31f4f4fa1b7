"""Chat turns: a user's message, routed to the specialists it needs, answered by the core
assistant in one voice, streamed, stored, and remembered.

A turn is a one-step `chat` run on the durable engine. The Stream function executes that
step itself, at once, to stream the reply's tokens; its queue message is sent with a delay
only as a fallback, so if the function dies mid-reply a worker completes the turn and the
reply is still stored. The reply lands in the conversation in the same transaction as the
step's outcome (`ChatFinisher`), so a client that disconnects loses nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from guildstack.agents.chat_prompts import Turn, core_request, specialist_request
from guildstack.agents.router import AgentRouter
from guildstack.domain.accounts import RULES, check_limits, day_start, is_image_prompt, week_start
from guildstack.domain.agents import AgentSpec
from guildstack.domain.authorization import Action, authorize
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
)
from guildstack.domain.errors import BudgetExceeded, Conflict, InvalidInput
from guildstack.domain.identity import AccountKind, Principal
from guildstack.domain.models import CallContext, Completion, ModelRequest
from guildstack.domain.routing import CORE_AGENT, RoutingDecision, routing_json
from guildstack.domain.run_graph import NewStep, RunGraph
from guildstack.domain.runs import Node, Run, Workflow
from guildstack.domain.vocabulary import AgentStatus, Guild, RunKind, RunStatus
from guildstack.observability import logger, metrics
from guildstack.ports.models import LanguageModel
from guildstack.ports.uow import Tx, UnitOfWork
from guildstack.services.agents import AgentRegistry
from guildstack.services.engine import Claim, StepEngine, Streamer
from guildstack.services.memory import MemoryService

HISTORY_MESSAGES = 30
# The turn's queue message waits this long: the Stream function runs the step at once, and
# the worker takes over only if that function died.
FALLBACK_SECONDS = 30
# A turn's step lease: how long a worker waits before taking over from a function that died.
LEASE_SECONDS = 60
SPECIALIST_SECONDS = 25.0
UNAVAILABLE = frozenset({AgentStatus.PAUSED, AgentStatus.TERMINATED})
Deltas = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class Accepted:
    """A user's message, stored; what the turn needs next."""

    conversation: Conversation
    message: Message
    history: tuple[Turn, ...]
    candidates: tuple[AgentSpec, ...]
    kind: AccountKind
    # The agents the client named instead of routing (checked against the candidates).
    explicit: tuple[str, ...] = ()
    # The memories relevant to the message, looked up while it was being accepted.
    recalled: asyncio.Future[list[Any]] | None = None


@dataclass(frozen=True)
class Planned:
    routing: RoutingDecision
    memories: str | None
    memory_hits: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class Reply:
    message: Message | None  # None when the turn failed
    run: Run


class ChatTurns:
    def __init__(
        self,
        uow: UnitOfWork,
        agents: AgentRegistry,
        router: AgentRouter,
        engine: StepEngine,
        memory: MemoryService | None = None,
    ) -> None:
        self._uow = uow
        self._agents = agents
        self._router = router
        self._engine = engine
        self._memory = memory

    async def accept(
        self,
        actor: Principal,
        workspace_id: UUID,
        content: str,
        conversation_id: UUID | None = None,
        agents: Sequence[str] = (),
    ) -> Accepted:
        """Store the user's message (in a new chat when no conversation is named), after
        checking the member may chat, has budget left, is within their account kind's
        limits, and names only agents that may answer here. Errors here come before any
        byte of the reply, and store nothing."""
        text = check_content(content)
        image = is_image_prompt(text)
        # Memories are looked up meanwhile: the search needs only the text.
        recalled = asyncio.ensure_future(self._recall(actor, workspace_id, text))
        try:
            return await self._accept(
                actor, workspace_id, text, image, conversation_id, agents, recalled
            )
        except BaseException:
            recalled.cancel()
            raise

    async def _accept(
        self,
        actor: Principal,
        workspace_id: UUID,
        text: str,
        image: bool,
        conversation_id: UUID | None,
        agents: Sequence[str],
        recalled: asyncio.Future[list[Any]],
    ) -> Accepted:
        async with self._uow(actor) as tx:
            standing = await tx.conversations.standing(
                workspace_id, day_start(tx.now), week_start(tx.now)
            )
            authorize(standing.role if standing else None, Action.CHAT)
            assert standing is not None  # noqa: S101 - authorize refused non-members
            if standing.budget_left is not None and standing.budget_left <= 0:
                raise BudgetExceeded(
                    "The workspace's monthly budget is spent; raise it to chat again."
                )
            kind = standing.account_kind
            check_limits(
                kind,
                tx.now,
                sent_today=standing.sent_today,
                images_this_week=standing.images_this_week,
                image=image,
            )
            conversation = await self._conversation(tx, actor, workspace_id, conversation_id, text)
            earlier = (
                await tx.conversations.recent(workspace_id, conversation.id, HISTORY_MESSAGES)
                if conversation_id is not None
                else []
            )
            new = NewMessage(
                SenderKind.USER,
                str(actor.user_id),
                MessageType.CHAT,
                text,
                metadata={"image_prompt": True} if image else {},
            )
            (message,) = await tx.conversations.append(
                workspace_id,
                conversation.id,
                [new],
                [
                    new.announced(),
                    ConversationEvent(ConversationEventType.AGENT_TYPING, {"agent": CORE_AGENT}),
                ],
            )
            candidates = await self._candidates(tx, workspace_id, conversation)
            _check_named(agents, candidates)
        metrics.add_metric(name="ChatMessages", unit="Count", value=1)
        return Accepted(
            conversation, message, _history(earlier), candidates, kind, tuple(agents), recalled
        )

    async def _conversation(
        self,
        tx: Tx,
        actor: Principal,
        workspace_id: UUID,
        conversation_id: UUID | None,
        text: str,
    ) -> Conversation:
        if conversation_id is None:
            title = text if len(text) <= 80 else text[:77].rstrip() + "…"
            return await tx.conversations.create(
                Conversation(
                    id=uuid.uuid4(),
                    workspace_id=workspace_id,
                    created_by=actor.user_id,
                    title=title,
                    mode=ConversationMode.CHAT,
                    status=ConversationStatus.ACTIVE,
                    created_at=tx.now,
                    updated_at=tx.now,
                )
            )
        conversation = await tx.conversations.get(workspace_id, conversation_id)
        if conversation.mode is not ConversationMode.CHAT:
            raise Conflict("A discussion takes messages at POST /conversations/{id}/messages.")
        if conversation.status is not ConversationStatus.ACTIVE:
            raise Conflict(f"The conversation is {conversation.status.value}; resume it first.")
        return conversation

    async def _candidates(
        self, tx: Tx, workspace_id: UUID, conversation: Conversation
    ) -> tuple[AgentSpec, ...]:
        """Who may answer: the conversation's own agents when it names some, else the core
        assistant's team and the workspace's custom agents."""
        agents = [
            a for a in await self._agents.all_in(tx, workspace_id) if a.status not in UNAVAILABLE
        ]
        if conversation.agents:
            named = set(conversation.agents) | {CORE_AGENT}
            return tuple(a.spec for a in agents if a.code in named)
        return tuple(
            a.spec for a in agents if a.spec.guild == Guild.CORE or a.source.value == "custom"
        )

    async def plan(self, actor: Principal, accepted: Accepted) -> Planned:
        """Route (a fast model call, or keywords) while the memories' lookup, started when
        the message arrived, completes."""
        conversation = accepted.conversation
        context = CallContext(conversation.workspace_id, actor.user_id, agent_code="router")
        explicit = accepted.explicit or tuple(conversation.agents)
        routing = await self._router.route(
            accepted.message.content, accepted.candidates, context, explicit=explicit
        )
        recalled = await accepted.recalled if accepted.recalled is not None else []
        memories = "\n".join(f"- [{h.memory.collection}] {h.memory.content}" for h in recalled)
        hits = tuple(
            {"id": str(h.memory.id), "collection": h.memory.collection.value, "score": h.score}
            for h in recalled
        )
        return Planned(routing, memories or None, hits)

    async def _recall(self, actor: Principal, workspace_id: UUID, text: str) -> list[Any]:
        if self._memory is None:
            return []
        try:
            return await self._memory.search(actor, workspace_id, text[:2000], limit=5)
        except Exception:  # noqa: BLE001 - a reply without memories beats no reply
            logger.warning("memory unavailable for a chat turn")
            return []

    async def respond(
        self, actor: Principal, accepted: Accepted, planned: Planned, on_delta: Deltas | None = None
    ) -> Run:
        """The turn as a one-step `chat` run, executed here, at once, its reply's tokens
        streamed to `on_delta`. Its queue message is held back `FALLBACK_SECONDS`: should
        this process die mid-reply, a worker completes the turn once the lease ends."""
        conversation, message = accepted.conversation, accepted.message
        workflow = Workflow(
            RunKind.CHAT,
            f"Chat: {conversation.title}"[:200],
            message.content,
            (Node("reply", CORE_AGENT),),
        )
        context = {
            "conversation_id": str(conversation.id),
            "message_id": str(message.id),
            "account_kind": accepted.kind.value,
            "routing": routing_json(planned.routing),
            "memories": planned.memories,
            "memory_hits": list(planned.memory_hits),
            "history": [t.as_json() for t in accepted.history],
        }

        # A system transaction: `accept` checked, moments ago in this request, that the member
        # may chat; analysts chat, but starting runs of their own is for operators.
        return await self._engine.start(
            conversation.workspace_id,
            actor.user_id,
            workflow,
            "reply",
            on_delta,
            context=context,
            dispatch_delay_seconds=FALLBACK_SECONDS,
            lease_seconds=LEASE_SECONDS,
        )

    async def reply(self, actor: Principal, accepted: Accepted, run_id: UUID) -> Reply:
        """The stored reply to the user's message (None if the turn failed) and its run."""
        workspace_id = accepted.conversation.workspace_id
        async with self._uow(actor) as tx:
            run = await tx.runs.get(workspace_id, run_id)
            recent = await tx.conversations.recent(
                workspace_id, accepted.conversation.id, HISTORY_MESSAGES
            )
        answer = next((m for m in reversed(recent) if m.reply_to == accepted.message.id), None)
        return Reply(answer if run.status is RunStatus.SUCCEEDED else None, run)


class ChatExecutor:
    """The `chat` step: the specialists the router picked answer side by side (each within
    its deadline; one failing does not fail the reply), then the core assistant streams the
    reply in one voice."""

    def __init__(self, uow: UnitOfWork, agents: AgentRegistry, model: LanguageModel) -> None:
        self._uow = uow
        self._agents = agents
        self._model = model

    asks = False  # a reply is what the user reads, even one that asks something

    async def follow(
        self,
        tx: Tx,
        graph: RunGraph,
        claim: Claim,
        completion: Completion,
        question: str | None,
    ) -> Sequence[NewStep]:
        return ()  # the reply is stored when the run ends (`ChatFinisher`)

    def prepare(self, claim: Claim) -> ModelRequest | None:
        """With no specialist to consult, the reply's request is known when the step is
        claimed (and its call reserved with the claim)."""
        if _specialists(claim):
            return None
        return self._core_request(claim, {})

    async def execute(self, claim: Claim, stream: Streamer) -> tuple[Completion, str]:
        if claim.request is not None:
            return await stream(claim.request)
        history = _turns(claim)
        memories = claim.run_context.get("memories")
        specs = await self._specs(claim.workspace_id, _specialists(claim))
        answers = await asyncio.gather(
            *(self._consult(claim, spec, history, memories) for spec in specs)
        )
        findings = {spec.code: text for spec, text in zip(specs, answers, strict=True) if text}
        return await stream(self._core_request(claim, findings))

    def _core_request(self, claim: Claim, findings: Mapping[str, str]) -> ModelRequest:
        kind = AccountKind(claim.run_context.get("account_kind", AccountKind.STANDARD))
        return core_request(
            claim.agent,
            claim.run_input,
            _turns(claim),
            claim.run_context.get("memories"),
            findings,
            RULES[kind].guidance,
        )

    async def _specs(self, workspace_id: UUID, codes: Sequence[str]) -> list[AgentSpec]:
        if not codes:
            return []
        async with self._uow.system("resolve a chat turn's specialists") as tx:
            agents = {a.code: a for a in await self._agents.all_in(tx, workspace_id)}
        return [
            agents[c].spec for c in codes if c in agents and agents[c].status not in UNAVAILABLE
        ]

    async def _consult(
        self, claim: Claim, spec: AgentSpec, history: Sequence[Turn], memories: str | None
    ) -> str | None:
        """A specialist's findings, or None when it fails or runs out of time."""
        request = specialist_request(spec, claim.run_input, history, memories)
        context = CallContext(
            claim.workspace_id, claim.created_by, spec.code, claim.run_id, claim.step_key,
            claim.run_budget_usd,
        )  # fmt: skip
        try:
            async with asyncio.timeout(SPECIALIST_SECONDS):
                completion = await self._model.complete(request, context)
        except BudgetExceeded:
            raise
        except Exception as exc:  # noqa: BLE001 - one specialist failing does not fail the reply
            logger.warning(
                "a specialist did not answer", extra={"agent": spec.code, "error": repr(exc)}
            )
            metrics.add_metric(name="SpecialistFailures", unit="Count", value=1)
            return None
        return completion.text


def _specialists(claim: Claim) -> list[str]:
    """The agents the turn's routing picked besides the one answering."""
    routed = claim.run_context.get("routing", {}).get("agents", [])
    return [a["code"] for a in routed if a["code"] != claim.agent.code]


def _turns(claim: Claim) -> list[Turn]:
    return [Turn.of(t) for t in claim.run_context.get("history", [])]


def _check_named(codes: Sequence[str], candidates: Sequence[AgentSpec]) -> None:
    known = {c.code for c in candidates}
    unknown = [code for code in codes if code not in known]
    if unknown:
        raise InvalidInput(
            f"No agent {', '.join(map(repr, unknown))} can answer here.",
            [
                {
                    "loc": ["body", "agents", i],
                    "msg": f"unknown agent {code!r}",
                    "type": "unknown_agent",
                }
                for i, code in enumerate(codes)
                if code not in known
            ],
        )


def _history(messages: Sequence[Message]) -> tuple[Turn, ...]:
    return tuple(
        Turn("user" if m.sender_kind is SenderKind.USER else "assistant", m.content)
        for m in messages
        if m.type in (MessageType.CHAT, MessageType.USER_RESPONSE)
    )
