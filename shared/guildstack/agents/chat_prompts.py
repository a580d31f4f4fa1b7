"""What the assistant and its specialists are asked in a chat turn: the conversation so far
(trimmed to a budget, newest kept), what the user is remembered for, the specialists'
findings, and the guidance of the user's account kind. No I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from guildstack.domain.agents import AgentSpec
from guildstack.domain.models import ChatMessage, ModelRequest

HISTORY_CHARS = 12_000
SPECIALIST_HISTORY_CHARS = 3_000


@dataclass(frozen=True)
class Turn:
    """One earlier message of the conversation, as the prompt shows it."""

    role: Literal["user", "assistant"]
    content: str

    def as_json(self) -> dict[str, Any]:
        return {"role": self.role, "content": self.content}

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Turn:
        content = str(data.get("content", ""))
        return (
            cls("assistant", content) if data.get("role") == "assistant" else cls("user", content)
        )


def trimmed(history: Sequence[Turn], budget: int = HISTORY_CHARS) -> list[Turn]:
    """The newest turns that fit in `budget` characters, in order; starts with a user turn
    (providers want the first message to be the user's)."""
    kept: list[Turn] = []
    used = 0
    for turn in reversed(history):
        if used + len(turn.content) > budget:
            break
        kept.append(turn)
        used += len(turn.content)
    kept.reverse()
    while kept and kept[0].role != "user":
        kept.pop(0)
    return kept


def specialist_request(
    spec: AgentSpec, message: str, history: Sequence[Turn], memories: str | None
) -> ModelRequest:
    """A specialist's brief: the message, a little context, and what to hand back."""
    recent = "\n".join(
        f"{'User' if t.role == 'user' else 'Assistant'}: {t.content}"
        for t in trimmed(history, SPECIALIST_HISTORY_CHARS)
    )
    parts = [f"# The user's message\n{message}"]
    if recent:
        parts.append(f"# The conversation so far\n{recent}")
    if memories:
        parts.append(f"# What is remembered about the user\n{memories}")
    parts.append(
        "# Your part\nGive the core assistant your specialist findings for this message: "
        "concrete facts, recommendations and caveats, briefly. Do not greet the user; the "
        "core assistant writes the reply."
    )
    return ModelRequest(
        system=spec.system_prompt,
        messages=(ChatMessage("user", "\n\n".join(parts)),),
        tier=spec.model_tier,
        temperature=spec.temperature,
        max_tokens=min(spec.max_tokens, 1024),
    )


def core_request(
    spec: AgentSpec,
    message: str,
    history: Sequence[Turn],
    memories: str | None,
    findings: Mapping[str, str],
    guidance: str | None,
) -> ModelRequest:
    """The core assistant's request: the conversation as chat turns, then the user's message
    with what it may rely on (memories, specialists' findings)."""
    system = spec.system_prompt
    if guidance:
        system += f"\n\n{guidance}"
    context = []
    if memories:
        context.append(f"# What you remember about the user\n{memories}")
    for code, finding in findings.items():
        context.append(f"# Findings of the {code} specialist\n{finding}")
    last = message if not context else "\n\n".join([*context, f"# The user's message\n{message}"])
    turns = [ChatMessage(t.role, t.content) for t in trimmed(history)]
    return ModelRequest(
        system=system,
        messages=(*turns, ChatMessage("user", last)),
        tier=spec.model_tier,
        temperature=spec.temperature,
        max_tokens=spec.max_tokens,
    )
