"""Chat turns through the gateway, on the offline model: a reply streamed as `meta`, `token`s
and `done`, stored in the conversation with its routing; a client that leaves mid-reply
loses nothing (the conversation's own stream shows the reply); refusals come before the
stream, as problems; other tenants see nothing."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Team, sign_up
from tests.e2e.sse import read_events


async def chat(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    body: dict[str, Any],
    *,
    stop_after: int | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """The (event, data) frames of `POST /chat/message`, until it ends or `stop_after`."""
    frames: list[tuple[str, dict[str, Any]]] = []
    event: str | None = None
    async with api.stream("POST", "/chat/message", json=body, headers=headers) as r:
        assert r.status_code == 200, await r.aread()
        assert r.headers["content-type"].startswith("text/event-stream")
        async for line in r.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event is not None:
                frames.append((event, json.loads(line[6:])))
                event = None
                if stop_after is not None and len(frames) >= stop_after:
                    break  # the client goes away mid-turn
    return frames


async def conversation_events(
    api: httpx.AsyncClient, headers: dict[str, str], conversation_id: str, until: str
) -> list[dict[str, Any]]:
    """The conversation's SSE events (from the start) up to the first of type `until`."""
    url = f"/conversations/{conversation_id}/stream"
    return await read_events(api, url, headers, until=lambda data: data["type"] == until)


async def test_given_a_message_then_the_reply_streams_and_is_stored_with_its_routing(
    api: httpx.AsyncClient, team: Team
) -> None:
    h = team.headers("analyst")

    frames = await chat(api, h, {"content": "Write a tagline for my bakery's SEO page"})

    kinds = [event for event, _ in frames]
    assert kinds[:2] == ["meta", "meta"]
    assert kinds[-1] == "done", frames[-1]
    assert set(kinds[2:-1]) == {"token"} and len(kinds[2:-1]) >= 2, "the reply streams"
    first, routed = frames[0][1], frames[1][1]
    done = frames[-1][1]
    conversation_id = first["conversation_id"]
    # No model key here: the routing model is the offline one, so keywords decide.
    assert routed["routing"]["method"] == "keywords"
    routed_codes = [a["code"] for a in routed["routing"]["agents"]]
    assert routed_codes[-1] == "nicole_core" and "seo_agent" in routed_codes, routed_codes
    streamed = "".join(data["text"] for event, data in frames if event == "token")

    messages = await api.get(f"/conversations/{conversation_id}/messages", headers=h)
    assert messages.status_code == 200, messages.text
    asked, reply = messages.json()["items"]
    assert (asked["sender_kind"], asked["content"]) == (
        "user",
        "Write a tagline for my bakery's SEO page",
    )
    assert asked["id"] == first["message_id"]
    assert reply["id"] == done["message_id"]
    assert reply["sender_kind"] == "agent" and reply["reply_to"] == asked["id"]
    assert reply["content"] == streamed, "what was streamed is what was stored"
    assert reply["routing"] == routed["routing"]
    assert done["usage"]["output_tokens"] > 0

    run = await api.get(f"/runs/{done['run_id']}", headers=h)
    assert run.status_code == 200 and run.json()["kind"] == "chat"
    assert run.json()["status"] == "succeeded"


async def test_given_a_conversation_then_the_next_turn_continues_it(
    api: httpx.AsyncClient, team: Team
) -> None:
    h = team.headers("analyst")
    first = await chat(api, h, {"content": "Remember my dog is called Biscuit"})
    conversation_id = first[0][1]["conversation_id"]

    second = await chat(
        api, h, {"content": "What is my dog called?", "conversation_id": conversation_id}
    )

    assert second[-1][0] == "done", second[-1]
    assert second[0][1]["conversation_id"] == conversation_id
    items = (await api.get(f"/conversations/{conversation_id}/messages", headers=h)).json()
    assert [m["sender_kind"] for m in items["items"]] == ["user", "agent", "user", "agent"]


async def test_given_a_client_that_leaves_mid_turn_then_the_reply_is_still_stored(
    api: httpx.AsyncClient, team: Team
) -> None:
    h = team.headers("analyst")

    frames = await chat(api, h, {"content": "Plan a week of dinners"}, stop_after=1)
    conversation_id = frames[0][1]["conversation_id"]

    events = await conversation_events(api, h, conversation_id, until="agent.response.complete")
    assert [e["id"] for e in events] == list(range(1, len(events) + 1)), "each event once"
    new = [e["data"]["payload"] for e in events if e["data"]["type"] == "message.new"]
    assert [m["sender_kind"] for m in new] == ["user", "agent"]
    messages = (await api.get(f"/conversations/{conversation_id}/messages", headers=h)).json()
    assert messages["items"][-1]["sender_kind"] == "agent"


async def test_given_named_agents_then_they_are_consulted_instead_of_routing(
    api: httpx.AsyncClient, team: Team
) -> None:
    frames = await chat(
        api,
        team.headers("analyst"),
        {"content": "Anything you like", "agents": ["seo_agent"]},
    )

    routing = frames[1][1]["routing"]
    assert routing["method"] == "explicit"
    assert [a["code"] for a in routing["agents"]] == ["seo_agent", "nicole_core"]
    assert frames[-1][0] == "done"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"content": ""}, 422),
        ({"content": "   "}, 422),
        ({"content": "x" * 40_000}, 422),
        ({"content": "hi", "agents": ["not a code!"]}, 422),
        ({"content": "hi", "agents": ["no_such_agent"]}, 422),
        ({"content": "nul \u0000 byte"}, 422),
        ({"content": "hi", "unknown": 1}, 422),
        ({"content": "hi", "conversation_id": "not-a-uuid"}, 422),
        ({"content": "hi", "conversation_id": str(uuid.uuid4())}, 404),
    ],
)
async def test_given_bad_input_then_a_problem_comes_before_any_stream(
    api: httpx.AsyncClient, team: Team, body: dict[str, Any], status: int
) -> None:
    response = await api.post("/chat/message", json=body, headers=team.headers("analyst"))

    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(("actor", "status"), [("viewer", 403), ("outsider", 404)])
async def test_given_a_viewer_or_an_outsider_then_chatting_is_refused(
    api: httpx.AsyncClient, team: Team, actor: str, status: int
) -> None:
    response = await api.post(
        "/chat/message", json={"content": "hello"}, headers=team.headers(actor)
    )

    assert response.status_code == status, response.text


async def test_given_another_tenants_conversation_then_it_cannot_be_chatted_in_or_followed(
    api: httpx.AsyncClient, team: Team
) -> None:
    frames = await chat(api, team.headers("analyst"), {"content": "Our secret roadmap"})
    theirs = frames[0][1]["conversation_id"]
    stranger = await sign_up(api, "stranger")
    own = await api.post("/workspaces", json={"name": "Elsewhere"}, headers=stranger.auth)
    h = {**stranger.auth, "X-Workspace-Id": own.json()["id"]}

    posted = await api.post(
        "/chat/message", json={"content": "leak it", "conversation_id": theirs}, headers=h
    )
    followed = await api.get(f"/conversations/{theirs}/stream", headers=h)
    # Naming the other workspace does not help a non-member either.
    spoofed = await api.get(
        f"/conversations/{theirs}/stream",
        headers={**stranger.auth, "X-Workspace-Id": team.workspace_id},
    )

    assert (posted.status_code, followed.status_code, spoofed.status_code) == (404, 404, 404)


async def test_given_another_members_private_chat_then_it_stays_private(
    api: httpx.AsyncClient, team: Team
) -> None:
    frames = await chat(api, team.headers("analyst"), {"content": "My private note"})
    conversation_id = frames[0][1]["conversation_id"]

    response = await api.post(
        "/chat/message",
        json={"content": "let me in", "conversation_id": conversation_id},
        headers=team.headers("operator"),
    )

    assert response.status_code == 404, response.text


async def test_given_a_bad_token_then_chat_is_unauthorized(
    api: httpx.AsyncClient, team: Team
) -> None:
    headers = {"Authorization": "Bearer not-a-token", "X-Workspace-Id": team.workspace_id}

    response = await api.post("/chat/message", json={"content": "hi"}, headers=headers)

    assert response.status_code == 401


async def test_given_a_spent_budget_then_a_turn_is_refused_before_the_stream(
    api: httpx.AsyncClient,
) -> None:
    owner = await sign_up(api, "thrifty")
    created = await api.post(
        "/workspaces", json={"name": "Thrifty", "monthly_budget_usd": 0}, headers=owner.auth
    )
    assert created.status_code == 201, created.text
    h = {**owner.auth, "X-Workspace-Id": created.json()["id"]}

    response = await api.post("/chat/message", json={"content": "hello"}, headers=h)

    assert response.status_code == 402, response.text
    assert response.json()["title"] == "Budget Exceeded"
    listed = await api.get("/conversations", headers=h)
    assert listed.json()["items"] == [], "nothing was stored"
