"""A new user's journey through the gateway, on the real stand-ins (Postgres with RLS,
the Supabase Auth stand-in driven by supabase-py, Redis through the Upstash bridge)."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import sign_up


async def test_given_a_new_user_when_walking_the_auth_journey_then_every_step_answers(
    api: httpx.AsyncClient,
) -> None:
    # Sign up, then log in with the same credentials.
    alice = await sign_up(api, "alice")
    login = await api.post("/auth/login", json={"email": alice.email, "password": alice.password})
    assert login.status_code == 200, login.text
    session = login.json()["session"]
    headers = {"Authorization": f"Bearer {session['access_token']}"}

    me = (await api.get("/auth/me", headers=headers)).json()
    assert me["user"]["id"] == alice.id
    assert me["profile"]["full_name"] == "Alice"
    assert me["memberships"] == []

    # Create a workspace: the caller is its owner.
    created = await api.post("/workspaces", json={"name": "Acme Guild"}, headers=headers)
    assert created.status_code == 201, created.text
    workspace = created.json()
    assert workspace["role"] == "owner"
    assert created.headers["location"] == f"/workspaces/{workspace['id']}"

    # Add a second user as viewer, list members, promote them.
    bob = await sign_up(api, "bob")
    members_url = f"/workspaces/{workspace['id']}/members"
    invited = await api.post(
        members_url, json={"email": bob.email, "role": "viewer"}, headers=headers
    )
    assert invited.status_code == 202, invited.text
    joined = (await api.get("/auth/me", headers=bob.auth)).json()["memberships"]
    assert [(m["workspace_id"], m["role"]) for m in joined] == [(workspace["id"], "viewer")]
    listing = (await api.get(members_url, headers=headers)).json()
    assert {(m["email"], m["role"]) for m in listing["items"]} == {
        (alice.email, "owner"),
        (bob.email, "viewer"),
    }
    changed = await api.patch(f"{members_url}/{bob.id}", json={"role": "analyst"}, headers=headers)
    assert changed.status_code == 200 and changed.json()["role"] == "analyst"
    bob_sees = (await api.get("/workspaces", headers=bob.auth)).json()["items"]
    assert [(w["id"], w["role"]) for w in bob_sees] == [(workspace["id"], "analyst")]

    # Refresh rotates the session; logging out kills the refresh token.
    refreshed = await api.post("/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    new_session = refreshed.json()["session"]
    reused = await api.post("/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert reused.status_code == 401
    new_headers = {"Authorization": f"Bearer {new_session['access_token']}"}
    assert (await api.post("/auth/logout", headers=new_headers)).status_code == 204
    dead = await api.post("/auth/refresh", json={"refresh_token": new_session["refresh_token"]})
    assert dead.status_code == 401


async def test_given_the_gateway_when_asking_health_then_every_dependency_is_checked(
    api: httpx.AsyncClient,
) -> None:
    response = await api.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["checks"]["postgres"] == "ok"
    assert body["checks"]["redis"] == "ok"
    assert body["status"] in ("ok", "degraded")


async def test_given_an_unknown_route_when_called_then_404_problem(api: httpx.AsyncClient) -> None:
    response = await api.get("/definitely/not/here")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_given_a_wrong_password_when_logging_in_then_401(api: httpx.AsyncClient) -> None:
    carol = await sign_up(api, "carol")
    response = await api.post("/auth/login", json={"email": carol.email, "password": "nope-nope"})
    assert response.status_code == 401
    assert response.json()["status"] == 401


async def test_given_a_taken_email_when_signing_up_then_201_without_a_session(
    api: httpx.AsyncClient,
) -> None:
    dave = await sign_up(api, "dave")
    again = await api.post("/auth/signup", json={"email": dave.email, "password": "another-pw-1"})
    assert again.status_code == 201 and again.json()["session"] is None


async def test_given_61_requests_in_a_minute_then_the_61st_is_429_with_retry_after(
    api: httpx.AsyncClient,
) -> None:
    erin = await sign_up(api, "erin")
    statuses = [(await api.get("/auth/me", headers=erin.auth)).status_code for _ in range(60)]
    assert statuses == [200] * 60
    limited = await api.get("/auth/me", headers=erin.auth)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.headers["content-type"].startswith("application/problem+json")
    # Health is exempt, and other users are unaffected.
    assert (await api.get("/health")).status_code == 200
    frank = await sign_up(api, "frank")
    assert (await api.get("/auth/me", headers=frank.auth)).status_code == 200
