"""Team discussions through the gateway, on the offline model and the real workers: a
discussion started, followed on the conversation's SSE stream to its consensus, its result
exported and its analytics read; roles, tenancy and bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ACTORS, Team, sign_up
from tests.e2e.sse import read_events


async def _discussion(api: httpx.AsyncClient, team: Team, **extra: Any) -> dict[str, Any]:
    body = {"mode": "discussion", "goal": "Pick a name for our reading app.", **extra}
    created = await api.post("/conversations", json=body, headers=team.headers("analyst"))
    assert created.status_code == 201, created.text
    conversation: dict[str, Any] = created.json()
    return conversation


def _completed(data: dict[str, Any]) -> bool:
    return bool(data["type"] == "status.changed" and data["payload"]["to"] == "completed")


async def _follow(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    conversation_id: str,
    until: Callable[[dict[str, Any]], bool] = _completed,
    after: int = 0,
) -> list[dict[str, Any]]:
    """The conversation's events over SSE (after `after`) up to the first `until` accepts."""
    url = f"/conversations/{conversation_id}/stream"
    return await read_events(api, url, {**headers, "Last-Event-ID": str(after)}, until=until)


async def test_given_a_discussion_then_it_reaches_consensus_over_the_stream(
    api: httpx.AsyncClient, team: Team
) -> None:
    h = team.headers("analyst")
    conversation = await _discussion(api, team, settings={"consensus_rule": "majority"})
    assert len(conversation["agents"]) == 5 and "project_manager" in conversation["agents"]
    cid = conversation["id"]

    started = await api.post(f"/conversations/{cid}/start", json={}, headers=h)
    assert started.status_code == 202, started.text
    events = await _follow(api, h, cid)

    assert [e["id"] for e in events] == list(range(1, len(events) + 1)), "each event once"
    types = [e["data"]["type"] for e in events]
    assert {"agent.typing", "message.new", "agent.response.complete", "consensus.reached"} <= set(
        types
    )
    consensus = next(
        e["data"]["payload"] for e in events if e["data"]["type"] == "consensus.reached"
    )
    assert consensus["tally"]["accepted"] and consensus["rule"] == "majority"
    done = (await api.get(f"/conversations/{cid}", headers=h)).json()
    assert done["status"] == "completed" and done["final_summary"]
    assert done["result"]["consensus"] and done["result"]["proposal"]["number"] == 1
    assert done["run_id"] == started.json()["run_id"]
    messages = (await api.get(f"/conversations/{cid}/messages", headers=h)).json()["items"]
    assert {m["type"] for m in messages} >= {"discussion", "proposal", "vote", "summary"}
    run = (await api.get(f"/runs/{done['run_id']}", headers=h)).json()
    assert run["kind"] == "discussion" and run["status"] == "succeeded"

    exported = await api.get(
        f"/conversations/{cid}/export", params={"format": "markdown"}, headers=h
    )
    assert "## Result" in exported.text and "accepted" in exported.text
    analytics = (await api.get(f"/conversations/{cid}/analytics", headers=h)).json()
    assert analytics["turns"] == len([m for m in messages if m["sender_kind"] == "agent"])
    assert analytics["personas"]["project_manager"]["turns"] >= 3
    assert analytics["seconds_to_consensus"] is not None


async def test_given_a_question_then_the_discussion_pauses_and_the_answer_resumes_it(
    api: httpx.AsyncClient, team: Team
) -> None:
    h = team.headers("analyst")
    # The test workers' offline model asks the user first when the prompt says "[ask]".
    cid = (await _discussion(api, team, goal="Plan our launch [ask]"))["id"]
    await api.post(f"/conversations/{cid}/start", headers=h)

    def paused(data: dict[str, Any]) -> bool:
        return bool(data["type"] == "status.changed" and data["payload"]["to"] == "paused")

    before = await _follow(api, h, cid, paused)
    (question,) = (await api.get(f"/conversations/{cid}/messages/pending", headers=h)).json()[
        "items"
    ]
    assert question["type"] == "question_to_user" and question["requires_user_response"]
    answered = await api.post(
        f"/conversations/{cid}/messages", json={"content": "Germany first."}, headers=h
    )
    assert answered.status_code == 201 and answered.json()["type"] == "user_response"

    def reply_of(data: dict[str, Any]) -> bool:
        payload = data["payload"]
        return bool(data["type"] == "message.new" and payload["sender_id"] == question["sender_id"])

    after = await _follow(api, h, cid, reply_of, after=before[-1]["id"])

    types = [e["data"]["type"] for e in after]
    assert types[:2] == ["message.new", "status.changed"]  # the answer, then active again
    assert after[1]["data"]["payload"] == {"from": "paused", "to": "active"}
    assert after[-1]["data"]["payload"]["type"] != "question_to_user"


async def test_given_a_discussion_then_it_starts_once_and_a_chat_is_not_started(
    api: httpx.AsyncClient, team: Team
) -> None:
    h = team.headers("analyst")
    cid = (await _discussion(api, team))["id"]
    chat = (await api.post("/conversations", json={}, headers=h)).json()["id"]

    first = await api.post(f"/conversations/{cid}/start", headers=h)
    again = await api.post(f"/conversations/{cid}/start", headers=h)
    not_a_discussion = await api.post(f"/conversations/{chat}/start", headers=h)

    assert first.status_code == 202
    assert (again.status_code, not_a_discussion.status_code) == (409, 409)
    assert again.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "discussion"},  # no goal
        {"mode": "discussion", "goal": "x", "settings": {"consensus_rule": "most"}},
        {"mode": "discussion", "goal": "x", "settings": {"max_turns": 0}},
        {"mode": "discussion", "goal": "x", "settings": {"colour": "blue"}},
        {"mode": "discussion", "goal": "x", "agents": ["no_such_agent"]},
        {"mode": "chat", "settings": {"max_turns": 5}},
    ],
)
async def test_given_bad_discussion_input_then_422(
    api: httpx.AsyncClient, team: Team, body: dict[str, Any]
) -> None:
    response = await api.post("/conversations", json=body, headers=team.headers("analyst"))

    assert response.status_code == 422, response.text


async def test_given_a_bad_budget_then_the_start_is_refused(
    api: httpx.AsyncClient, team: Team
) -> None:
    cid = (await _discussion(api, team))["id"]

    response = await api.post(
        f"/conversations/{cid}/start", json={"budget_usd": -1}, headers=team.headers("analyst")
    )

    assert response.status_code == 422


@pytest.mark.parametrize("actor", ACTORS)
async def test_given_each_role_then_starting_a_shared_discussion_follows_the_rules(
    api: httpx.AsyncClient, team: Team, actor: str
) -> None:
    cid = (await _discussion(api, team, shared=True))["id"]

    response = await api.post(f"/conversations/{cid}/start", headers=team.headers(actor))

    # Its creator (the analyst) or an admin may start a shared discussion; others read it.
    allowed = {"owner": 202, "admin": 202, "analyst": 202, "operator": 403, "viewer": 403}
    assert response.status_code == allowed.get(actor, 404), response.text


async def test_given_another_tenant_then_discussions_are_invisible(
    api: httpx.AsyncClient, team: Team
) -> None:
    cid = (await _discussion(api, team))["id"]
    stranger = await sign_up(api, "stranger")
    own = await api.post("/workspaces", json={"name": "Elsewhere"}, headers=stranger.auth)
    h = {**stranger.auth, "X-Workspace-Id": own.json()["id"]}

    statuses = [
        (await api.post(f"/conversations/{cid}/start", headers=h)).status_code,
        (await api.get(f"/conversations/{cid}/analytics", headers=h)).status_code,
        (await api.get(f"/conversations/{cid}", headers=h)).status_code,
    ]

    assert statuses == [404, 404, 404]


async def test_given_an_admin_then_the_conversation_retention_is_set_and_cleared(
    api: httpx.AsyncClient, team: Team
) -> None:
    url = f"/workspaces/{team.workspace_id}"

    kept = await api.patch(
        url, json={"conversation_retention_days": 30}, headers=team.headers("admin")
    )
    by_analyst = await api.patch(
        url, json={"conversation_retention_days": 1}, headers=team.headers("analyst")
    )
    too_long = await api.patch(
        url, json={"conversation_retention_days": 5000}, headers=team.headers("admin")
    )
    cleared = await api.patch(
        url, json={"conversation_retention_days": 0}, headers=team.headers("admin")
    )

    assert kept.status_code == 200 and kept.json()["conversation_retention_days"] == 30
    assert (by_analyst.status_code, too_long.status_code) == (403, 422)
    assert cleared.json()["conversation_retention_days"] is None
