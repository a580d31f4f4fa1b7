"""Metric dimensions that stay bounded whatever tenants do.

CloudWatch bills per distinct dimension combination, and a dashboard is useless with one
line per custom agent, so a model call's dimensions name only what this deployment ships:
a built-in agent's code and guild (any other agent is `custom`), a model the catalog prices
(any other of a provider is `<provider>/other`).
"""

from __future__ import annotations

from collections.abc import Mapping

from guildstack.domain.models import ModelRef
from guildstack.domain.pricing import ModelBook

CUSTOM = "custom"
NONE = "none"


def call_dimensions(
    agent_code: str | None,
    ref: ModelRef | None,
    guilds: Mapping[str, str],
    book: ModelBook,
) -> dict[str, str]:
    """`agent`, `model` and `guild` for a model call's metrics, each from a bounded set."""
    if agent_code is None:
        agent, guild = NONE, NONE
    elif agent_code in guilds:
        agent, guild = agent_code, guilds[agent_code]
    else:
        agent, guild = CUSTOM, CUSTOM
    if ref is None:
        model = NONE
    elif str(ref) in book.prices:
        model = str(ref)
    else:
        model = f"{ref.provider}/other"
    return {"agent": agent, "model": model, "guild": guild}
