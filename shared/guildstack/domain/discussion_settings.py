"""A discussion's rules, set per conversation: how consensus is decided, how often the
facilitator summarizes, and the limits that end it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

from guildstack.domain.errors import InvalidInput

__all__ = ["ConsensusRule", "DiscussionSettings"]


class ConsensusRule(StrEnum):
    MAJORITY = "majority"  # more accepts than half of the votes cast
    TWO_THIRDS = "two_thirds"  # at least two thirds of the votes cast
    UNANIMOUS = "unanimous"  # every vote cast accepts


@dataclass(frozen=True)
class DiscussionSettings:
    """Per conversation (its `settings`); every field has a default."""

    consensus_rule: ConsensusRule = ConsensusRule.TWO_THIRDS
    summary_every: int = 8
    max_turns: int = 40
    max_rounds: int = 2
    stuck_turns: int = 4
    similarity_threshold: float = 0.95
    max_minutes: int = 60

    @classmethod
    def of(cls, raw: Mapping[str, Any] | None) -> DiscussionSettings:
        """Settings from a client's JSON: unknown keys and bad values are a 422 naming them."""
        raw = dict(raw or {})
        known = {f.name for f in fields(cls)}
        problems = [
            {"loc": ["body", "settings", k], "msg": "unknown setting", "type": "unknown"}
            for k in raw
            if k not in known
        ]
        bounds: dict[str, tuple[float, float]] = {
            "summary_every": (2, 100),
            "max_turns": (4, 200),
            "max_rounds": (0, 5),
            "stuck_turns": (2, 50),
            "similarity_threshold": (0.5, 1.0),
            "max_minutes": (1, 24 * 60),
        }
        values: dict[str, Any] = {}
        for name, (low, high) in bounds.items():
            if name not in raw:
                continue
            value = raw[name]
            is_number = isinstance(value, int | float) and not isinstance(value, bool)
            whole = name != "similarity_threshold"
            if not is_number or (whole and not isinstance(value, int)) or not low <= value <= high:
                kind = "an integer" if whole else "a number"
                problems.append(
                    {
                        "loc": ["body", "settings", name],
                        "msg": f"{name} must be {kind} from {low:g} to {high:g}",
                        "type": "value_error",
                    }
                )
            else:
                values[name] = value
        if "consensus_rule" in raw:
            try:
                values["consensus_rule"] = ConsensusRule(raw["consensus_rule"])
            except ValueError:
                problems.append(
                    {
                        "loc": ["body", "settings", "consensus_rule"],
                        "msg": "consensus_rule must be majority, two_thirds or unanimous",
                        "type": "enum",
                    }
                )
        if problems:
            raise InvalidInput("Invalid discussion settings.", problems)
        return cls(**values)

    def as_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
