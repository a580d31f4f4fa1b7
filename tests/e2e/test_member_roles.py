"""Role matrix for the members endpoints, through the gateway on real Postgres with RLS."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import ACTORS, ROLES, Team, User, expected, invite_and_join, sign_up


async def _add_target(api: httpx.AsyncClient, team: Team, role: str = "viewer") -> User:
    target = await sign_up(api, "target")
    await invite_and_join(api, team.workspace_id, team.users["owner"], target, role)
    return target


@pytest.mark.parametrize("actor", ACTORS)
async def test_given_each_role_when_listing_members_then_status_follows_the_role_table(
    api: httpx.AsyncClient, team: Team, actor: str
) -> None:
    response = await api.get(team.members_url, headers=team.users[actor].auth)
    assert response.status_code == expected(actor, 200, minimum="viewer"), response.text
    if response.status_code == 200:
        assert len(response.json()["items"]) >= len(ROLES)


@pytest.mark.parametrize("actor", ACTORS)
async def test_given_each_role_when_adding_a_member_then_only_admins_and_owners_may(
    api: httpx.AsyncClient, team: Team, actor: str
) -> None:
    newcomer = await sign_up(api, "newcomer")
    response = await api.post(
        team.members_url,
        json={"email": newcomer.email, "role": "viewer"},
        headers=team.users[actor].auth,
    )
    status = expected(actor, 202)
    assert response.status_code == status, response.text
    await api.get("/auth/me", headers=newcomer.auth)  # joins when invited
    visible = await api.get(
        team.members_url, headers=team.users["owner"].auth, params={"limit": 200}
    )
    emails = {m["email"] for m in visible.json()["items"]}
    assert (newcomer.email in emails) == (status == 202)


@pytest.mark.parametrize("actor", ACTORS)
async def test_given_each_role_when_changing_a_role_then_only_admins_and_owners_may(
    api: httpx.AsyncClient, team: Team, actor: str
) -> None:
    target = await _add_target(api, team)
    response = await api.patch(
        f"{team.members_url}/{target.id}", json={"role": "analyst"}, headers=team.users[actor].auth
    )
    assert response.status_code == expected(actor, 200), response.text


@pytest.mark.parametrize("actor", ACTORS)
async def test_given_each_role_when_removing_a_member_then_only_admins_and_owners_may(
    api: httpx.AsyncClient, team: Team, actor: str
) -> None:
    target = await _add_target(api, team)
    response = await api.delete(f"{team.members_url}/{target.id}", headers=team.users[actor].auth)
    assert response.status_code == expected(actor, 204), response.text


async def test_given_an_admin_when_granting_owner_then_403(
    api: httpx.AsyncClient, team: Team
) -> None:
    newcomer = await sign_up(api, "would-be-owner")
    response = await api.post(
        team.members_url,
        json={"email": newcomer.email, "role": "owner"},
        headers=team.users["admin"].auth,
    )
    assert response.status_code == 403


async def test_given_an_admin_when_demoting_the_owner_then_403(
    api: httpx.AsyncClient, team: Team
) -> None:
    owner = team.users["owner"]
    response = await api.patch(
        f"{team.members_url}/{owner.id}", json={"role": "viewer"}, headers=team.users["admin"].auth
    )
    assert response.status_code == 403


async def test_given_the_last_owner_when_demoting_or_removing_themselves_then_409(
    api: httpx.AsyncClient,
) -> None:
    solo = await sign_up(api, "solo")
    workspace = (await api.post("/workspaces", json={"name": "Solo"}, headers=solo.auth)).json()
    url = f"/workspaces/{workspace['id']}/members/{solo.id}"
    assert (await api.patch(url, json={"role": "admin"}, headers=solo.auth)).status_code == 409
    assert (await api.delete(url, headers=solo.auth)).status_code == 409
    # Still the owner afterwards.
    me = (await api.get(f"/workspaces/{workspace['id']}", headers=solo.auth)).json()
    assert me["role"] == "owner"


async def test_given_two_owners_when_one_steps_down_then_it_is_allowed(
    api: httpx.AsyncClient,
) -> None:
    first, second = await sign_up(api, "first"), await sign_up(api, "second")
    workspace = (await api.post("/workspaces", json={"name": "Duo"}, headers=first.auth)).json()
    members = f"/workspaces/{workspace['id']}/members"
    await invite_and_join(api, workspace["id"], first, second, "owner")
    demoted = await api.patch(f"{members}/{first.id}", json={"role": "admin"}, headers=first.auth)
    assert demoted.status_code == 200


@pytest.mark.parametrize("actor", ACTORS)
async def test_given_each_role_when_updating_the_workspace_then_admin_or_higher(
    api: httpx.AsyncClient, team: Team, actor: str
) -> None:
    response = await api.patch(
        f"/workspaces/{team.workspace_id}",
        json={"monthly_budget_usd": 25},
        headers=team.users[actor].auth,
    )
    assert response.status_code == expected(actor, 200), response.text


async def test_given_an_outsider_when_reading_a_workspace_then_404_not_403(
    api: httpx.AsyncClient, team: Team
) -> None:
    response = await api.get(
        f"/workspaces/{team.workspace_id}", headers=team.users["outsider"].auth
    )
    assert response.status_code == 404


async def test_given_an_unknown_email_when_adding_a_member_then_202_an_invitation(
    api: httpx.AsyncClient, team: Team
) -> None:
    response = await api.post(
        team.members_url,
        json={"email": "nobody-here@example.com", "role": "viewer"},
        headers=team.users["owner"].auth,
    )
    assert response.status_code == 202


async def test_given_an_existing_member_when_added_again_then_409(
    api: httpx.AsyncClient, team: Team
) -> None:
    response = await api.post(
        team.members_url,
        json={"email": team.users["viewer"].email, "role": "viewer"},
        headers=team.users["owner"].auth,
    )
    assert response.status_code == 409
