"""The per-workspace limit through the gateway (real Postgres, Redis, auth): its members
share it, and an outsider naming the workspace cannot use any of it."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import User, invite_and_join, sign_up

WORKSPACE_LIMIT = 300  # stack_settings.workspace_rate_limit_per_minute; users have 60 each
MEMBERS = 6  # 50 requests each: under their own limits, over the workspace's together


async def test_given_members_then_together_they_exceed_the_workspace_limit(
    api: httpx.AsyncClient,
) -> None:
    owner = await sign_up(api, "owner")
    created = await api.post("/workspaces", json={"name": "Busy"}, headers=owner.auth)
    workspace_id = created.json()["id"]
    members = [owner]
    for i in range(MEMBERS - 1):
        member = await sign_up(api, f"operator{i}")
        await invite_and_join(api, workspace_id, owner, member, "operator")
        members.append(member)
    operator = members[-1]
    outsider = await sign_up(api, "outsider")

    def headers(who: User) -> dict[str, str]:
        return {**who.auth, "X-Workspace-Id": workspace_id}

    async def status(who: User) -> int:
        return (await api.get("/agents", params={"limit": 20}, headers=headers(who))).status_code

    # An outsider's requests (up to their own limit) take nothing from the workspace.
    assert [await status(outsider) for _ in range(59)] == [404] * 59
    share = WORKSPACE_LIMIT // MEMBERS
    statuses = [await status(who) for _ in range(share) for who in members]
    assert statuses == [200] * WORKSPACE_LIMIT

    refused = await api.get("/agents", headers=headers(operator))
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["status"] == 429
    # Each member is still under their own limit of 60, and other workspaces are unaffected.
    elsewhere = await api.post("/workspaces", json={"name": "Quiet"}, headers=owner.auth)
    other = {**owner.auth, "X-Workspace-Id": elsewhere.json()["id"]}
    assert (await api.get("/agents", headers=other)).status_code == 200
