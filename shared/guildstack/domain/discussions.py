"""Team discussions: the facilitator's rules, as a function of what has been said.

A discussion is a run of kind `discussion` whose steps are its turns. Each turn's outcome
becomes a typed message of the conversation (with the turn in its metadata), and
`next_turns(discussion)` — the facilitator's rules — decides what comes next from those
messages alone: the facilitator opens (initialization); every persona gives its view
(exploration); they discuss, the one addressed or who objected first, then whoever has not
spoken (discussion); a proposal is made and every persona votes on it, side by side
(consensus). A proposal the rule rejects goes to conflict resolution — the facilitator
states the objections and revises it — up to `max_rounds`, after which the facilitator
decides and the dissent is recorded. A summary comes every `summary_every` turns and at the
end. A discussion stuck (no proposal or vote change in `stuck_turns` turns, or a turn that
repeats an earlier one) gets the facilitator's intervention: a proposal to decide on. The
turn limit and the wall-clock limit end it with a summary saying why.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from guildstack.domain.discussion_settings import ConsensusRule, DiscussionSettings

__all__ = [
    "DEFAULT_FACILITATOR",
    "ConsensusRule",
    "Discussion",
    "DiscussionSettings",
    "Phase",
    "Tally",
    "Turn",
    "TurnKind",
    "Vote",
    "next_turns",
    "personas_of",
    "said_of",
    "tally",
]

DEFAULT_FACILITATOR = "project_manager"


class Phase(StrEnum):
    INITIALIZATION = "initialization"
    EXPLORATION = "exploration"
    DISCUSSION = "discussion"
    CONSENSUS = "consensus"
    CONCLUDED = "concluded"


class TurnKind(StrEnum):
    OPEN = "open"  # the facilitator restates the goal and the open questions
    SPEAK = "speak"  # a persona's contribution
    PROPOSE = "propose"  # a proposal to vote on (structured)
    VOTE = "vote"  # accept / reject / abstain, with a reason and a confidence (structured)
    RESOLVE = "resolve"  # the facilitator names the objections and revises the proposal
    SUMMARIZE = "summarize"  # the facilitator's summary so far
    DECIDE = "decide"  # the facilitator decides when the rounds are spent
    CONCLUDE = "conclude"  # the final summary


class Vote(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    ABSTAIN = "abstain"


@dataclass(frozen=True)
class Turn:
    """One step of the discussion: who does what, in which phase. Its JSON is the step's
    prompt; its number makes the step's key."""

    number: int
    kind: TurnKind
    agent: str
    phase: Phase
    proposal: int | None = None  # the proposal voted on, made or revised
    round: int = 0  # 0 for a first proposal, n for its n-th revision
    reason: str | None = None  # why the facilitator steps in or the discussion ends

    @property
    def key(self) -> str:
        return f"t{self.number}"

    def as_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "kind": self.kind.value,
            "agent": self.agent,
            "phase": self.phase.value,
            "proposal": self.proposal,
            "round": self.round,
            "reason": self.reason,
        }

    def prompt(self) -> str:
        return json.dumps(self.as_json())

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Turn:
        return cls(
            number=int(raw["number"]),
            kind=TurnKind(raw["kind"]),
            agent=str(raw["agent"]),
            phase=Phase(raw["phase"]),
            proposal=raw.get("proposal"),
            round=int(raw.get("round") or 0),
            reason=raw.get("reason"),
        )

    @classmethod
    def parse(cls, prompt: str | None) -> Turn:
        if not prompt:
            raise ValueError("a discussion step carries its turn as JSON")
        return cls.of(json.loads(prompt))


@dataclass(frozen=True)
class Said:
    """A turn as the conversation recorded it (the message's `turn` metadata)."""

    turn: Turn
    at: datetime
    text: str = ""
    vote: Vote | None = None
    confidence: float | None = None
    title: str | None = None  # a proposal's
    repeat: bool = False  # the text nearly repeats an earlier turn
    asked: bool = False  # the turn asked the user a question
    budget_out: bool = False  # the budget could not pay for the turn

    def metadata(self) -> dict[str, Any]:
        """What the turn's message keeps in its `metadata` (`said_of` reads it back)."""
        record: dict[str, Any] = {"turn": self.turn.as_json()}
        for name in ("vote", "confidence", "title"):
            value = getattr(self, name)
            if value is not None:
                record[name] = value.value if isinstance(value, Vote) else value
        for flag in ("repeat", "asked", "budget_out"):
            if getattr(self, flag):
                record[flag] = True
        return record


@dataclass(frozen=True)
class Tally:
    proposal: int
    accept: int
    reject: int
    abstain: int
    accepted: bool
    votes: Mapping[str, str]  # persona → vote

    def as_json(self) -> dict[str, Any]:
        return {
            "proposal": self.proposal,
            "accept": self.accept,
            "reject": self.reject,
            "abstain": self.abstain,
            "accepted": self.accepted,
            "votes": dict(self.votes),
        }


def tally(proposal: int, votes: Mapping[str, Vote], rule: ConsensusRule) -> Tally:
    """Abstentions do not count as votes cast; with none cast, nothing is accepted."""
    counts = Counter(votes.values())
    accept, reject = counts[Vote.ACCEPT], counts[Vote.REJECT]
    cast = accept + reject
    if cast == 0:
        accepted = False
    elif rule is ConsensusRule.UNANIMOUS:
        accepted = reject == 0
    elif rule is ConsensusRule.TWO_THIRDS:
        accepted = 3 * accept >= 2 * cast
    else:
        accepted = 2 * accept > cast
    return Tally(
        proposal,
        accept,
        reject,
        counts[Vote.ABSTAIN],
        accepted,
        {agent: vote.value for agent, vote in votes.items()},
    )


@dataclass
class Discussion:
    """The discussion so far: its participants, settings and turns, in order."""

    facilitator: str
    personas: tuple[str, ...]  # every participant, the facilitator included
    settings: DiscussionSettings
    started_at: datetime
    said: list[Said] = field(default_factory=list)

    @property
    def speakers(self) -> tuple[str, ...]:
        """Who gives views in exploration and discussion (everyone but the facilitator)."""
        others = tuple(p for p in self.personas if p != self.facilitator)
        return others or (self.facilitator,)

    @property
    def last(self) -> Said | None:
        return self.said[-1] if self.said else None

    @property
    def turns(self) -> int:
        return len(self.said)

    @property
    def concluded(self) -> bool:
        return any(s.turn.kind is TurnKind.CONCLUDE for s in self.said)

    @property
    def budget_out(self) -> bool:
        return any(s.budget_out for s in self.said)

    def spoke_in(self, phase: Phase) -> set[str]:
        return {
            s.turn.agent
            for s in self.said
            if s.turn.phase is phase and s.turn.kind is TurnKind.SPEAK
        }

    def proposals(self) -> list[Said]:
        return [s for s in self.said if s.turn.kind in (TurnKind.PROPOSE, TurnKind.RESOLVE)]

    def votes_on(self, proposal: int) -> dict[str, Vote]:
        return {
            s.turn.agent: s.vote
            for s in self.said
            if s.turn.kind is TurnKind.VOTE and s.turn.proposal == proposal and s.vote is not None
        }

    def tallies(self) -> list[Tally]:
        """The tally of each proposal every persona has voted on."""
        done = []
        for p in self.proposals():
            number = p.turn.proposal or 0
            votes = self.votes_on(number)
            if set(votes) >= set(self.personas):
                done.append(tally(number, votes, self.settings.consensus_rule))
        return done

    def stuck(self) -> str | None:
        """Why the discussion is stuck, if it is."""
        last = self.last
        if last is not None and last.repeat:
            return f"{last.turn.agent} repeated an earlier point"
        progress = max(
            (
                i
                for i, s in enumerate(self.said)
                if s.turn.kind in (TurnKind.PROPOSE, TurnKind.RESOLVE, TurnKind.VOTE)
            ),
            default=-1,
        )
        discussing = [s for s in self.said[progress + 1 :] if s.turn.phase is Phase.DISCUSSION]
        if len(discussing) >= self.settings.stuck_turns:
            return f"no proposal or vote in {len(discussing)} turns"
        return None

    def since_summary(self) -> int:
        count = 0
        for s in reversed(self.said):
            if s.turn.kind is TurnKind.SUMMARIZE:
                break
            count += 1
        return count


def next_turns(d: Discussion, now: datetime) -> list[Turn]:
    """What comes next once nothing is in flight: one turn, or a vote per persona; none
    when the discussion has concluded, ran out of budget, or waits for the user."""
    last = d.last
    if d.concluded or d.budget_out or (last is not None and last.asked):
        return []
    number = max((s.turn.number for s in d.said), default=0) + 1
    if last is None:
        return [Turn(number, TurnKind.OPEN, d.facilitator, Phase.INITIALIZATION)]
    if last.turn.kind is TurnKind.DECIDE:
        return [_conclude(d, number, "the facilitator decided")]
    if d.turns >= d.settings.max_turns:
        return [_conclude(d, number, f"the turn limit ({d.settings.max_turns}) was reached")]
    if now - d.started_at >= timedelta(minutes=d.settings.max_minutes):
        return [_conclude(d, number, f"the time limit ({d.settings.max_minutes} min) was reached")]
    if last.turn.kind in (TurnKind.PROPOSE, TurnKind.RESOLVE):
        return [
            Turn(number + i, TurnKind.VOTE, p, Phase.CONSENSUS, last.turn.proposal, last.turn.round)
            for i, p in enumerate(d.personas)
        ]
    if last.turn.kind is TurnKind.VOTE:
        return _after_votes(d, number, last.turn)
    if d.since_summary() >= d.settings.summary_every and last.turn.kind is not TurnKind.SUMMARIZE:
        return [Turn(number, TurnKind.SUMMARIZE, d.facilitator, last.turn.phase)]
    return [_next_view(d, number)]


def _next_view(d: Discussion, number: int) -> Turn:
    """Exploration until every speaker has given a view, then discussion until each has
    spoken once more (the one addressed or who objected first), then a proposal."""
    explored = d.spoke_in(Phase.EXPLORATION)
    for persona in d.speakers:
        if persona not in explored:
            return Turn(number, TurnKind.SPEAK, persona, Phase.EXPLORATION)
    reason = d.stuck()
    if reason is not None:
        return Turn(number, TurnKind.PROPOSE, d.facilitator, Phase.CONSENSUS, _proposal_no(d), 0,
                    f"stuck: {reason}")  # fmt: skip
    discussed = d.spoke_in(Phase.DISCUSSION)
    waiting = [p for p in _first_up(d) if p not in discussed]
    waiting += [p for p in d.speakers if p not in discussed and p not in waiting]
    if waiting:
        return Turn(number, TurnKind.SPEAK, waiting[0], Phase.DISCUSSION)
    return Turn(number, TurnKind.PROPOSE, d.facilitator, Phase.CONSENSUS, _proposal_no(d))


def _first_up(d: Discussion) -> list[str]:
    """Those addressed by name in the last turn, then those who objected to a proposal."""
    last = d.last
    addressed = []
    if last is not None:
        text = last.text.lower()
        addressed = [p for p in d.speakers if p != last.turn.agent and _named(p, text)]
    objectors = [
        s.turn.agent
        for s in reversed(d.said)
        if s.turn.kind is TurnKind.VOTE and s.vote is Vote.REJECT
    ]
    return list(dict.fromkeys([*addressed, *objectors]))


def _named(persona: str, text: str) -> bool:
    return persona.lower() in text or persona.replace("_", " ").lower() in text


def _after_votes(d: Discussion, number: int, vote: Turn) -> list[Turn]:
    proposal = vote.proposal or 0
    votes = d.votes_on(proposal)
    if not set(votes) >= set(d.personas):
        return []  # a persona's vote is still missing (it failed, or was skipped)
    result = tally(proposal, votes, d.settings.consensus_rule)
    if result.accepted:
        return [_conclude(d, number, "consensus")]
    if vote.round < d.settings.max_rounds:
        return [
            Turn(number, TurnKind.RESOLVE, d.facilitator, Phase.CONSENSUS, _proposal_no(d),
                 vote.round + 1)
        ]  # fmt: skip
    return [Turn(number, TurnKind.DECIDE, d.facilitator, Phase.CONSENSUS, proposal, vote.round)]


def _proposal_no(d: Discussion) -> int:
    return len(d.proposals()) + 1


def _conclude(d: Discussion, number: int, reason: str) -> Turn:
    last_proposal = d.proposals()[-1].turn.proposal if d.proposals() else None
    return Turn(number, TurnKind.CONCLUDE, d.facilitator, Phase.CONCLUDED, last_proposal, 0, reason)


def with_turns(d: Discussion, said: Iterable[Said]) -> Discussion:
    """The discussion with these turns recorded (a turn recorded again replaces itself)."""
    new = list(said)
    again = {s.turn.number for s in new}
    return replace(d, said=[*(s for s in d.said if s.turn.number not in again), *new])


def personas_of(agents: Sequence[str], facilitator: str = DEFAULT_FACILITATOR) -> tuple[str, ...]:
    """The participants: the conversation's agents, the facilitator first."""
    ordered = [facilitator, *(a for a in agents if a != facilitator)]
    return tuple(dict.fromkeys(ordered))


def said_of(metadata: Mapping[str, Any], text: str, at: datetime) -> Said | None:
    """A turn back from its message's metadata; None for a message that is not a turn."""
    raw = metadata.get("turn")
    if not isinstance(raw, Mapping):
        return None
    vote = metadata.get("vote")
    return Said(
        turn=Turn.of(raw),
        at=at,
        text=text,
        vote=Vote(vote) if vote else None,
        confidence=metadata.get("confidence"),
        title=metadata.get("title"),
        repeat=bool(metadata.get("repeat")),
        asked=bool(metadata.get("asked")),
        budget_out=bool(metadata.get("budget_out")),
    )
