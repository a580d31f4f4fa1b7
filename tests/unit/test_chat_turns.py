"""Chat turns over the in-memory unit of work: the reply streamed and stored by the turn's
finisher, the worker completing a turn whose streaming function died, specialists failing
without failing the reply, a failed turn recorded, and refusals before anything is stored."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from guildstack.agents.router import AgentRouter
from guildstack.domain.agents import AgentSpec
from guildstack.domain.errors import BudgetExceeded, GuildstackError, InvalidInput, RateLimited
from guildstack.domain.identity import AccountKind, Member, Principal, Role, Workspace
from guildstack.domain.jobs import JobKind
from guildstack.domain.models import (
    CallContext,
    Completion,
    ModelRequest,
    Tier,
    Usage,
)
from guildstack.domain.vocabulary import (
    ConversationEventType,
    MessageType,
    RunKind,
    RunStatus,
    SenderKind,
)
from guildstack.services.agents import AgentRegistry
from guildstack.services.chat import (
    FALLBACK_SECONDS,
    LEASE_SECONDS,
    ChatExecutor,
    ChatTurns,
    Reply,
)
from guildstack.services.engine import StepAttemptFailed, StepEngine
from guildstack.services.run_finishers import ChatFinisher
from tests.fakes.models import AnsweringModel
from tests.fakes.uow import Clock, InMemoryUnitOfWork, StoredConversation, World

START = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)


def spec(code: str, guild: str, keywords: tuple[str, ...] = ()) -> AgentSpec:
    return AgentSpec(
        code=code,
        name=code.title(),
        role=code,
        guild=guild,
        description=f"The {code} agent.",
        system_prompt=f"You are {code}.",
        model_tier=Tier.FAST,
        max_tokens=512,
        keywords=keywords,
    )


CORE = spec("nicole_core", "core")
SEO = spec("seo_agent", "core", ("seo", "keywords", "ranking"))
CATALOG = (CORE, SEO)


@dataclass
class ChatModel(AnsweringModel):
    """Answers by who is asked: the router (JSON), a specialist, or the core assistant.
    An entry that is an error is raised instead."""

    core: str | GuildstackError = "Here is your plan, in one voice."
    specialist: str | GuildstackError = "SEO findings: use the word sourdough."
    routing: tuple[str, ...] = ("seo_agent",)
    requests: list[tuple[str, ModelRequest]] = field(default_factory=list)

    def answer(self, request: ModelRequest, context: CallContext) -> Completion:
        if request.json_schema is not None:
            who = "router"
            text: str | GuildstackError = json.dumps(
                {"agents": [{"code": c, "confidence": 0.9} for c in self.routing]}
            )
        elif context.agent_code == CORE.code:
            who, text = "core", self.core
        else:
            who, text = "specialist", self.specialist
        self.requests.append((who, request))
        if isinstance(text, GuildstackError):
            raise text
        return Completion(text, Usage(12, 7), "scripted", "m1", latency_ms=1.0)


@dataclass
class Chat:
    uow: InMemoryUnitOfWork
    model: ChatModel
    engine: StepEngine
    turns: ChatTurns
    workspace: uuid.UUID
    member: Principal

    @property
    def world(self) -> World:
        return self.uow.world

    async def turn(self, text: str) -> tuple[list[str], Reply]:
        accepted = await self.turns.accept(self.member, self.workspace, text)
        planned = await self.turns.plan(self.member, accepted)
        deltas: list[str] = []

        async def heard(text: str) -> None:
            deltas.append(text)

        run = await self.turns.respond(self.member, accepted, planned, heard)
        return deltas, await self.turns.reply(self.member, accepted, run.id)


def build(
    model: ChatModel | None = None,
    *,
    budget: Decimal | None = Decimal("10"),
    kind: AccountKind = AccountKind.STANDARD,
) -> Chat:
    world = World()
    uow = InMemoryUnitOfWork(world, clock=Clock(START), finishers={RunKind.CHAT: ChatFinisher()})
    workspace = uuid.uuid4()
    world.workspaces[workspace] = Workspace(workspace, "Home", "home", Decimal(10), START)
    world.budgets[workspace] = budget
    uid = uuid.uuid4()
    member = Principal(uid, None, {"sub": str(uid), "role": "authenticated"})
    world.members[workspace] = {
        uid: Member(workspace, uid, None, None, Role.ANALYST, START, account_kind=kind)
    }
    model = model or ChatModel()
    registry = AgentRegistry(CATALOG, uow)
    engine = StepEngine(
        uow, registry, model, executors={RunKind.CHAT: ChatExecutor(uow, registry, model)}
    )
    turns = ChatTurns(uow, registry, AgentRouter(model), engine)
    return Chat(uow, model, engine, turns, workspace, member)


def conversation_of(chat: Chat) -> StoredConversation:
    (stored,) = chat.world.conversations.values()
    return stored


async def test_given_a_message_then_specialists_inform_one_streamed_reply_that_is_stored() -> None:
    chat = build()

    deltas, reply = await chat.turn("Improve my bakery's SEO ranking")

    stored = conversation_of(chat)
    asked, answer = stored.messages
    assert (asked.sender_kind, answer.sender_kind) == (SenderKind.USER, SenderKind.AGENT)
    assert answer.content == "".join(deltas) == "Here is your plan, in one voice."
    assert answer.reply_to == asked.id and answer.sender_id == CORE.code
    assert answer.routing is not None and answer.usage is not None
    assert answer.routing["method"] == "model"
    assert [a["code"] for a in answer.routing["agents"]] == ["seo_agent", "nicole_core"]
    assert answer.usage["output_tokens"] == 7
    assert reply.message == answer
    # The specialist was consulted and its findings reached the core assistant's prompt.
    who = [w for w, _ in chat.model.requests]
    assert who == ["router", "specialist", "core"]
    core_prompt = chat.model.requests[-1][1].messages[-1].content
    assert "use the word sourdough" in core_prompt
    events = [e.type for e in stored.events]
    assert events == [
        ConversationEventType.MESSAGE_NEW,
        ConversationEventType.AGENT_TYPING,
        ConversationEventType.MESSAGE_NEW,
        ConversationEventType.AGENT_RESPONSE_COMPLETE,
    ]
    # The exchange is queued to be remembered in the user's core memories.
    documents = [m for m, _ in chat.uow.sent if m.kind is JobKind.DOCUMENT]
    assert len(documents) == 1


class Died(BaseException):
    """The function's process ending mid-reply (nothing after it runs)."""


async def test_given_the_streaming_function_died_then_the_delayed_message_completes_the_turn() -> (
    None
):
    chat = build()
    accepted = await chat.turns.accept(chat.member, chat.workspace, "What should I cook?")
    planned = await chat.turns.plan(chat.member, accepted)

    async def dies(text: str) -> None:
        raise Died

    with pytest.raises(Died):
        await chat.turns.respond(chat.member, accepted, planned, dies)
    # Only the turn's fallback message is left, held back; the step is leased.
    (fallback,) = [(m, d) for m, d in chat.uow.sent if m.kind is JobKind.STEP]
    assert fallback[1] == FALLBACK_SECONDS
    clock = chat.uow.clock
    assert isinstance(clock, Clock)
    clock.advance(FALLBACK_SECONDS)
    with pytest.raises(StepAttemptFailed):  # the lease still holds: come back later
        await chat.engine.handle(fallback[0])
    clock.advance(LEASE_SECONDS)

    await chat.engine.handle(fallback[0])  # the worker takes over

    (stored,) = chat.world.conversations.values()
    assert [m.sender_kind for m in stored.messages] == [SenderKind.USER, SenderKind.AGENT]
    assert stored.messages[-1].content.startswith("Here is your plan")


async def test_given_the_turn_already_answered_then_its_fallback_message_changes_nothing() -> None:
    chat = build()
    await chat.turn("Plan my week")
    (fallback,) = [m for m, _ in chat.uow.sent if m.kind is JobKind.STEP]
    before = len(conversation_of(chat).messages)

    await chat.engine.handle(fallback)

    assert len(conversation_of(chat).messages) == before
    assert [w for w, _ in chat.model.requests].count("core") == 1


async def test_given_a_failing_specialist_then_the_reply_comes_without_its_findings() -> None:
    chat = build(ChatModel(specialist=InvalidInput("the specialist broke")))

    _, reply = await chat.turn("Check my SEO keywords")

    assert reply.message is not None
    assert "sourdough" not in chat.model.requests[-1][1].messages[-1].content


async def test_given_the_core_assistant_fails_then_the_turn_failure_is_recorded() -> None:
    chat = build(ChatModel(core=InvalidInput("the model refused the request")))

    deltas, reply = await chat.turn("Hello there")

    assert deltas == []
    assert reply.message is None and reply.run.status is RunStatus.FAILED
    stored = conversation_of(chat)
    assert [m.sender_kind for m in stored.messages] == [SenderKind.USER]
    failed = stored.events[-1]
    assert failed.type == ConversationEventType.TURN_FAILED
    assert "refused" in failed.payload["error"]


async def test_given_a_spent_budget_then_the_message_is_refused_before_it_is_stored() -> None:
    chat = build(budget=Decimal("0"))

    with pytest.raises(BudgetExceeded):
        await chat.turns.accept(chat.member, chat.workspace, "Hello")

    assert chat.world.conversations == {}


async def test_given_a_child_account_at_its_weekly_image_limit_then_image_prompts_are_refused() -> (
    None
):
    chat = build(kind=AccountKind.CHILD)
    for i in range(5):
        await chat.turns.accept(chat.member, chat.workspace, f"Draw a picture of cat {i}")
    # Other messages still go through; the sixth image prompt of the week does not.
    await chat.turns.accept(chat.member, chat.workspace, "Tell me about cats")

    with pytest.raises(RateLimited, match="weekly limit of 5 images"):
        await chat.turns.accept(chat.member, chat.workspace, "Draw a picture of a dog")

    images = [
        m
        for s in chat.world.conversations.values()
        for m in s.messages
        if m.type is MessageType.CHAT and m.metadata.get("image_prompt")
    ]
    assert len(images) == 5


async def test_given_a_child_account_then_the_reply_is_guided_for_a_child() -> None:
    chat = build(kind=AccountKind.CHILD)

    await chat.turn("Why is the sky blue?")

    core_request = chat.model.requests[-1][1]
    assert "child" in core_request.system.lower()


async def test_given_a_reply_that_looks_like_a_question_then_it_is_still_the_reply() -> None:
    chat = build(ChatModel(core="QUESTION: which city do you live in?"))

    _, reply = await chat.turn("Find me a bakery")

    assert reply.run.status is RunStatus.SUCCEEDED and reply.message is not None
    assert reply.message.content == "QUESTION: which city do you live in?"
