"""What a persona is asked for one turn of a team discussion: the goal, the discussion so
far (trimmed, newest kept), the proposal on the table, any answer the user gave, and what
this turn must produce. Proposals and votes are structured (JSON schemas). No I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from guildstack.domain.agents import AgentSpec
from guildstack.domain.discussions import Turn, TurnKind
from guildstack.domain.models import ChatMessage, ModelRequest

TRANSCRIPT_CHARS = 10_000
MAX_TITLE_CHARS = 120

PROPOSAL_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 3, "maxLength": MAX_TITLE_CHARS},
        "body": {"type": "string", "minLength": 10, "maxLength": 4000},
        "objections": {
            "type": "string",
            "maxLength": 2000,
            "description": "for a revision: the objections it answers",
        },
    },
    "required": ["title", "body"],
    "additionalProperties": False,
}

VOTE_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {
        # The default is what a persona with no objection does (and what the offline
        # provider answers), so offline discussions reach consensus deterministically.
        "vote": {"enum": ["accept", "reject", "abstain"], "default": "accept"},
        "reason": {"type": "string", "minLength": 3, "maxLength": 1000},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["vote", "reason", "confidence"],
    "additionalProperties": False,
}

_RULES = (
    "You are taking part in a team discussion with a human user. Speak as yourself, in a "
    "few short paragraphs at most; address others by name when you answer them; build on "
    "what was said instead of repeating it. If the team truly cannot go on without the "
    "user, reply with one line starting with 'QUESTION:' and nothing else."
)

_TASKS: dict[TurnKind, str] = {
    TurnKind.OPEN: (
        "Open the discussion: restate the goal in one sentence, list the open questions "
        "the team must answer, and say how the discussion will go."
    ),
    TurnKind.SPEAK: "Give your view on the goal from your role: concrete points, with reasons.",
    TurnKind.PROPOSE: (
        "Make one proposal that answers the goal, drawing on the best of the discussion: a "
        "short title and a body the team can vote on."
    ),
    TurnKind.VOTE: (
        "Vote on the proposal: accept, reject or abstain, with your reason and your "
        "confidence from 0 to 1. Reject only for a problem you can name."
    ),
    TurnKind.RESOLVE: (
        "The proposal was rejected. State the objections in a sentence each, then write a "
        "revised proposal that answers them (title and body)."
    ),
    TurnKind.SUMMARIZE: (
        "Summarize the discussion so far: decisions, open issues, the next step. Be brief."
    ),
    TurnKind.DECIDE: (
        "The team could not agree within the rounds allowed. Decide: say which proposal "
        "the team goes with and why, and record the dissent fairly."
    ),
    TurnKind.CONCLUDE: (
        "Write the discussion's final summary: the outcome, the decision and its reasons, "
        "who disagreed and why, and the next steps."
    ),
}


@dataclass(frozen=True)
class Line:
    """One earlier message, as the transcript shows it."""

    speaker: str
    text: str


def transcript(lines: Sequence[Line], budget: int = TRANSCRIPT_CHARS) -> str:
    kept: list[str] = []
    used = 0
    for line in reversed(lines):
        entry = f"{line.speaker}: {line.text}"
        if used + len(entry) > budget:
            break
        kept.append(entry)
        used += len(entry)
    return "\n\n".join(reversed(kept))


def turn_request(
    persona: AgentSpec,
    turn: Turn,
    goal: str,
    lines: Sequence[Line],
    *,
    proposal: str | None = None,
    answers: Sequence[tuple[str, str]] = (),
    reason: str | None = None,
) -> ModelRequest:
    parts = [f"# The goal\n{goal}", f"# The discussion so far\n{transcript(lines) or '(none)'}"]
    if proposal:
        parts.append(f"# The proposal on the table\n{proposal}")
    for question, answer in answers:
        parts.append(f"# You asked the user\n{question}\n\n# The user answered\n{answer}")
    why = reason or turn.reason
    if why:
        parts.append(f"# Why this turn\n{why}")
    parts.append(f"# Your turn ({turn.phase.value} phase)\n{_TASKS[turn.kind]}")
    schema = {TurnKind.PROPOSE: PROPOSAL_SCHEMA, TurnKind.RESOLVE: PROPOSAL_SCHEMA}.get(
        turn.kind, VOTE_SCHEMA if turn.kind is TurnKind.VOTE else None
    )
    return ModelRequest(
        system=f"{persona.system_prompt}\n\n{_RULES}",
        messages=(ChatMessage("user", "\n\n".join(parts)),),
        tier=persona.model_tier,
        temperature=0 if schema is not None else persona.temperature,
        max_tokens=min(persona.max_tokens, 1200),
        json_schema=dict(schema) if schema is not None else None,
    )
