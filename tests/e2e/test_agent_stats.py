"""`GET /agents` and `GET /agents/{code}` report each agent's steps over the last week
(success rate, p50/p95 latency, running now) and its live status: working while a step
runs, error after a failed one, idle otherwise."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from tests.e2e.conftest import Team, sign_up


def _plant(
    database_url: str, workspace_id: str, user_id: str, steps: list[tuple[str, int, str]]
) -> str:
    """A run whose steps (status, duration in ms, agent) settled a minute ago in order."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "insert into public.runs (workspace_id, created_by, kind, title, input, status)"
            " values (%s, %s, 'parallel', 'stats', 'x', 'running') returning id",
            (workspace_id, user_id),
        ).fetchone()
        assert row is not None
        for n, (status, ms, agent) in enumerate(steps):
            conn.execute(
                "insert into public.steps (run_id, key, workspace_id, position, agent_code,"
                " status, started_at, finished_at, lease_until) values (%s, %s, %s, %s, %s, %s,"
                " now() - interval '1 minute' + make_interval(secs => %s - %s),"
                " case when %s = 'running' then null"
                "      else now() - interval '1 minute' + make_interval(secs => %s) end,"
                " case when %s = 'running' then now() + interval '5 minutes' end)",
                (row[0], f"S{n}", workspace_id, n, agent, status, n, ms / 1000, status, n, status),
            )
        return str(row[0])


@pytest.fixture(scope="module")
async def busy(team: Team, database_url: str) -> Team:
    owner = team.users["owner"].id
    _plant(
        database_url,
        team.workspace_id,
        owner,
        [
            ("succeeded", 100, "seo_agent"),
            ("succeeded", 200, "seo_agent"),
            ("succeeded", 1000, "seo_agent"),
            ("failed", 50, "seo_agent"),  # the last to settle
            ("succeeded", 300, "design_agent"),
            ("running", 0, "design_agent"),
        ],
    )
    return team


async def test_given_settled_steps_then_an_agent_reports_its_success_rate_and_latency(
    api: httpx.AsyncClient, busy: Team
) -> None:
    response = await api.get("/agents/seo_agent", headers=busy.headers("viewer"))
    assert response.status_code == 200, response.text
    body = response.json()
    stats = body["stats"]
    assert (stats["window_days"], stats["steps"], stats["success_rate"]) == (7, 4, 0.75)
    assert stats["p50_latency_ms"] == pytest.approx(200, abs=1)
    assert stats["p95_latency_ms"] == pytest.approx(920, abs=1)  # 200 + 0.9 × (1000 − 200)
    assert stats["running"] == 0 and body["status"] == "error"


async def test_given_the_list_then_every_agent_has_stats_and_its_live_status(
    api: httpx.AsyncClient, busy: Team
) -> None:
    response = await api.get("/agents", headers=busy.headers("viewer"), params={"limit": 200})
    agents = {a["code"]: a for a in response.json()["items"]}
    assert agents["design_agent"]["status"] == "working"
    assert agents["design_agent"]["stats"]["running"] == 1
    assert agents["seo_agent"]["status"] == "error"
    quiet = agents["business_agent"]
    assert quiet["status"] == "idle"
    assert quiet["stats"] == {
        "window_days": 7,
        "steps": 0,
        "success_rate": None,
        "p50_latency_ms": None,
        "p95_latency_ms": None,
        "running": 0,
    }


async def test_given_another_tenant_then_its_agents_show_none_of_these_steps(
    api: httpx.AsyncClient, busy: Team
) -> None:
    stranger = await sign_up(api, "stranger")
    created = await api.post("/workspaces", json={"name": "Elsewhere"}, headers=stranger.auth)
    own = {**stranger.auth, "X-Workspace-Id": created.json()["id"]}
    seo = (await api.get("/agents/seo_agent", headers=own)).json()
    assert seo["stats"]["steps"] == 0 and seo["status"] == "idle"
    assert (await api.get("/agents/seo_agent", headers=busy.headers("outsider"))).status_code == 404
