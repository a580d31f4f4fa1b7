"""HTTP clients against the running local gateway."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass
class User:
    id: str
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@pytest.fixture
async def api(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=20) as client:
        yield client


async def sign_up(api: httpx.AsyncClient, name: str = "user") -> User:
    email = f"{name}-{uuid.uuid4().hex[:10]}@example.com"
    password = f"pw-{uuid.uuid4().hex}"
    response = await api.post(
        "/auth/signup", json={"email": email, "password": password, "full_name": name.title()}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    session = body["session"]
    return User(
        body["user"]["id"], email, password, session["access_token"], session["refresh_token"]
    )


ROLES = ["owner", "admin", "operator", "analyst", "viewer"]
ACTORS = [*ROLES, "outsider"]


@dataclass
class Team:
    workspace_id: str
    users: dict[str, User]

    @property
    def members_url(self) -> str:
        return f"/workspaces/{self.workspace_id}/members"

    def headers(self, actor: str) -> dict[str, str]:
        """`actor`'s bearer token with this workspace in X-Workspace-Id."""
        return {**self.users[actor].auth, "X-Workspace-Id": self.workspace_id}


@pytest.fixture(scope="module")
async def team(gateway_url: str) -> AsyncIterator[Team]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=20) as api:
        users = {actor: await sign_up(api, actor) for actor in ACTORS}
        owner = users["owner"]
        created = await api.post("/workspaces", json={"name": "Matrix"}, headers=owner.auth)
        workspace_id = created.json()["id"]
        for role in ROLES[1:]:
            await invite_and_join(api, workspace_id, owner, users[role], role)
        yield Team(workspace_id, users)


async def invite_and_join(
    api: httpx.AsyncClient, workspace_id: str, by: User, who: User, role: str
) -> None:
    """Invite `who` and have them join, as their next profile load does."""
    response = await api.post(
        f"/workspaces/{workspace_id}/members",
        json={"email": who.email, "role": role},
        headers=by.auth,
    )
    assert response.status_code == 202, response.text
    joined = await api.get("/auth/me", headers=who.auth)
    assert workspace_id in {m["workspace_id"] for m in joined.json()["memberships"]}


def expected(actor: str, success: int, *, minimum: str = "admin") -> int:
    """The API's rule: non-members get 404 (existence is not revealed), members below the
    role 403."""
    if actor == "outsider":
        return 404
    return success if ROLES.index(actor) <= ROLES.index(minimum) else 403


@pytest.fixture(scope="session", autouse=True)
def documented_statuses(gateway_observations: set[tuple[str, str, int]]) -> Iterator[None]:
    """After the e2e tests: every status a route answered is one the API document gives
    that route (a stale or incomplete document fails the session)."""
    yield
    from guildstack.devstack.gateway import _fastapi_path
    from guildstack.devstack.openapi import build_document
    from guildstack.devstack.template import Template

    document = build_document(Template.load(REPO / "template.yaml"))
    undocumented = sorted(
        (method, path, status)
        for method, path, status in gateway_observations
        if str(status) not in document["paths"][_fastapi_path(path)][method.lower()]["responses"]
    )
    assert not undocumented, f"answered but not documented: {undocumented}"
