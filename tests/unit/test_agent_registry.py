"""The agent registry over an in-memory store: catalog merge, custom agents, lifecycle."""

from __future__ import annotations

import uuid

import pytest

from guildstack.domain.agents import AgentSource, AgentSpec, AgentStatus
from guildstack.domain.errors import Conflict, NotFound
from guildstack.domain.identity import Principal
from guildstack.domain.models import Tier
from guildstack.services.agents import AgentRegistry
from tests.fakes.agents import InMemoryAgentStore

ACTOR = Principal(uuid.uuid4(), "a@example.com", claims={})
WS, OTHER_WS = uuid.uuid4(), uuid.uuid4()


def spec(code: str, guild: str = "core", description: str = "Helps with tests.") -> AgentSpec:
    return AgentSpec(code, code.title(), "assistant", guild, description, "You help.", Tier.FAST)


CATALOG = [spec("alpha", "council"), spec("beta", "research", "Finds SEO keywords.")]


@pytest.fixture
def registry() -> AgentRegistry:
    return AgentRegistry(CATALOG, InMemoryAgentStore())


async def test_given_a_new_workspace_then_it_sees_the_catalog_idle(registry: AgentRegistry) -> None:
    agents = await registry.list(ACTOR, WS)
    assert [(a.code, a.source, a.status) for a in agents] == [
        ("alpha", AgentSource.CATALOG, AgentStatus.IDLE),
        ("beta", AgentSource.CATALOG, AgentStatus.IDLE),
    ]


async def test_given_filters_then_guild_role_and_text_narrow_the_list(
    registry: AgentRegistry,
) -> None:
    assert [a.code for a in await registry.list(ACTOR, WS, guild="research")] == ["beta"]
    assert [a.code for a in await registry.list(ACTOR, WS, q="seo")] == ["beta"]
    assert await registry.list(ACTOR, WS, role="lord") == []


async def test_given_a_catalog_code_when_creating_then_conflict(registry: AgentRegistry) -> None:
    with pytest.raises(Conflict):
        await registry.create(ACTOR, WS, spec("alpha"))


async def test_given_a_custom_agent_then_it_is_idle_and_only_in_its_workspace(
    registry: AgentRegistry,
) -> None:
    created = await registry.create(ACTOR, WS, spec("gamma"))

    assert (created.source, created.status) == (AgentSource.CUSTOM, AgentStatus.IDLE)
    assert "gamma" in {a.code for a in await registry.list(ACTOR, WS)}
    assert "gamma" not in {a.code for a in await registry.list(ACTOR, OTHER_WS)}
    with pytest.raises(NotFound):
        await registry.get(ACTOR, OTHER_WS, "gamma")
    with pytest.raises(Conflict):
        await registry.create(ACTOR, WS, spec("gamma"))


async def test_given_a_catalog_agent_change_then_the_workspace_keeps_its_own_copy(
    registry: AgentRegistry,
) -> None:
    changed = await registry.update(ACTOR, WS, "alpha", {"temperature": 0.1}, AgentStatus.PAUSED)

    assert (changed.spec.temperature, changed.status, changed.customized) == (
        0.1,
        AgentStatus.PAUSED,
        True,
    )
    assert (await registry.get(ACTOR, OTHER_WS, "alpha")).spec.temperature == 0.7


async def test_given_a_retired_agent_then_hidden_and_frozen(registry: AgentRegistry) -> None:
    await registry.retire(ACTOR, WS, "beta")
    await registry.retire(ACTOR, WS, "beta")  # idempotent

    assert "beta" not in {a.code for a in await registry.list(ACTOR, WS)}
    assert "beta" in {a.code for a in await registry.list(ACTOR, WS, include_retired=True)}
    with pytest.raises(Conflict):
        await registry.update(ACTOR, WS, "beta", {}, AgentStatus.IDLE)


async def test_given_an_unknown_field_then_the_update_is_refused(registry: AgentRegistry) -> None:
    with pytest.raises(ValueError, match="not editable"):
        await registry.update(ACTOR, WS, "alpha", {"code": "omega"})
