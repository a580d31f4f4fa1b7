"""Streams a browser's EventSource can open: a ticket in the URL instead of headers, for one
stream only; and streams of finished work that end at once instead of waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Team, sign_up
from tests.e2e.sse import read_events
from tests.e2e.test_runs_api import start, wait_for_event

ONE_STEP = {
    "kind": "single",
    "title": "Tagline",
    "input": "A tagline for a bakery.",
    "nodes": [{"key": "write", "agent": "seo_agent"}],
}
# With a stream held open, a reader would wait a heartbeat (15 s) for the next byte.
PROMPT_SECONDS = 5


async def ticket_for(api: httpx.AsyncClient, team: Team, path: str) -> dict[str, Any]:
    response = await api.post(f"{path}/stream-ticket", headers=team.headers("viewer"))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["stream"] == f"{path}/stream"
    lifetime = datetime.fromisoformat(body["expires_at"]) - datetime.now(UTC)
    assert timedelta(seconds=50) < lifetime <= timedelta(seconds=60)
    return body


async def finished_run(api: httpx.AsyncClient, team: Team) -> dict[str, Any]:
    run = await start(api, team, ONE_STEP)
    await wait_for_event(api, team, run["id"], "run.finished")
    return run


async def test_given_a_ticket_then_a_run_streams_without_any_header(
    api: httpx.AsyncClient, team: Team
) -> None:
    run = await start(api, team, ONE_STEP)
    ticket = await ticket_for(api, team, f"/runs/{run['id']}")

    url = f"/runs/{run['id']}/stream?ticket={ticket['ticket']}"
    events = await read_events(api, url, {})

    assert events[-1]["event"] == "run.finished"
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    # The same ticket opens the same stream again within its minute (an EventSource's
    # reconnect), resuming after the last event it saw.
    resumed = await api.get(url, headers={"Last-Event-ID": str(events[-2]["id"])})
    assert resumed.status_code == 200
    assert "event: run.finished" in resumed.text


async def test_given_a_ticket_then_it_opens_no_other_stream(
    api: httpx.AsyncClient, team: Team
) -> None:
    one, other = await start(api, team, ONE_STEP), await start(api, team, ONE_STEP)
    ticket = (await ticket_for(api, team, f"/runs/{one['id']}"))["ticket"]

    for url in (
        f"/runs/{other['id']}/stream?ticket={ticket}",
        f"/conversations/{one['id']}/stream?ticket={ticket}",
        f"/runs/{one['id']}/stream?ticket={'x' * 43}",
        f"/runs/{one['id']}/stream?ticket=short",
    ):
        response = await api.get(url)
        assert response.status_code == 401, (url, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    # A ticket is not an access token anywhere else.
    listing = await api.get("/runs", headers={"Authorization": f"Bearer {ticket}"})
    assert listing.status_code == 401


async def test_given_a_ticket_and_a_token_together_then_400(
    api: httpx.AsyncClient, team: Team
) -> None:
    run = await start(api, team, ONE_STEP)
    ticket = (await ticket_for(api, team, f"/runs/{run['id']}"))["ticket"]

    both = await api.get(
        f"/runs/{run['id']}/stream?ticket={ticket}", headers=team.headers("viewer")
    )

    assert both.status_code == 400


async def test_given_another_tenant_then_no_ticket_for_the_stream(
    api: httpx.AsyncClient, team: Team
) -> None:
    run = await start(api, team, ONE_STEP)
    stranger = await sign_up(api, "stranger")
    made = await api.post("/workspaces", json={"name": "Elsewhere"}, headers=stranger.auth)
    headers = {**stranger.auth, "X-Workspace-Id": made.json()["id"]}

    for path in (f"/runs/{run['id']}", f"/conversations/{run['id']}"):
        response = await api.post(f"{path}/stream-ticket", headers=headers)
        assert response.status_code == 404, response.text
    unauthenticated = await api.post(f"/runs/{run['id']}/stream-ticket")
    assert unauthenticated.status_code == 401


async def test_given_a_finished_run_then_its_stream_sends_what_is_left_and_closes(
    api: httpx.AsyncClient, team: Team
) -> None:
    run = await finished_run(api, team)
    url = f"/runs/{run['id']}/stream"
    h = team.headers("viewer")

    everything = await api.get(url, headers=h, timeout=PROMPT_SECONDS)
    assert everything.status_code == 200
    last = everything.text.rstrip().split("\n\n")[-1]
    assert "event: run.finished" in last
    last_id = int(last.split("\n")[0].removeprefix("id: "))

    rest = await api.get(url, headers={**h, "Last-Event-ID": str(last_id - 1)}, timeout=5)
    assert rest.status_code == 200
    assert rest.text.count("event: ") == 1

    nothing = await api.get(url, headers={**h, "Last-Event-ID": str(last_id)}, timeout=5)
    assert nothing.status_code == 204
    assert nothing.content == b""


async def test_given_a_completed_conversation_then_its_stream_closes_at_once(
    api: httpx.AsyncClient, team: Team
) -> None:
    h = team.headers("analyst")
    made = await api.post("/conversations", json={"title": "Done soon"}, headers=h)
    conversation = made.json()["id"]
    said = await api.post(
        f"/conversations/{conversation}/messages", json={"content": "hello"}, headers=h
    )
    assert said.status_code == 201, said.text
    ended = await api.patch(
        f"/conversations/{conversation}", json={"status": "completed"}, headers=h
    )
    assert ended.status_code == 200, ended.text
    ticket = (await ticket_for_conversation(api, team, conversation))["ticket"]
    url = f"/conversations/{conversation}/stream?ticket={ticket}"

    everything = await api.get(url, timeout=PROMPT_SECONDS)
    assert everything.status_code == 200, everything.text
    ids = [int(line[4:]) for line in everything.text.split("\n") if line.startswith("id: ")]
    assert ids

    nothing = await api.get(url, headers={"Last-Event-ID": str(ids[-1])}, timeout=PROMPT_SECONDS)
    assert nothing.status_code == 204


async def ticket_for_conversation(
    api: httpx.AsyncClient, team: Team, conversation: str
) -> dict[str, Any]:
    response = await api.post(
        f"/conversations/{conversation}/stream-ticket", headers=team.headers("analyst")
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.mark.parametrize("actor", ["viewer", "admin"])
async def test_given_any_member_then_a_ticket_for_a_run_they_can_read(
    api: httpx.AsyncClient, team: Team, actor: str
) -> None:
    run = await start(api, team, ONE_STEP)

    response = await api.post(f"/runs/{run['id']}/stream-ticket", headers=team.headers(actor))

    assert response.status_code == 201
