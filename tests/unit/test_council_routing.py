"""The council's routing over the marketing roster: a labeled set of requests (expected
guild and agents) and how often the keyword baseline picks them; every guild agent is
reachable by its own keywords."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from guildstack.agents.catalog import load_agents
from guildstack.domain.agents import AgentSpec
from guildstack.domain.campaigns import PLAN_GUILDS
from guildstack.domain.routing import route_by_keywords

ROOT = Path(__file__).resolve().parents[2]
CATALOG = load_agents(ROOT / "infra/catalog/agents.yaml")
GUILD_AGENTS = [a for a in CATALOG if a.guild in PLAN_GUILDS]
GUILD_OF = {a.code: a.guild for a in GUILD_AGENTS}
LABELED = json.loads((ROOT / "tests/data/council_routing.json").read_text())["items"]


def test_the_roster_has_the_guilds_of_the_marketing_platform() -> None:
    guilds = Counter(a.guild for a in CATALOG)
    assert [guilds[g] for g in ("council", "research", "muse", "matrix", "guardian")] == [
        7, 20, 30, 20, 10,
    ]  # fmt: skip
    for guild in PLAN_GUILDS:
        roles = [a.description for a in GUILD_AGENTS if a.guild == guild]
        assert len(set(roles)) == len(roles)


def test_the_labeled_set_names_known_agents_of_the_right_guild() -> None:
    assert len(LABELED) >= 40
    for item in LABELED:
        assert item["agents"], item
        assert all(GUILD_OF[code] == item["guild"] for code in item["agents"][:1]), item


def test_keyword_baseline_hit_rate_on_the_labeled_set(capsys: pytest.CaptureFixture[str]) -> None:
    agent_hits = guild_hits = 0
    for item in LABELED:
        picked = route_by_keywords(item["request"], GUILD_AGENTS, core="").specialists
        codes = [p.code for p in picked]
        agent_hits += any(code in item["agents"] for code in codes)
        guild_hits += bool(codes) and GUILD_OF[codes[0]] == item["guild"]
    n = len(LABELED)
    with capsys.disabled():
        print(  # noqa: T201
            f"\ncouncil keyword baseline on {n} requests: expected agent among the top 3 "
            f"{agent_hits / n:.2f}, top pick's guild right {guild_hits / n:.2f}"
        )
    assert agent_hits / n >= 0.8
    assert guild_hits / n >= 0.8


@pytest.mark.parametrize("spec", GUILD_AGENTS, ids=lambda a: a.code)
def test_every_guild_agent_is_reachable_by_its_keywords(spec: AgentSpec) -> None:
    request = " and ".join(spec.keywords[:3])
    picked = [p.code for p in route_by_keywords(request, GUILD_AGENTS, core="").specialists]
    assert spec.code in picked, (spec.code, request, picked)
