"""`GET /audits` through the gateway: admins and owners read their workspace's findings;
lower roles get 403, outsiders 404; no tenant sees another's or the system's findings."""

from __future__ import annotations

import uuid

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.e2e.conftest import ACTORS, Team, expected, sign_up


def _plant(database_url: str, workspace_id: str | None, subject: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "insert into public.audits (workspace_id, audit, check_name, severity, subject,"
            " details) values (%s, 'operations', 'dead_steps', 'warning', %s, %s)",
            (workspace_id, subject, Jsonb({"count": 1})),
        )


@pytest.fixture(scope="module")
def planted(team: Team, database_url: str) -> str:
    subject = f"planted {uuid.uuid4().hex[:8]}"
    _plant(database_url, team.workspace_id, subject)
    _plant(database_url, None, f"system {subject}")
    return subject


@pytest.mark.parametrize("actor", ACTORS)
async def test_given_each_role_when_listing_audits_then_only_admins_and_owners_may(
    api: httpx.AsyncClient, team: Team, planted: str, actor: str
) -> None:
    response = await api.get("/audits", headers=team.headers(actor))
    assert response.status_code == expected(actor, 200, minimum="admin"), response.text
    if response.status_code == 200:
        items = response.json()["items"]
        assert [i["subject"] for i in items] == [planted]
        assert items[0]["check"] == "dead_steps" and items[0]["severity"] == "warning"
        assert items[0]["details"] == {"count": 1}
    else:
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_given_another_tenant_then_its_own_workspace_shows_none_of_these_findings(
    api: httpx.AsyncClient, team: Team, planted: str
) -> None:
    stranger = await sign_up(api, "stranger")
    created = await api.post("/workspaces", json={"name": "Elsewhere"}, headers=stranger.auth)
    own = {**stranger.auth, "X-Workspace-Id": created.json()["id"]}
    response = await api.get("/audits", headers=own)
    assert response.status_code == 200 and response.json()["items"] == []


async def test_given_a_bad_severity_or_cursor_then_422_problem(
    api: httpx.AsyncClient, team: Team, planted: str
) -> None:
    for params in ({"severity": "loud"}, {"cursor": "not-a-cursor"}, {"limit": "0"}):
        response = await api.get("/audits", headers=team.headers("owner"), params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    filtered = await api.get(
        "/audits", headers=team.headers("owner"), params={"severity": "critical"}
    )
    assert filtered.status_code == 200 and filtered.json()["items"] == []
