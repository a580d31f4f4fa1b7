"""The facilitator's rules (`domain/discussions.py`): phases in order, turn-taking, votes
side by side, the consensus rules, conflict resolution up to the round limit, summaries,
stuck detection, limits, and settings validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from guildstack.domain.discussion_results import outcome
from guildstack.domain.discussions import (
    ConsensusRule,
    Discussion,
    DiscussionSettings,
    Phase,
    Said,
    Turn,
    TurnKind,
    Vote,
    next_turns,
    said_of,
    tally,
)
from guildstack.domain.errors import InvalidInput

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
PM, ARCH, QA = "project_manager", "technical_architect", "quality_assurance"


def discussion(**settings: object) -> Discussion:
    return Discussion(PM, (PM, ARCH, QA), DiscussionSettings.of(settings), T0)


def play(d: Discussion, *said: Said) -> Discussion:
    d.said.extend(said)
    return d


def done(turn: Turn, text: str = "", **kw: object) -> Said:
    return Said(turn, T0 + timedelta(seconds=turn.number), text, **kw)  # type: ignore[arg-type]


def run_until_proposal(d: Discussion) -> Turn:
    """Play the turns the rules ask for, with plain views, until a proposal is asked."""
    while True:
        (turn,) = next_turns(d, T0)
        if turn.kind is TurnKind.PROPOSE:
            return turn
        play(d, done(turn, f"{turn.agent} speaks"))


def vote_all(d: Discussion, votes: dict[str, Vote]) -> list[Turn]:
    turns = next_turns(d, T0)
    assert [t.kind for t in turns] == [TurnKind.VOTE] * 3
    for t in turns:
        play(d, done(t, "because", vote=votes[t.agent], confidence=0.8))
    return next_turns(d, T0)


def test_given_a_new_discussion_then_the_phases_go_in_order_and_everyone_speaks() -> None:
    d = discussion(summary_every=50)

    turns = []
    while True:
        (turn,) = next_turns(d, T0)
        turns.append(turn)
        if turn.kind is TurnKind.PROPOSE:
            break
        play(d, done(turn, "a view"))

    assert [(t.kind, t.agent, t.phase) for t in turns] == [
        (TurnKind.OPEN, PM, Phase.INITIALIZATION),
        (TurnKind.SPEAK, ARCH, Phase.EXPLORATION),
        (TurnKind.SPEAK, QA, Phase.EXPLORATION),
        (TurnKind.SPEAK, ARCH, Phase.DISCUSSION),
        (TurnKind.SPEAK, QA, Phase.DISCUSSION),
        (TurnKind.PROPOSE, PM, Phase.CONSENSUS),
    ]
    assert [t.number for t in turns] == list(range(1, 7))


def test_given_a_persona_addressed_by_name_then_it_speaks_next() -> None:
    d = discussion(summary_every=50)
    play(d, done(Turn(1, TurnKind.OPEN, PM, Phase.INITIALIZATION)))
    play(d, done(Turn(2, TurnKind.SPEAK, ARCH, Phase.EXPLORATION)))
    play(
        d, done(Turn(3, TurnKind.SPEAK, QA, Phase.EXPLORATION), "technical architect, is it safe?")
    )

    (turn,) = next_turns(d, T0)

    assert (turn.agent, turn.phase) == (ARCH, Phase.DISCUSSION)


def test_given_a_proposal_then_every_persona_votes_and_a_two_thirds_accept_concludes() -> None:
    d = discussion(summary_every=50)
    proposal = run_until_proposal(d)
    play(d, done(proposal, "Plan A", title="Plan A"))

    after = vote_all(d, {PM: Vote.ACCEPT, ARCH: Vote.ACCEPT, QA: Vote.REJECT})

    assert [(t.kind, t.reason) for t in after] == [(TurnKind.CONCLUDE, "consensus")]
    play(d, done(after[0], "We go with plan A."))
    result = outcome(d)
    assert result["consensus"] and result["dissent"] == [QA]
    assert result["proposal"]["title"] == "Plan A"
    assert next_turns(d, T0) == []


@pytest.mark.parametrize(
    ("rule", "accepts", "accepted"),
    [
        (ConsensusRule.MAJORITY, 2, True),
        (ConsensusRule.MAJORITY, 1, False),
        (ConsensusRule.TWO_THIRDS, 2, True),
        (ConsensusRule.UNANIMOUS, 2, False),
        (ConsensusRule.UNANIMOUS, 3, True),
    ],
)
def test_given_each_rule_then_the_tally_decides(
    rule: ConsensusRule, accepts: int, accepted: bool
) -> None:
    voters = [PM, ARCH, QA]
    votes = {v: Vote.ACCEPT if i < accepts else Vote.REJECT for i, v in enumerate(voters)}

    assert tally(1, votes, rule).accepted is accepted


def test_given_only_abstentions_then_nothing_is_accepted() -> None:
    assert not tally(1, {PM: Vote.ABSTAIN, ARCH: Vote.ABSTAIN}, ConsensusRule.MAJORITY).accepted


def test_given_rejections_then_the_facilitator_revises_until_the_rounds_run_out_then_decides() -> (
    None
):
    d = discussion(summary_every=50, max_rounds=1, consensus_rule="unanimous")
    proposal = run_until_proposal(d)
    play(d, done(proposal, "Plan A", title="Plan A"))

    (resolve,) = vote_all(d, {PM: Vote.ACCEPT, ARCH: Vote.ACCEPT, QA: Vote.REJECT})
    assert (resolve.kind, resolve.round, resolve.proposal) == (TurnKind.RESOLVE, 1, 2)
    play(d, done(resolve, "Plan B", title="Plan B"))
    (decide,) = vote_all(d, {PM: Vote.ACCEPT, ARCH: Vote.ACCEPT, QA: Vote.REJECT})
    assert decide.kind is TurnKind.DECIDE
    play(d, done(decide, "We go with plan B."))
    (conclude,) = next_turns(d, T0)

    assert conclude.kind is TurnKind.CONCLUDE and conclude.reason == "the facilitator decided"
    play(d, done(conclude, "Plan B, with QA's dissent."))
    result = outcome(d)
    assert not result["consensus"] and result["dissent"] == [QA] and result["rounds"] == 1
    assert [t["accepted"] for t in result["tallies"]] == [False, False]


def test_given_many_turns_then_the_facilitator_summarizes_every_n() -> None:
    d = discussion(summary_every=3)
    kinds = []
    for _ in range(5):
        (turn,) = next_turns(d, T0)
        kinds.append(turn.kind)
        play(d, done(turn, "x"))

    assert kinds[:4] == [TurnKind.OPEN, TurnKind.SPEAK, TurnKind.SPEAK, TurnKind.SUMMARIZE]


def test_given_no_progress_for_k_turns_then_the_facilitator_steps_in_with_a_proposal() -> None:
    d = Discussion(
        PM, (PM, ARCH, QA, "creative_strategist", "resource_coordinator"),
        DiscussionSettings.of({"stuck_turns": 2, "summary_every": 50}), T0,
    )  # fmt: skip
    for _ in range(7):  # open, four views, two turns of discussion
        (turn,) = next_turns(d, T0)
        play(d, done(turn, "the same old point"))

    (turn,) = next_turns(d, T0)

    assert turn.kind is TurnKind.PROPOSE and turn.agent == PM
    assert turn.reason is not None and turn.reason.startswith("stuck")


def test_given_a_repeated_turn_then_the_facilitator_steps_in_at_once() -> None:
    d = discussion(summary_every=50)
    for _ in range(3):
        (turn,) = next_turns(d, T0)
        play(d, done(turn, "a view"))
    (turn,) = next_turns(d, T0)
    play(d, done(turn, "a view again", repeat=True))

    (step_in,) = next_turns(d, T0)

    assert step_in.kind is TurnKind.PROPOSE and "repeated" in (step_in.reason or "")


def test_given_the_turn_limit_or_the_clock_then_the_discussion_concludes_saying_why() -> None:
    d = discussion(max_turns=4, summary_every=50)
    for _ in range(4):
        (turn,) = next_turns(d, T0)
        play(d, done(turn, "x"))
    (by_turns,) = next_turns(d, T0)
    late = discussion(max_minutes=5)
    play(late, done(Turn(1, TurnKind.OPEN, PM, Phase.INITIALIZATION)))
    (by_clock,) = next_turns(late, T0 + timedelta(minutes=6))

    assert by_turns.kind is TurnKind.CONCLUDE and "turn limit" in (by_turns.reason or "")
    assert by_clock.kind is TurnKind.CONCLUDE and "time limit" in (by_clock.reason or "")


def test_given_a_question_to_the_user_or_a_spent_budget_then_nothing_follows() -> None:
    asked = discussion()
    play(asked, done(Turn(1, TurnKind.OPEN, PM, Phase.INITIALIZATION), "Which city?", asked=True))
    broke = discussion()
    play(broke, done(Turn(1, TurnKind.OPEN, PM, Phase.INITIALIZATION), budget_out=True))

    assert next_turns(asked, T0) == [] and next_turns(broke, T0) == []


def test_given_a_turn_then_its_message_metadata_reads_back() -> None:
    said = done(Turn(7, TurnKind.VOTE, QA, Phase.CONSENSUS, 2, 1), "risky", vote=Vote.REJECT,
                confidence=0.9, repeat=True)  # fmt: skip

    assert said_of(said.metadata(), "risky", said.at) == said
    assert said_of({"other": 1}, "x", T0) is None


@pytest.mark.parametrize(
    "settings",
    [
        {"consensus_rule": "most"},
        {"max_turns": 0},
        {"max_turns": 2.5},
        {"similarity_threshold": 2},
        {"summary_every": True},
        {"colour": "blue"},
    ],
)
def test_given_bad_settings_then_a_422_names_them(settings: dict[str, object]) -> None:
    with pytest.raises(InvalidInput) as caught:
        DiscussionSettings.of(settings)

    assert caught.value.errors[0]["loc"][:2] == ["body", "settings"]
