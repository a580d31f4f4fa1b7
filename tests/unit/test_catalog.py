"""The catalog files: they load, they are complete, and bad files are refused."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from guildstack.agents.catalog import (
    AgentCatalogFile,
    ModelCatalogFile,
    load_agents,
    load_model_book,
)
from guildstack.config import DEFAULT_CATALOG_DIR
from guildstack.domain.agents import AgentStatus, check_transition
from guildstack.domain.errors import Conflict, InvalidRequest
from guildstack.domain.models import ModelRef, Price, Tier
from guildstack.domain.routing import keyword_terms

AGENTS = load_agents(DEFAULT_CATALOG_DIR / "agents.yaml")
BY_CODE = {a.code: a for a in AGENTS}


def test_every_agent_loads_with_a_unique_code_and_a_real_prompt() -> None:
    assert len(BY_CODE) == len(AGENTS) >= 40
    for agent in AGENTS:
        assert len(agent.system_prompt.split()) >= 25, agent.code
        assert agent.name.split()[0].lower() not in {"todo", "tbd"}
    descriptions = [a.description for a in AGENTS]
    assert len(set(descriptions)) == len(descriptions)


def test_the_seed_documents_agents_are_all_present() -> None:
    required = {
        # the personal assistant: the personal assistant's agents, with its own codes
        "nicole_core",
        "design_agent",
        "business_agent",
        "code_review_agent",
        "seo_agent",
        "error_agent",
        "frontend_developer",
        "code_reviewer",
        "self_audit_agent",
        # the team discussion: the discussion team
        "project_manager",
        "technical_architect",
        "creative_strategist",
        "quality_assurance",
        "resource_coordinator",
        # the delivery pipeline: the delivery chain
        "product_owner",
        "architect",
        "developer",
        "senior_reviewer",
        # the marketing platform: the council of lords
        *(f"LORD-00{i}" for i in range(1, 8)),
    }
    assert required <= set(BY_CODE)


def test_every_guild_of_source_004_has_at_least_three_distinct_agents() -> None:
    guilds = Counter(a.guild for a in AGENTS)
    assert guilds["council"] == 7
    for guild in ("research", "muse", "matrix", "guardian"):
        assert guilds[guild] >= 3, guild
        names = {a.name for a in AGENTS if a.guild == guild}
        assert len(names) == guilds[guild]


def test_every_core_specialist_has_keywords_for_the_routing_fallback() -> None:
    specialists = [a for a in AGENTS if a.guild == "core" and a.code != "nicole_core"]
    assert len(specialists) == 8
    for agent in specialists:
        assert len(agent.keywords) >= 10, agent.code
    for agent in AGENTS:
        assert len(agent.keywords) >= 5, agent.code
        assert isinstance(agent.keywords, tuple)


def test_no_agent_lists_two_forms_of_the_same_keyword() -> None:
    # The router folds word forms, so "price" next to "pricing" only wastes one of 40 slots.
    for agent in AGENTS:
        folded = [keyword_terms(k) for k in agent.keywords]
        assert all(folded), agent.code
        duplicates = {k for k, f in zip(agent.keywords, folded, strict=True) if folded.count(f) > 1}
        assert not duplicates, (agent.code, sorted(duplicates))


@pytest.mark.parametrize(
    "keywords",
    [
        ["SEO"],
        [" seo"],
        ["meta  title"],
        [""],
        ["x" * 41],
        ["!!"],
        ["seo", "seo"],
        [f"word{i}" for i in range(41)],
    ],
)
def test_given_a_malformed_keyword_list_then_the_agent_is_refused(keywords: list[str]) -> None:
    agent = {
        "code": "kw_agent",
        "name": "Keywords",
        "role": "assistant",
        "guild": "core",
        "description": "Handles keyword validation requests for tests.",
        "system_prompt": "You are a test agent. " * 10,
        "keywords": keywords,
    }
    with pytest.raises(ValidationError):
        AgentCatalogFile.model_validate({"version": 1, "agents": [agent]})


def test_given_duplicate_codes_then_the_catalog_is_refused() -> None:
    agent = {
        "code": "dup_agent",
        "name": "Dup",
        "role": "assistant",
        "guild": "core",
        "description": "Handles duplicate detection requests for tests.",
        "system_prompt": "You are a test agent. " * 10,
    }
    with pytest.raises(ValidationError, match="duplicate agent codes"):
        AgentCatalogFile.model_validate({"version": 1, "agents": [agent, agent]})


def test_given_an_unknown_field_or_guild_then_the_catalog_is_refused() -> None:
    base = {
        "code": "x_agent",
        "name": "X",
        "role": "assistant",
        "description": "Handles requests about the letter x in tests.",
        "system_prompt": "You are a test agent. " * 10,
    }
    with pytest.raises(ValidationError):
        AgentCatalogFile.model_validate({"version": 1, "agents": [{**base, "guild": "pirates"}]})
    with pytest.raises(ValidationError):
        AgentCatalogFile.model_validate(
            {"version": 1, "agents": [{**base, "guild": "core", "colour": "blue"}]}
        )


def test_the_model_catalog_prices_every_model_a_tier_can_use() -> None:
    book = load_model_book(DEFAULT_CATALOG_DIR / "models.yaml")
    for tier in Tier:
        assert book.chain(tier, frozenset({"anthropic", "openai"}))
        for ref in book.tiers[tier]:
            assert book.price(ref).output > 0
    with pytest.raises(InvalidRequest, match="No price"):  # never free by accident
        book.price(ModelRef("compatible", "llama3.1"))


def test_given_a_tier_model_without_a_price_then_the_model_catalog_is_refused(
    tmp_path: Path,
) -> None:
    with pytest.raises(Exception, match="No price"):
        ModelCatalogFile.model_validate(
            {
                "version": 1,
                "prices": {"a/one": {"input": 1, "output": 1}},
                "tiers": {"fast": ["a/one"], "standard": ["a/one"], "strong": ["a/two"]},
            }
        ).to_book()


def test_given_tier_overrides_then_they_replace_whole_chains() -> None:
    default = Price(Decimal(1), Decimal(2))
    book = load_model_book(
        DEFAULT_CATALOG_DIR / "models.yaml",
        {Tier.FAST: ["compatible/llama3.1"]},
        {"compatible": default},
    )
    assert book.tiers[Tier.FAST] == (ModelRef("compatible", "llama3.1"),)
    assert book.price(ModelRef("compatible", "llama3.1")) == default


def test_given_an_unpriced_tier_model_of_a_provider_without_default_then_refused() -> None:
    with pytest.raises(InvalidRequest, match="No price"):
        load_model_book(DEFAULT_CATALOG_DIR / "models.yaml", {Tier.FAST: ["compatible/llama3.1"]})


def test_given_a_catalog_price_then_it_wins_over_the_providers_default() -> None:
    book = ModelCatalogFile.model_validate(
        {
            "version": 1,
            "prices": {"compatible/own": {"input": 0, "output": 0}},
            "tiers": {t.value: ["compatible/own"] for t in Tier},
        }
    ).to_book({"compatible": Price(Decimal(9), Decimal(9))})
    assert book.price(ModelRef("compatible", "own")).output == 0
    assert book.price(ModelRef("compatible", "other")).output == 9


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        (AgentStatus.SPAWNING, AgentStatus.IDLE, True),
        (AgentStatus.IDLE, AgentStatus.WORKING, True),
        (AgentStatus.WORKING, AgentStatus.IDLE, True),
        (AgentStatus.IDLE, AgentStatus.PAUSED, True),
        (AgentStatus.PAUSED, AgentStatus.IDLE, True),
        (AgentStatus.WORKING, AgentStatus.ERROR, True),
        (AgentStatus.ERROR, AgentStatus.IDLE, True),
        (AgentStatus.PAUSED, AgentStatus.WORKING, False),
        (AgentStatus.SPAWNING, AgentStatus.WORKING, False),
        (AgentStatus.TERMINATED, AgentStatus.IDLE, False),
        (AgentStatus.ERROR, AgentStatus.WORKING, False),
    ],
)
def test_agent_lifecycle_transitions(
    current: AgentStatus, target: AgentStatus, allowed: bool
) -> None:
    if allowed:
        check_transition(current, target)
    else:
        with pytest.raises(Conflict):
            check_transition(current, target)
