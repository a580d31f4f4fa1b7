"""The turns of a team discussion, on the step engine.

`DiscussionTurns` is the `discussion` kind's executor: a turn reads the discussion so far
and asks its persona (streaming a view, or structured output for a proposal or a vote).
In the transaction that records the turn, `follow` writes it into the conversation as a
typed message, moves the conversation (paused on a question, completed at the end), and
returns the next turns the facilitator's rules call for (`domain/discussions.py`), which
the engine adds to the run. A discussion whose run ends otherwise (failed or
cancelled) is closed by `run_finishers.DiscussionFinisher`.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any
from uuid import UUID

from guildstack.agents.discussion_prompts import Line, turn_request
from guildstack.domain.conversations import (
    Conversation,
    ConversationEvent,
    ConversationEventType,
    ConversationStatus,
    Message,
    MessageType,
    NewMessage,
    SenderKind,
    status_changed,
)
from guildstack.domain.discussion_results import budget_summary, outcome
from guildstack.domain.discussions import (
    DEFAULT_FACILITATOR,
    Discussion,
    DiscussionSettings,
    Said,
    Turn,
    TurnKind,
    Vote,
    next_turns,
    personas_of,
    said_of,
    tally,
    with_turns,
)
from guildstack.domain.errors import BudgetExceeded
from guildstack.domain.models import Completion, Usage
from guildstack.domain.run_graph import NewStep, RunGraph
from guildstack.domain.vocabulary import StepStatus
from guildstack.observability import logger
from guildstack.ports.memory import Embedder
from guildstack.ports.models import LanguageModel
from guildstack.ports.uow import Tx, UnitOfWork
from guildstack.services.engine import Claim, Streamer
from guildstack.services.structured import complete_json

BUDGET_OUT = "budget_exhausted"
COMPARED_TURNS = 12  # a repeat is looked for among the last turns
VECTOR_CACHE = 2000
MAX_MESSAGES = 1000
SETTLED = frozenset({StepStatus.SUCCEEDED, StepStatus.SKIPPED, StepStatus.FAILED, StepStatus.DEAD})
_TYPES = {
    TurnKind.PROPOSE: MessageType.PROPOSAL,
    TurnKind.RESOLVE: MessageType.PROPOSAL,
    TurnKind.VOTE: MessageType.VOTE,
    TurnKind.SUMMARIZE: MessageType.SUMMARY,
    TurnKind.CONCLUDE: MessageType.SUMMARY,
}


def facilitator_of(agents: Sequence[str]) -> str:
    return DEFAULT_FACILITATOR if DEFAULT_FACILITATOR in agents or not agents else agents[0]


def discussion_of(conversation: Conversation, messages: Sequence[Message]) -> Discussion:
    """The discussion so far, rebuilt from the conversation's typed messages."""
    facilitator = facilitator_of(conversation.agents)
    # A turn that asked the user is recorded twice (its question, then its answer once
    # the user replied): the latest record stands.
    by_turn = {
        s.turn.number: s
        for m in messages
        if m.sender_kind is SenderKind.AGENT
        and (s := said_of(m.metadata, m.content, m.created_at)) is not None
    }
    said = [by_turn[n] for n in sorted(by_turn)]
    return Discussion(
        facilitator=facilitator,
        personas=personas_of(conversation.agents, facilitator),
        settings=DiscussionSettings.of(conversation.settings),
        started_at=messages[0].created_at if messages else conversation.updated_at,
        said=said,
    )


class DiscussionTurns:
    asks = True  # a persona may ask the user; the conversation then waits (paused)

    def __init__(
        self, uow: UnitOfWork, model: LanguageModel, embedder: Embedder | None = None
    ) -> None:
        self._uow = uow
        self._model = model
        self._embedder = embedder
        # How close each turn came to an earlier one, from `execute` to `follow`.
        self._similarity: dict[tuple[UUID, str, int], float] = {}
        self._vector_cache: OrderedDict[str, Sequence[float]] = OrderedDict()

    def prepare(self, claim: Claim) -> None:
        return None  # the request depends on what was said by the time the turn runs

    async def execute(self, claim: Claim, stream: Streamer) -> tuple[Completion, str]:
        turn = Turn.parse(claim.inputs.prompt)
        conversation_id = UUID(claim.run_context["conversation_id"])
        async with self._uow.system("read a discussion") as tx:
            conversation = await tx.conversations.get(claim.workspace_id, conversation_id)
            messages = await tx.conversations.messages(
                claim.workspace_id, conversation_id, 0, MAX_MESSAGES
            )
        lines = [Line(_speaker(m), m.content) for m in messages]
        request = turn_request(
            claim.agent,
            turn,
            conversation.goal or claim.run_input,
            lines,
            proposal=_proposal_text(messages, turn),
            answers=claim.inputs.answers,
        )
        try:
            if request.json_schema is not None:
                result = await complete_json(self._model, request, claim.context())
                completion, tail = result.completion, ""
            else:
                completion, tail = await stream(request)
        except BudgetExceeded as exc:
            logger.info("a discussion turn is over budget", extra={"turn": turn.key})
            return _budget_out(str(exc)), ""
        if turn.kind is TurnKind.SPEAK:
            said = [m.content for m in messages if m.sender_kind is SenderKind.AGENT]
            await self._compare(claim, completion.text, said)
        return completion, tail

    async def _compare(self, claim: Claim, text: str, earlier: Sequence[str]) -> None:
        """How close the turn came to the closest of the last turns (embeddings; skipped
        when no embedder is configured or it fails: a repeat then goes unnoticed). Texts'
        vectors are kept per process, so a turn embeds little more than its own text."""
        recent = [t for t in earlier[-COMPARED_TURNS:] if t.strip()]
        if self._embedder is None or not recent or not text.strip():
            return
        try:
            vectors = await self._vectors([text, *recent])
        except Exception:  # noqa: BLE001 - the check is optional; the turn is not
            logger.warning("similarity check unavailable for a discussion turn")
            return
        closest = max(_cosine(vectors[0], v) for v in vectors[1:])
        self._similarity[claim.run_id, claim.step_key, claim.attempt] = closest

    async def _vectors(self, texts: Sequence[str]) -> list[Sequence[float]]:
        assert self._embedder is not None  # noqa: S101 - checked by the caller
        missing = list(dict.fromkeys(t for t in texts if t not in self._vector_cache))
        if missing:
            for t, vector in zip(missing, await self._embedder.embed(missing), strict=True):
                self._vector_cache[t] = vector
                if len(self._vector_cache) > VECTOR_CACHE:
                    self._vector_cache.popitem(last=False)
        return [self._vector_cache[t] for t in texts]

    async def follow(
        self,
        tx: Tx,
        graph: RunGraph,
        claim: Claim,
        completion: Completion,
        question: str | None,
    ) -> Sequence[NewStep]:
        turn = Turn.parse(claim.inputs.prompt)
        workspace_id = claim.workspace_id
        conversation_id = UUID(claim.run_context["conversation_id"])
        conversation = await tx.conversations.get(workspace_id, conversation_id)
        messages = await tx.conversations.messages(workspace_id, conversation_id, 0, MAX_MESSAGES)
        discussion = discussion_of(conversation, messages)
        similarity = self._similarity.pop((claim.run_id, claim.step_key, claim.attempt), 0.0)
        said = _said(turn, completion, question, tx.now)
        said = replace(said, repeat=similarity >= discussion.settings.similarity_threshold)
        discussion = with_turns(discussion, [said])
        in_flight = any(
            s.status not in SETTLED for k, s in graph.steps.items() if k != claim.step_key
        )
        upcoming = [] if in_flight else next_turns(discussion, tx.now)
        message = _message(claim, said, completion, question)
        events = [
            message.announced(),
            ConversationEvent(
                ConversationEventType.AGENT_RESPONSE_COMPLETE,
                {"agent": turn.agent, "turn": turn.number, "kind": turn.kind.value},
            ),
        ]
        changed, extra = conversation, list[NewMessage]()
        if question is not None:
            changed = replace(conversation, status=ConversationStatus.PAUSED)
        elif turn.kind is TurnKind.VOTE and not in_flight:
            events += _consensus(discussion, turn)
        if turn.kind is TurnKind.CONCLUDE or (said.budget_out and not in_flight):
            changed, extra = _concluded(conversation, discussion, said, completion)
        if changed.status is not conversation.status:
            events.append(status_changed(conversation.status, changed.status))
        events += [m.announced() for m in extra]
        events += [
            ConversationEvent(
                ConversationEventType.AGENT_TYPING,
                {"agent": t.agent, "turn": t.number, "kind": t.kind.value},
            )
            for t in upcoming
        ]
        await tx.conversations.append(workspace_id, conversation_id, [message, *extra], events)
        if changed != conversation:
            await tx.conversations.save(changed)
        return [NewStep(t.key, t.agent, t.prompt()) for t in upcoming]


def _concluded(
    conversation: Conversation, d: Discussion, said: Said, completion: Completion
) -> tuple[Conversation, list[NewMessage]]:
    """The conversation completed with its final summary and result; when the budget ran
    out, the summary is written here, without a model, and posted as a system message."""
    if not said.budget_out:
        return replace(
            conversation,
            status=ConversationStatus.COMPLETED,
            final_summary=completion.text,
            result=outcome(d),
        ), []
    summary = budget_summary(d)
    note = NewMessage(SenderKind.SYSTEM, "discussion", MessageType.SUMMARY, summary)
    return replace(
        conversation,
        status=ConversationStatus.COMPLETED,
        final_summary=summary,
        result={**outcome(d), "reason": "the budget ran out"},
    ), [note]


def _said(turn: Turn, completion: Completion, question: str | None, now: Any) -> Said:
    if completion.stop_reason == BUDGET_OUT:
        return Said(turn, now, completion.text, budget_out=True)
    if question is not None:
        return Said(turn, now, question, asked=True)
    value = _json(completion.text) if turn.kind in (TurnKind.PROPOSE, TurnKind.RESOLVE,
                                                    TurnKind.VOTE) else {}  # fmt: skip
    if turn.kind is TurnKind.VOTE:
        vote = Vote(value.get("vote", "abstain"))
        confidence = float(value.get("confidence", 0))
        return Said(turn, now, str(value.get("reason", "")), vote=vote, confidence=confidence)
    if turn.kind in (TurnKind.PROPOSE, TurnKind.RESOLVE):
        title = str(value.get("title", f"Proposal {turn.proposal}"))
        body = str(value.get("body", completion.text))
        objections = value.get("objections")
        text = f"{title}\n\n{body}" + (
            f"\n\nObjections answered: {objections}" if objections else ""
        )
        return Said(turn, now, text, title=title)
    return Said(turn, now, completion.text)


def _message(claim: Claim, said: Said, completion: Completion, question: str | None) -> NewMessage:
    turn = said.turn
    if said.vote is not None:
        content = f"{said.vote.value} ({said.confidence:.2f}): {said.text}"
    else:
        content = said.text or "(no reply)"
    usage = {
        "provider": completion.provider,
        "model": completion.model,
        "input_tokens": completion.usage.input_tokens,
        "output_tokens": completion.usage.output_tokens,
        "cost_usd": float(completion.cost_usd),
    }
    return NewMessage(
        SenderKind.AGENT,
        turn.agent,
        MessageType.QUESTION_TO_USER
        if question is not None
        else _TYPES.get(turn.kind, MessageType.DISCUSSION),
        content,
        requires_user_response=question is not None,
        usage=usage,
        metadata={**said.metadata(), "run_id": str(claim.run_id), "step": claim.step_key},
    )


def _consensus(d: Discussion, vote: Turn) -> list[ConversationEvent]:
    proposal = vote.proposal or 0
    votes = d.votes_on(proposal)
    if not set(votes) >= set(d.personas):
        return []
    result = tally(proposal, votes, d.settings.consensus_rule)
    if not result.accepted:
        return []
    chosen = next((p for p in d.proposals() if p.turn.proposal == proposal), None)
    return [
        ConversationEvent(
            ConversationEventType.CONSENSUS_REACHED,
            {
                "proposal": {"number": proposal, "title": chosen.title if chosen else None},
                "tally": result.as_json(),
                "rule": d.settings.consensus_rule.value,
            },
        )  # fmt: skip
    ]


def _speaker(m: Message) -> str:
    if m.sender_kind is SenderKind.USER:
        return "User"
    return m.sender_id


def _proposal_text(messages: Sequence[Message], turn: Turn) -> str | None:
    if turn.kind not in (TurnKind.VOTE, TurnKind.RESOLVE, TurnKind.DECIDE, TurnKind.CONCLUDE):
        return None
    proposals = [m for m in messages if m.type is MessageType.PROPOSAL]
    if turn.kind is TurnKind.VOTE:
        proposals = [
            m for m in proposals if (m.metadata.get("turn") or {}).get("proposal") == turn.proposal
        ]
    return proposals[-1].content if proposals else None


def _budget_out(detail: str) -> Completion:
    return Completion(
        text=f"(The budget could not pay for this turn: {detail})",
        usage=Usage(0, 0),
        provider="none",
        model="none",
        latency_ms=0.0,
        stop_reason=BUDGET_OUT,
    )


def _json(text: str) -> Mapping[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
