"""The agent registry over the in-memory unit of work: catalog merge, custom agents,
lifecycle, and who may change agents."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from guildstack.domain.agents import AgentSource, AgentSpec, AgentStatus
from guildstack.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from guildstack.domain.identity import Member, Principal, Role
from guildstack.domain.models import Tier
from guildstack.services.agents import AgentRegistry
from tests.fakes.uow import InMemoryUnitOfWork, World

ACTOR = Principal(uuid.uuid4(), "a@example.com", claims={})
WS, OTHER_WS = uuid.uuid4(), uuid.uuid4()


def spec(code: str, guild: str = "core", description: str = "Helps with tests.") -> AgentSpec:
    return AgentSpec(code, code.title(), "assistant", guild, description, "You help.", Tier.FAST)


CATALOG = [spec("alpha", "council"), spec("beta", "research", "Finds SEO keywords.")]


VIEWER = Principal(uuid.uuid4(), "v@example.com", claims={})


def _world() -> World:
    world = World()
    for ws in (WS, OTHER_WS):
        world.members[ws] = {
            ACTOR.user_id: Member(ws, ACTOR.user_id, None, None, Role.ADMIN, datetime.now(UTC)),
            VIEWER.user_id: Member(ws, VIEWER.user_id, None, None, Role.VIEWER, datetime.now(UTC)),
        }
    return world


@pytest.fixture
def registry() -> AgentRegistry:
    return AgentRegistry(CATALOG, InMemoryUnitOfWork(_world()))


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
    with pytest.raises(InvalidInput, match="cannot be changed"):
        await registry.update(ACTOR, WS, "alpha", {"code": "omega"})


async def test_given_a_viewer_when_changing_agents_then_forbidden_and_nothing_stored(
    registry: AgentRegistry,
) -> None:
    with pytest.raises(Forbidden):
        await registry.create(VIEWER, WS, spec("gamma"))
    with pytest.raises(Forbidden):
        await registry.update(VIEWER, WS, "alpha", {"temperature": 0.2})
    with pytest.raises(Forbidden):
        await registry.retire(VIEWER, WS, "alpha")
    assert (await registry.get(VIEWER, WS, "alpha")).spec.temperature == 0.7
    assert "gamma" not in {a.code for a in await registry.list(VIEWER, WS)}


async def test_given_an_outsider_then_the_workspace_does_not_exist(
    registry: AgentRegistry,
) -> None:
    stranger = Principal(uuid.uuid4(), None, claims={})
    with pytest.raises(NotFound):
        await registry.list(stranger, WS)
    with pytest.raises(NotFound):
        await registry.create(stranger, WS, spec("gamma"))
