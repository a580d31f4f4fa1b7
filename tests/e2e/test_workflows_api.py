"""Workflow templates through the gateway: listed by GET /workflows, started by POST /runs
{template, input} (a plain pipeline, the onboarding, a campaign's brief); roles, tenancy
and bad input."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ACTORS, Team, expected, sign_up
from tests.e2e.test_onboarding_api import _finished as finished_status
from tests.e2e.test_runs_api import wait_for_event


async def _finished(api: httpx.AsyncClient, headers: dict[str, str], run_id: str) -> str:
    status, _ = await finished_status(api, headers, run_id)
    return status


async def test_given_the_catalog_then_the_templates_are_listed_with_versions(
    api: httpx.AsyncClient, team: Team
) -> None:
    listed = await api.get("/workflows", headers=team.headers("viewer"))
    assert listed.status_code == 200, listed.text
    by_name = {w["name"]: w for w in listed.json()["items"]}
    assert {"onboarding", "brief", "delivery_pipeline"} <= set(by_name)
    assert all(w["version"] >= 1 for w in by_name.values())
    pipeline = by_name["delivery_pipeline"]
    assert pipeline["kind"] == "pipeline"
    assert [n["agent"] for n in pipeline["nodes"]] == [
        "product_owner", "architect", "developer", "senior_reviewer",
    ]  # fmt: skip
    assert len(by_name["onboarding"]["nodes"]) == 12
    assert by_name["brief"]["kind"] == "campaign_brief"


async def test_given_the_delivery_template_then_post_runs_starts_the_pipeline(
    api: httpx.AsyncClient, team: Team
) -> None:
    started = await api.post(
        "/runs",
        json={"template": "delivery_pipeline", "input": "Export notes as PDF."},
        headers=team.headers("operator"),
    )
    assert started.status_code == 202, started.text
    run = started.json()["run"]
    assert run["kind"] == "pipeline"
    assert run["input"] == "Export notes as PDF."
    finished = await wait_for_event(api, team, run["id"], "run.finished")
    assert finished["payload"]["status"] == "succeeded"
    steps = (await api.get(f"/runs/{run['id']}", headers=team.headers("viewer"))).json()["steps"]
    assert [s["depends_on"] for s in steps] == [
        [], ["product_owner"], ["architect"], ["developer"],
    ]  # fmt: skip


async def test_given_area_templates_then_post_runs_starts_them_with_their_rules(
    api: httpx.AsyncClient,
) -> None:
    owner = await sign_up(api, "templated")
    ws = await api.post("/workspaces", json={"name": "Templated"}, headers=owner.auth)
    headers = {**owner.auth, "X-Workspace-Id": ws.json()["id"]}
    onboarding = await api.post(
        "/runs", json={"template": "onboarding", "input": "Calm Notes"}, headers=headers
    )
    assert onboarding.status_code == 202, onboarding.text
    assert onboarding.json()["run"]["kind"] == "onboarding"
    progress = await api.get("/onboarding", headers=headers)
    assert progress.json()["run_id"] == onboarding.json()["run"]["id"]
    assert await _finished(api, headers, onboarding.json()["run"]["id"]) == "succeeded"

    campaign = await api.post(
        "/campaigns",
        json={"name": "Templated", "objective_type": "awareness", "budget": 3},
        headers=headers,
    )
    brief = await api.post(
        "/runs", json={"template": "brief", "input": campaign.json()["id"]}, headers=headers
    )
    assert brief.status_code == 202, brief.text
    assert brief.json()["run"]["kind"] == "campaign_brief"
    assert await _finished(api, headers, brief.json()["run"]["id"]) == "succeeded"
    not_an_id = await api.post(
        "/runs", json={"template": "brief", "input": "my campaign"}, headers=headers
    )
    assert not_an_id.status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        {"template": "nope", "input": "x"},
        {"template": "delivery_pipeline", "input": "x", "kind": "dag"},
        {"template": "Delivery Pipeline", "input": "x"},
        {"input": "x"},
        {"template": "delivery_pipeline"},
    ],
)
async def test_given_bad_template_requests_then_422(
    api: httpx.AsyncClient, team: Team, body: dict[str, Any]
) -> None:
    response = await api.post("/runs", json=body, headers=team.headers("operator"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("actor", ACTORS)
async def test_given_each_role_then_members_list_and_operators_start(
    api: httpx.AsyncClient, team: Team, actor: str
) -> None:
    listed = await api.get("/workflows", headers=team.headers(actor))
    assert listed.status_code == expected(actor, 200, minimum="viewer")
    started = await api.post(
        "/runs",
        json={"template": "delivery_pipeline", "input": "A feature."},
        headers=team.headers(actor),
    )
    assert started.status_code == expected(actor, 202, minimum="operator")
    if started.status_code == 202:
        finished = await wait_for_event(api, team, started.json()["run"]["id"], "run.finished")
        assert finished["payload"]["status"] == "succeeded"
