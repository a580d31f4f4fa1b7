"""The 12-step onboarding through the gateway on the offline model and the real workers:
run to completion with real dependencies, each step's structured output stored in its
memory collection, a failed step resumed without redoing what succeeded, the codex given
to campaign briefs; roles, tenancy and bad input."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from tests.e2e.conftest import ACTORS, Team, expected, sign_up
from tests.fakes.models import AskingOffline

STEPS = [
    "fundamentals", "company", "personas", "market", "industry", "trends", "competitors",
    "positioning", "messaging", "channels", "content_pillars", "roadmap",
]  # fmt: skip


async def _finished(
    api: httpx.AsyncClient, headers: dict[str, str], run_id: str, after: int = 0
) -> tuple[str, int]:
    """Long-poll the run's events after `after` until the run finishes: its status and the
    event id to follow from."""
    for _ in range(30):
        page = await api.get(
            f"/runs/{run_id}/events", params={"after": after, "wait": 5}, headers=headers
        )
        assert page.status_code == 200, page.text
        body = page.json()
        for item in body["items"]:
            if item["type"] == "run.finished":
                return str(item["payload"]["status"]), int(item["id"])
        after = body["next_after"]
    raise AssertionError("the onboarding did not finish")


@pytest.fixture
def broken_competitors() -> Iterator[None]:
    AskingOffline.broken_steps.add("Competitors")
    yield
    AskingOffline.broken_steps.discard("Competitors")


async def _workspace(api: httpx.AsyncClient, name: str) -> dict[str, str]:
    owner = await sign_up(api, name)
    created = await api.post("/workspaces", json={"name": name}, headers=owner.auth)
    return {**owner.auth, "X-Workspace-Id": created.json()["id"]}


async def test_given_a_company_then_the_onboarding_completes_and_its_codex_serves_campaigns(
    api: httpx.AsyncClient, database_url: str
) -> None:
    headers = await _workspace(api, "onboarded")
    before = await api.get("/onboarding", headers=headers)
    assert before.status_code == 200
    assert before.json()["status"] == "not_started"
    assert [s["key"] for s in before.json()["steps"]] == STEPS

    started = await api.post(
        "/onboarding", json={"company": "Calm Notes: a note app for busy teams"}, headers=headers
    )
    assert started.status_code == 202, started.text
    assert started.json()["resumed"] is False
    run_id = started.json()["run_id"]
    status, _ = await _finished(api, headers, run_id)
    assert status == "succeeded"

    progress = (await api.get("/onboarding", headers=headers)).json()
    assert progress["run_id"] == run_id
    assert progress["completed_steps"] == 12
    steps = {s["key"]: s for s in progress["steps"]}
    assert all(s["status"] == "succeeded" and s["output"]["findings"] for s in steps.values())
    assert set(steps["positioning"]["depends_on"]) == {"personas", "market", "competitors"}
    assert steps["competitors"]["collection"] == "competitor_intel"
    assert steps["trends"]["collection"] == "industry_research"
    assert steps["fundamentals"]["collection"] == "user_preferences"
    assert set(progress["codex"]) == set(STEPS)

    run = (await api.get(f"/runs/{run_id}", headers=headers)).json()
    finished_at = {s["key"]: s["finished_at"] for s in run["steps"]}
    started_at = {s["key"]: s["started_at"] for s in run["steps"]}
    for spec in progress["steps"]:
        for dep in spec["depends_on"]:
            assert finished_at[dep] <= started_at[spec["key"]], (dep, spec["key"])

    # Each step's findings are queued for its memory collection (embedded by the worker).
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "select title, collection from public.documents where workspace_id = %s",
            (headers["X-Workspace-Id"],),
        ).fetchall()
    assert {(f"Onboarding: {s['title']}", s["collection"]) for s in progress["steps"]} == set(rows)

    campaign = await api.post(
        "/campaigns",
        json={"name": "Codex launch", "objective_type": "consideration", "budget": 5},
        headers=headers,
    )
    brief = await api.post(f"/campaigns/{campaign.json()['id']}/generate-brief", headers=headers)
    assert brief.status_code == 202, brief.text
    brief_run = await api.get(f"/runs/{brief.json()['run_id']}", headers=headers)
    assert "# The company codex" in brief_run.json()["input"]


@pytest.mark.usefixtures("broken_competitors")
async def test_given_a_failed_step_then_a_new_start_resumes_without_redoing_the_rest(
    api: httpx.AsyncClient,
) -> None:
    headers = await _workspace(api, "flaky")
    started = await api.post("/onboarding", json={"company": "Flaky Co [flaky]"}, headers=headers)
    run_id = started.json()["run_id"]
    status, last = await _finished(api, headers, run_id)
    assert status == "failed"
    steps = {s["key"]: s for s in (await api.get("/onboarding", headers=headers)).json()["steps"]}
    assert steps["competitors"]["status"] == "failed"
    assert steps["positioning"]["status"] == "pending"
    assert steps["trends"]["status"] == "succeeded"
    done_before = {k: s["output"] for k, s in steps.items() if s["status"] == "succeeded"}

    AskingOffline.broken_steps.discard("Competitors")
    resumed = await api.post("/onboarding", json={"company": "Flaky Co [flaky]"}, headers=headers)
    assert resumed.status_code == 202, resumed.text
    assert resumed.json() == {"run_id": run_id, "resumed": True}
    status, _ = await _finished(api, headers, run_id, after=last)
    assert status == "succeeded"
    progress = (await api.get("/onboarding", headers=headers)).json()
    assert progress["completed_steps"] == 12
    after = {s["key"]: s for s in progress["steps"]}
    assert {k: after[k]["output"] for k in done_before} == done_before
    run = (await api.get(f"/runs/{run_id}", headers=headers)).json()
    attempts = {s["key"]: s["attempt"] for s in run["steps"]}
    assert attempts["fundamentals"] == 1 and attempts["competitors"] == 2


async def test_given_an_onboarding_in_progress_then_another_start_is_409(
    api: httpx.AsyncClient,
) -> None:
    headers = await _workspace(api, "busy")
    first = await api.post("/onboarding", json={"company": "Busy Co"}, headers=headers)
    assert first.status_code == 202
    second = await api.post("/onboarding", json={"company": "Busy Co"}, headers=headers)
    # The first may already have ended on a fast machine; then the second is a new run.
    await _finished(api, headers, first.json()["run_id"])
    if second.status_code == 409:
        assert second.headers["content-type"].startswith("application/problem+json")
    else:
        assert second.status_code == 202
        assert second.json()["run_id"] != first.json()["run_id"]
        await _finished(api, headers, second.json()["run_id"])


@pytest.mark.parametrize("body", [{}, {"company": ""}, {"company": "x" * 4001}, {"firm": "x"}])
async def test_given_bad_onboarding_input_then_422(
    api: httpx.AsyncClient, team: Team, body: dict[str, Any]
) -> None:
    response = await api.post("/onboarding", json=body, headers=team.headers("owner"))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("actor", ACTORS)
async def test_given_each_role_then_operators_start_and_viewers_read(
    api: httpx.AsyncClient, team: Team, actor: str
) -> None:
    read = await api.get("/onboarding", headers=team.headers(actor))
    assert read.status_code == expected(actor, 200, minimum="viewer")
    if actor in ("analyst", "viewer", "outsider"):
        start = await api.post("/onboarding", json={"company": "Co"}, headers=team.headers(actor))
        assert start.status_code == expected(actor, 202, minimum="operator")


async def test_given_another_tenant_then_its_onboarding_is_invisible(
    api: httpx.AsyncClient,
) -> None:
    mine = await _workspace(api, "mine")
    started = await api.post("/onboarding", json={"company": "Private Co"}, headers=mine)
    await _finished(api, mine, started.json()["run_id"])
    stranger = await sign_up(api, "stranger")
    as_stranger = {**stranger.auth, "X-Workspace-Id": mine["X-Workspace-Id"]}
    assert (await api.get("/onboarding", headers=as_stranger)).status_code == 404
    refused = await api.post("/onboarding", json={"company": "x"}, headers=as_stranger)
    assert refused.status_code == 404
