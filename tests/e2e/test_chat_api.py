"""The Chat function through the gateway: conversations (create, list with full-text
search, read, rename, pause/resume, share, delete), messages, pending questions, export,
roles, tenancy and bad input as problem+json."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ACTORS, Team, expected, sign_up


async def _conversation(
    api: httpx.AsyncClient, team: Team, actor: str = "analyst", **body: Any
) -> dict[str, Any]:
    created = await api.post("/conversations", json=body, headers=team.headers(actor))
    assert created.status_code == 201, created.text
    conversation: dict[str, Any] = created.json()
    assert created.headers["location"] == f"/conversations/{conversation['id']}"
    return conversation


async def test_given_a_conversation_then_messages_are_numbered_listed_and_exported(
    api: httpx.AsyncClient, team: Team
) -> None:
    h = team.headers("analyst")
    conversation = await _conversation(api, team, title="Kitchen plans")
    url = f"/conversations/{conversation['id']}"
    first = await api.post(f"{url}/messages", json={"content": "Paint the wall sage"}, headers=h)
    second = await api.post(f"{url}/messages", json={"content": "And the door oak"}, headers=h)
    assert first.status_code == 201 and second.status_code == 201
    assert [first.json()["seq"], second.json()["seq"]] == [1, 2]

    page = (await api.get(f"{url}/messages", params={"after": 1}, headers=h)).json()
    assert [m["content"] for m in page["items"]] == ["And the door oak"]
    assert (await api.get(url, headers=h)).json()["message_count"] == 2

    exported = await api.get(f"{url}/export", params={"format": "json"}, headers=h)
    assert exported.headers["content-type"].startswith("application/json")
    document = json.loads(exported.text)
    assert document["conversation"]["title"] == "Kitchen plans"
    assert [m["content"] for m in document["messages"]] == [
        "Paint the wall sage",
        "And the door oak",
    ]
    markdown = await api.get(f"{url}/export", params={"format": "markdown"}, headers=h)
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert markdown.text.startswith("# Kitchen plans") and "Paint the wall sage" in markdown.text


async def test_given_messages_then_full_text_search_finds_their_conversation(
    api: httpx.AsyncClient, team: Team
) -> None:
    h = team.headers("analyst")
    marker = f"zanzibar{uuid.uuid4().hex[:6]}"
    found = await _conversation(api, team)
    await _conversation(api, team)
    await api.post(
        f"/conversations/{found['id']}/messages",
        json={"content": f"Plan the {marker} trip"},
        headers=h,
    )

    listed = await api.get("/conversations", params={"q": marker}, headers=h)

    assert [c["id"] for c in listed.json()["items"]] == [found["id"]]


async def test_given_a_conversation_then_rename_pause_resume_and_lifecycle_conflicts(
    api: httpx.AsyncClient, team: Team
) -> None:
    h = team.headers("analyst")
    url = f"/conversations/{(await _conversation(api, team))['id']}"

    renamed = await api.patch(url, json={"title": "Garden"}, headers=h)
    paused = await api.patch(url, json={"status": "paused"}, headers=h)
    resumed = await api.patch(url, json={"status": "active"}, headers=h)
    done = await api.patch(url, json={"status": "completed"}, headers=h)
    reopened = await api.patch(url, json={"status": "active"}, headers=h)
    posted = await api.post(f"{url}/messages", json={"content": "hello?"}, headers=h)

    assert renamed.json()["title"] == "Garden"
    assert (paused.json()["status"], resumed.json()["status"]) == ("paused", "active")
    assert done.json()["status"] == "completed"
    assert reopened.status_code == 409 and posted.status_code == 409
    assert reopened.headers["content-type"].startswith("application/problem+json")


async def test_given_a_private_conversation_then_only_its_creator_sees_it_until_shared(
    api: httpx.AsyncClient, team: Team
) -> None:
    conversation = await _conversation(api, team, "analyst")
    url = f"/conversations/{conversation['id']}"
    hidden = await api.get(url, headers=team.headers("owner"))
    listed = await api.get("/conversations", headers=team.headers("owner"))
    assert hidden.status_code == 404
    assert conversation["id"] not in {c["id"] for c in listed.json()["items"]}

    shared = await api.patch(url, json={"shared": True}, headers=team.headers("analyst"))
    seen = await api.get(url, headers=team.headers("viewer"))
    renamed_by_viewer = await api.patch(url, json={"title": "x"}, headers=team.headers("viewer"))
    renamed_by_operator = await api.patch(
        url, json={"title": "x"}, headers=team.headers("operator")
    )
    renamed_by_admin = await api.patch(url, json={"title": "Team"}, headers=team.headers("admin"))

    assert shared.json()["shared"] is True and seen.status_code == 200
    assert renamed_by_viewer.status_code == 403 and renamed_by_operator.status_code == 403
    assert renamed_by_admin.status_code == 200


@pytest.mark.parametrize("actor", ACTORS)
async def test_given_each_actor_then_chat_needs_the_analyst_role(
    api: httpx.AsyncClient, team: Team, actor: str
) -> None:
    created = await api.post("/conversations", json={}, headers=team.headers(actor))
    listed = await api.get("/conversations", headers=team.headers(actor))

    assert created.status_code == expected(actor, 201, minimum="analyst")
    assert listed.status_code == expected(actor, 200, minimum="viewer")


async def test_given_a_deleted_conversation_then_it_and_its_messages_are_gone(
    api: httpx.AsyncClient, team: Team
) -> None:
    h = team.headers("analyst")
    url = f"/conversations/{(await _conversation(api, team))['id']}"
    await api.post(f"{url}/messages", json={"content": "secret plans"}, headers=h)

    deleted = await api.delete(url, headers=h)

    assert deleted.status_code == 204
    assert (await api.get(url, headers=h)).status_code == 404
    assert (await api.get(f"{url}/messages", headers=h)).status_code == 404


async def test_given_another_tenant_then_every_conversation_route_is_not_found(
    api: httpx.AsyncClient, team: Team
) -> None:
    conversation = await _conversation(api, team, shared=True)
    url = f"/conversations/{conversation['id']}"
    stranger = await sign_up(api, "stranger")
    own = await api.post("/workspaces", json={"name": "Elsewhere"}, headers=stranger.auth)
    h = {**stranger.auth, "X-Workspace-Id": own.json()["id"]}

    attempts = [
        await api.get(url, headers=h),
        await api.patch(url, json={"title": "mine"}, headers=h),
        await api.delete(url, headers=h),
        await api.get(f"{url}/messages", headers=h),
        await api.post(f"{url}/messages", json={"content": "hi"}, headers=h),
        await api.get(f"{url}/messages/pending", headers=h),
        await api.get(f"{url}/export", headers=h),
    ]

    assert [r.status_code for r in attempts] == [404] * len(attempts)
    assert conversation["id"] not in {
        c["id"] for c in (await api.get("/conversations", headers=h)).json()["items"]
    }


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"content": ""}, 422),
        ({"content": "   "}, 422),
        ({"content": "bad \u0000 byte"}, 422),
        ({"content": "x" * 20_001}, 422),
        ({"content": 42}, 422),
        ({"text": "wrong field"}, 422),
    ],
)
async def test_given_bad_messages_then_422_problem_and_nothing_stored(
    api: httpx.AsyncClient, team: Team, body: dict[str, Any], status: int
) -> None:
    h = team.headers("analyst")
    url = f"/conversations/{(await _conversation(api, team))['id']}"

    response = await api.post(f"{url}/messages", json=body, headers=h)

    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (await api.get(url, headers=h)).json()["message_count"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "discussion"},  # a discussion needs a goal
        {"agents": ["no_such_agent"]},
        {"mode": "debate"},
        {"title": "t" * 201},
    ],
)
async def test_given_bad_conversations_then_422_problem(
    api: httpx.AsyncClient, team: Team, body: dict[str, Any]
) -> None:
    response = await api.post("/conversations", json=body, headers=team.headers("analyst"))

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_given_a_discussion_then_the_discussion_team_is_its_default(
    api: httpx.AsyncClient, team: Team
) -> None:
    conversation = await _conversation(
        api, team, mode="discussion", goal="Choose a launch city for the app"
    )

    assert conversation["title"] == "Choose a launch city for the app"
    assert set(conversation["agents"]) == {
        "project_manager",
        "technical_architect",
        "creative_strategist",
        "quality_assurance",
        "resource_coordinator",
    }
