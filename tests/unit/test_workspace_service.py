"""WorkspaceService role rules, against the in-memory unit of work."""

from __future__ import annotations

import uuid

import pytest

from guildstack.domain.errors import Conflict, Forbidden, NotFound
from guildstack.domain.identity import AccountKind, Principal, Role
from guildstack.domain.paging import PageRequest
from guildstack.services.workspaces import WorkspaceService, slugify
from tests.fakes.uow import InMemoryUnitOfWork


def principal(user_id: uuid.UUID | None = None) -> Principal:
    uid = user_id or uuid.uuid4()
    return Principal(user_id=uid, email=None, claims={"sub": str(uid)})


@pytest.fixture
def store() -> InMemoryUnitOfWork:
    return InMemoryUnitOfWork()


async def _team(
    store: InMemoryUnitOfWork,
) -> tuple[WorkspaceService, uuid.UUID, dict[Role, Principal]]:
    service = WorkspaceService(store)
    owner = principal()
    ws = await service.create(owner, "Team", None)
    people = {Role.OWNER: owner}
    for role in (Role.ADMIN, Role.OPERATOR, Role.ANALYST, Role.VIEWER):
        user_id = store.world.register(f"{role.value}@example.com")
        await service.invite_member(owner, ws.id, f"{role.value}@example.com", role)
        people[role] = principal(user_id)
        await _join(store, people[role])
    return service, ws.id, people


async def _join(store: InMemoryUnitOfWork, who: Principal) -> int:
    """What the invitee's next profile load does."""
    async with store(who) as tx:
        return await tx.workspaces.accept_invites()


async def test_given_a_new_workspace_then_the_creator_is_owner(
    store: InMemoryUnitOfWork,
) -> None:
    service = WorkspaceService(store)
    me = principal()
    ws = await service.create(me, "  Spaced  ", None)
    assert ws.role is Role.OWNER and ws.name == "Spaced"
    assert (await service.list(me, PageRequest())).items[0].id == ws.id


async def test_given_an_outsider_then_every_read_is_not_found(
    store: InMemoryUnitOfWork,
) -> None:
    service, ws, _ = await _team(store)
    stranger = principal()
    with pytest.raises(NotFound):
        await service.get(stranger, ws)
    with pytest.raises(NotFound):
        await service.members(stranger, ws, PageRequest())


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.ANALYST, Role.VIEWER])
async def test_given_a_member_below_admin_when_managing_then_forbidden(
    store: InMemoryUnitOfWork, role: Role
) -> None:
    service, ws, people = await _team(store)
    store.world.register("new@example.com")
    with pytest.raises(Forbidden):
        await service.invite_member(people[role], ws, "new@example.com", Role.VIEWER)
    with pytest.raises(Forbidden):
        await service.update(people[role], ws, name="x", monthly_budget_usd=None)


async def test_given_an_admin_when_touching_owners_then_forbidden(
    store: InMemoryUnitOfWork,
) -> None:
    service, ws, people = await _team(store)
    admin, owner = people[Role.ADMIN], people[Role.OWNER]
    store.world.register("o2@example.com")
    with pytest.raises(Forbidden):
        await service.invite_member(admin, ws, "o2@example.com", Role.OWNER)
    with pytest.raises(Forbidden):
        await service.update_member(admin, ws, owner.user_id, role=Role.VIEWER)
    with pytest.raises(Forbidden):
        await service.remove_member(admin, ws, owner.user_id)


async def test_given_the_last_owner_when_stepping_down_then_conflict(
    store: InMemoryUnitOfWork,
) -> None:
    service, ws, people = await _team(store)
    owner = people[Role.OWNER]
    with pytest.raises(Conflict):
        await service.update_member(owner, ws, owner.user_id, role=Role.ADMIN)


async def test_given_a_viewer_when_leaving_then_allowed(store: InMemoryUnitOfWork) -> None:
    service, ws, people = await _team(store)
    viewer = people[Role.VIEWER]
    await service.remove_member(viewer, ws, viewer.user_id)
    with pytest.raises(NotFound):
        await service.get(viewer, ws)


def test_given_names_when_slugified_then_url_safe_starts() -> None:
    assert slugify("Acme Guild!") == "acme-guild"
    assert slugify("!!!") == "workspace"
    assert slugify("a" * 39 + " b") == "a" * 39  # cut at 40, no trailing hyphen


async def test_given_equal_names_when_creating_then_slugs_differ(store: InMemoryUnitOfWork) -> None:
    service, owner = WorkspaceService(store), Principal(uuid.uuid4(), None, {})
    first = await service.create(owner, "Acme Guild!", None)
    second = await service.create(owner, "Acme Guild!", None)
    assert first.slug.startswith("acme-guild-") and first.slug != second.slug


async def test_given_an_admin_then_account_kinds_are_set_and_others_may_not(
    store: InMemoryUnitOfWork,
) -> None:
    service, ws, people = await _team(store)
    viewer = people[Role.VIEWER]
    child = await service.update_member(
        people[Role.ADMIN], ws, viewer.user_id, account_kind=AccountKind.CHILD
    )
    assert child.account_kind is AccountKind.CHILD and child.role is Role.VIEWER
    with pytest.raises(Forbidden):
        await service.update_member(
            people[Role.OPERATOR], ws, viewer.user_id, account_kind=AccountKind.STANDARD
        )


async def test_given_an_invite_then_only_the_invited_email_joins_with_its_role(
    store: InMemoryUnitOfWork,
) -> None:
    service, ws, people = await _team(store)
    invitee = principal(store.world.register("invitee@example.com"))
    other = principal(store.world.register("other@example.com"))
    invite = await service.invite_member(
        people[Role.ADMIN], ws, " Invitee@Example.com ", Role.ANALYST
    )

    assert (invite.email, invite.role) == ("invitee@example.com", Role.ANALYST)
    assert await _join(store, other) == 0
    assert await _join(store, invitee) == 1
    assert (await service.get(invitee, ws)).role is Role.ANALYST
    assert await _join(store, invitee) == 0  # used up


async def test_given_a_member_email_when_invited_then_conflict(store: InMemoryUnitOfWork) -> None:
    service, ws, people = await _team(store)
    with pytest.raises(Conflict):
        await service.invite_member(people[Role.OWNER], ws, "viewer@example.com", Role.ADMIN)
