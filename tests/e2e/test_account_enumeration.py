"""Nobody learns whether an email has an account: sign-up and adding members answer the
same for registered and unknown emails; members join by invitation."""

from __future__ import annotations

import uuid

import httpx

from tests.e2e.conftest import User, sign_up


def _email(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}@example.com"


async def _workspace(api: httpx.AsyncClient, owner: User) -> str:
    created = await api.post("/workspaces", json={"name": "Probe"}, headers=owner.auth)
    assert created.status_code == 201, created.text
    workspace_id: str = created.json()["id"]
    return workspace_id


async def _member_emails(api: httpx.AsyncClient, owner: User, workspace_id: str) -> set[str]:
    listed = await api.get(
        f"/workspaces/{workspace_id}/members", params={"limit": 200}, headers=owner.auth
    )
    return {m["email"] for m in listed.json()["items"]}


async def test_given_a_registered_email_when_signing_up_again_then_a_user_without_session(
    api: httpx.AsyncClient,
) -> None:
    taken = await sign_up(api, "taken")
    again = await api.post("/auth/signup", json={"email": taken.email, "password": "another-pw-1"})

    assert again.status_code == 201, again.text
    body = again.json()
    assert set(body) == {"user", "session"} and body["session"] is None
    assert body["user"]["email"] == taken.email
    assert body["user"]["id"] != taken.id  # a stand-in id, as Supabase gives
    # The account is untouched: its own password still works, the new one does not.
    own = await api.post("/auth/login", json={"email": taken.email, "password": taken.password})
    other = await api.post("/auth/login", json={"email": taken.email, "password": "another-pw-1"})
    assert own.status_code == 200 and other.status_code == 401


async def test_given_known_and_unknown_emails_when_adding_members_then_the_answers_match(
    api: httpx.AsyncClient,
) -> None:
    owner, known = await sign_up(api, "owner"), await sign_up(api, "known")
    workspace_id = await _workspace(api, owner)
    url = f"/workspaces/{workspace_id}/members"

    for_known = await api.post(
        url, json={"email": known.email, "role": "viewer"}, headers=owner.auth
    )
    unknown = _email("unknown")
    for_unknown = await api.post(url, json={"email": unknown, "role": "viewer"}, headers=owner.auth)

    assert (for_known.status_code, for_unknown.status_code) == (202, 202), for_unknown.text
    a, b = for_known.json(), for_unknown.json()
    assert set(a) == set(b) and "user_id" not in a
    assert (a["email"], b["email"]) == (known.email, unknown)
    assert {k: v for k, v in a.items() if k not in ("email", "created_at", "expires_at")} == {
        k: v for k, v in b.items() if k not in ("email", "created_at", "expires_at")
    }
    assert for_known.headers.keys() - {"x-request-id", "date", "content-length"} == (
        for_unknown.headers.keys() - {"x-request-id", "date", "content-length"}
    )
    # Neither is a member yet, so the member list tells nothing either.
    assert await _member_emails(api, owner, workspace_id) == {owner.email}


async def test_given_an_invited_email_when_that_person_signs_up_then_they_are_a_member(
    api: httpx.AsyncClient,
) -> None:
    owner = await sign_up(api, "owner")
    workspace_id = await _workspace(api, owner)
    email = _email("newcomer")
    invited = await api.post(
        f"/workspaces/{workspace_id}/members",
        json={"email": email, "role": "operator"},
        headers=owner.auth,
    )
    assert invited.status_code == 202, invited.text

    signed = await api.post(
        "/auth/signup", json={"email": email.upper(), "password": "pw-12345678"}
    )
    token = signed.json()["session"]["access_token"]
    mine = await api.get("/workspaces", headers={"Authorization": f"Bearer {token}"})

    assert [(w["id"], w["role"]) for w in mine.json()["items"]] == [(workspace_id, "operator")]


async def test_given_an_invited_account_when_it_next_loads_its_profile_then_it_has_joined(
    api: httpx.AsyncClient,
) -> None:
    owner, known = await sign_up(api, "owner"), await sign_up(api, "known")
    workspace_id = await _workspace(api, owner)
    await api.post(
        f"/workspaces/{workspace_id}/members",
        json={"email": known.email, "role": "analyst"},
        headers=owner.auth,
    )

    me = await api.get("/auth/me", headers=known.auth)

    assert [(m["workspace_id"], m["role"]) for m in me.json()["memberships"]] == [
        (workspace_id, "analyst")
    ]
    assert known.email in await _member_emails(api, owner, workspace_id)


async def test_given_an_existing_member_when_invited_again_then_409(
    api: httpx.AsyncClient,
) -> None:
    owner = await sign_up(api, "owner")
    workspace_id = await _workspace(api, owner)
    again = await api.post(
        f"/workspaces/{workspace_id}/members",
        json={"email": owner.email, "role": "viewer"},
        headers=owner.auth,
    )
    assert again.status_code == 409, again.text
