"""One set of shapes across the API: a status has one title wherever the error comes
from, timestamps have one form in JSON and in streams, list items say what they are."""

from __future__ import annotations

import re
import uuid

import httpx

from tests.e2e.conftest import Team
from tests.e2e.sse import read_events
from tests.e2e.test_runs_api import start
from tests.e2e.test_stream_tickets import ONE_STEP

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


async def test_given_not_found_from_the_gateway_a_router_or_the_domain_then_one_title(
    api: httpx.AsyncClient, team: Team
) -> None:
    h = team.headers("viewer")
    gateway = await api.get("/no/such/route", headers=h)
    domain = await api.get(f"/runs/{uuid.uuid4()}", headers=h)
    agent = await api.get("/agents/no_such_agent", headers=h)

    titles = {r.json()["title"] for r in (gateway, domain, agent)}
    assert [r.status_code for r in (gateway, domain, agent)] == [404, 404, 404]
    assert titles == {"Not Found"}
    assert {r.json()["type"] for r in (gateway, domain, agent)} == {
        "https://guildstack.dev/problems/not-found"
    }


async def test_given_invalid_input_from_validation_or_the_domain_then_one_title(
    api: httpx.AsyncClient, team: Team
) -> None:
    h = team.headers("operator")
    by_schema = await api.post("/runs", json={"kind": "single"}, headers=h)
    by_domain = await api.post(
        "/conversations", json={"title": "x", "agents": ["no_such_agent"]}, headers=h
    )

    assert (by_schema.status_code, by_domain.status_code) == (422, 422)
    assert by_schema.json()["title"] == by_domain.json()["title"] == "Unprocessable Content"


async def test_given_a_run_then_timestamps_have_one_form_in_json_and_in_its_stream(
    api: httpx.AsyncClient, team: Team
) -> None:
    run = await start(api, team, ONE_STEP)
    h = team.headers("viewer")
    streamed = await read_events(api, f"/runs/{run['id']}/stream", h)
    logged = await api.get(f"/runs/{run['id']}/events", params={"limit": 500}, headers=h)
    detail = (await api.get(f"/runs/{run['id']}", headers=h)).json()

    assert [e["data"]["created_at"] for e in streamed] == [
        e["created_at"] for e in logged.json()["items"]
    ]
    stamps = [e["data"]["created_at"] for e in streamed]
    stamps += [detail["created_at"], detail["updated_at"], detail["finished_at"]]
    assert all(RFC3339_UTC.match(s) for s in stamps), stamps


async def test_given_runs_listed_then_items_are_summaries_without_steps(
    api: httpx.AsyncClient, team: Team
) -> None:
    run = await start(api, team, ONE_STEP)
    h = team.headers("viewer")

    listed = (await api.get("/runs", params={"limit": 200}, headers=h)).json()
    detail = (await api.get(f"/runs/{run['id']}", headers=h)).json()

    item = next(i for i in listed["items"] if i["id"] == run["id"])
    assert "steps" not in item
    assert set(detail) - set(item) == {"steps"}
    assert isinstance(detail["steps"], list) and detail["steps"]
    assert "next_cursor" in listed
