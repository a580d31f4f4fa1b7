"""What a team discussion came to: its result (why it ended, the proposal chosen, every
tally, the dissent), the final summary written without a model when the budget ran out,
and its analytics. No I/O."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from guildstack.domain.discussions import Discussion, TurnKind

__all__ = ["analytics", "budget_summary", "outcome"]


def outcome(d: Discussion) -> dict[str, Any]:
    """The discussion's result: why it ended, the accepted proposal (if any), every tally,
    and the dissent — the personas who voted against the proposal that was accepted or
    decided."""
    tallies = d.tallies()
    accepted = next((t for t in reversed(tallies) if t.accepted), None)
    proposals = {p.turn.proposal: p for p in d.proposals()}
    final = accepted or (tallies[-1] if tallies else None)
    chosen = proposals.get(final.proposal) if final else None
    conclusion = next((s for s in reversed(d.said) if s.turn.kind is TurnKind.CONCLUDE), None)
    return {
        "reason": conclusion.turn.reason if conclusion else None,
        "consensus": accepted is not None,
        "proposal": (
            {
                "number": chosen.turn.proposal,
                "title": chosen.title,
                "author": chosen.turn.agent,
                "round": chosen.turn.round,
                "text": chosen.text,
            }
            if chosen
            else None
        ),  # fmt: skip
        "tallies": [t.as_json() for t in tallies],
        "dissent": sorted(a for a, v in (final.votes if final else {}).items() if v == "reject"),
        "turns": d.turns,
        "rounds": max((p.turn.round for p in d.proposals()), default=0),
    }


def budget_summary(d: Discussion) -> str:
    """The final summary written without a model when the budget ran out."""
    lines = [
        f"The discussion ended after {d.turns} turns: the budget could not pay for more.",
    ]
    proposals = d.proposals()
    if proposals:
        last = proposals[-1]
        lines.append(
            f"The last proposal was #{last.turn.proposal}: {last.title or last.text[:200]}."
        )
        votes = d.votes_on(last.turn.proposal or 0)
        if votes:
            cast = ", ".join(f"{agent} {vote.value}" for agent, vote in votes.items())
            lines.append(f"Votes so far: {cast}.")
    else:
        lines.append("No proposal was made.")
    return " ".join(lines)


def analytics(
    d: Discussion, usage: Mapping[str, Mapping[str, float]], ended_at: datetime | None
) -> dict[str, Any]:
    """Per persona: turns, tokens and cost (`usage`: persona → summed usage); rounds, the
    votes, and how long consensus took (None without one)."""
    turns = Counter(s.turn.agent for s in d.said)
    tallies = d.tallies()
    accepted = next((t for t in tallies if t.accepted), None)
    consensus_at = None
    if accepted is not None:
        consensus_at = max(
            s.at
            for s in d.said
            if s.turn.kind is TurnKind.VOTE and s.turn.proposal == accepted.proposal
        )
    personas = {
        persona: {
            "turns": turns.get(persona, 0),
            "input_tokens": int(usage.get(persona, {}).get("input_tokens", 0)),
            "output_tokens": int(usage.get(persona, {}).get("output_tokens", 0)),
            "cost_usd": float(usage.get(persona, {}).get("cost_usd", 0)),
        }
        for persona in d.personas
    }
    return {
        "turns": d.turns,
        "personas": personas,
        "cost_usd": round(sum(p["cost_usd"] for p in personas.values()), 10),
        "rounds": max((p.turn.round for p in d.proposals()), default=0),
        "proposals": len(d.proposals()),
        "votes": [t.as_json() for t in tallies],
        "seconds_to_consensus": (
            (consensus_at - d.started_at).total_seconds() if consensus_at else None
        ),
        "duration_seconds": (ended_at - d.started_at).total_seconds() if ended_at else None,
    }
