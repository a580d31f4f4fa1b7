"""Campaigns through the gateway, on the offline model and the real workers: a campaign
moved through its statuses, a brief planned by the council and written by the guilds
(landing in the campaign when its run ends), a lord rejecting a guild's output once and
approving the revision (scripted offline provider), a budget too small refused before any
provider call, quests with progress; roles, tenancy and bad input on every route."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ACTORS, Team, expected, sign_up
from tests.e2e.test_runs_api import wait_for_event

SECTIONS = {
    "situation",
    "audience",
    "competitors",
    "positioning",
    "messages",
    "channels",
    "risks_compliance",
    "kpis",
}


async def _campaign(
    api: httpx.AsyncClient, team: Team, actor: str = "analyst", **extra: Any
) -> dict[str, Any]:
    body = {
        "name": "Spring launch",
        "objective_type": "awareness",
        "positioning": {"statement": "The calmest note-taking app for busy teams."},
        "target_cohorts": ["startup founders", "product managers"],
        **extra,
    }
    created = await api.post("/campaigns", json=body, headers=team.headers(actor))
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/campaigns/{created.json()['id']}"
    campaign: dict[str, Any] = created.json()
    return campaign


async def _decisions(api: httpx.AsyncClient, team: Team, campaign_id: str) -> list[dict[str, Any]]:
    page = await api.get(
        f"/campaigns/{campaign_id}/decisions", params={"limit": 200}, headers=team.headers("viewer")
    )
    assert page.status_code == 200, page.text
    items: list[dict[str, Any]] = page.json()["items"]
    return items


async def _brief(api: httpx.AsyncClient, team: Team, campaign_id: str) -> dict[str, Any]:
    """Generate the brief and wait for its run to end; the campaign as it is then."""
    started = await api.post(
        f"/campaigns/{campaign_id}/generate-brief", headers=team.headers("operator")
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    assert started.headers["location"] == f"/runs/{run_id}"
    finished = await wait_for_event(api, team, run_id, "run.finished")
    assert finished["payload"]["status"] == "succeeded", finished
    campaign = await api.get(f"/campaigns/{campaign_id}", headers=team.headers("viewer"))
    assert campaign.status_code == 200
    body: dict[str, Any] = campaign.json()
    assert body["brief_run_id"] == run_id
    return body


async def test_given_a_campaign_then_it_moves_through_its_statuses_and_invalid_moves_are_409(
    api: httpx.AsyncClient, team: Team
) -> None:
    campaign = await _campaign(api, team, budget=25, start_date="2027-03-01")
    assert campaign["status"] == "planning"
    assert campaign["budget"] == 25
    url = f"/campaigns/{campaign['id']}"

    edited = await api.patch(
        url, json={"name": "Spring launch v2"}, headers=team.headers("analyst")
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["name"] == "Spring launch v2"
    as_analyst = await api.patch(url, json={"status": "approved"}, headers=team.headers("analyst"))
    assert as_analyst.status_code == 403

    skipping = await api.patch(url, json={"status": "active"}, headers=team.headers("operator"))
    assert skipping.status_code == 409
    assert skipping.headers["content-type"].startswith("application/problem+json")
    for status in ("approved", "active", "paused", "active", "paused", "completed"):
        moved = await api.patch(url, json={"status": status}, headers=team.headers("operator"))
        assert moved.status_code == 200, (status, moved.text)
        assert moved.json()["status"] == status
    reopened = await api.patch(url, json={"status": "active"}, headers=team.headers("owner"))
    assert reopened.status_code == 409
    # Past planning, edits are for operators and up.
    late = await api.patch(url, json={"name": "Renamed"}, headers=team.headers("analyst"))
    assert late.status_code == 403


async def test_given_campaigns_then_the_list_filters_and_pages(
    api: httpx.AsyncClient, team: Team
) -> None:
    ids = [
        (await _campaign(api, team, name=f"Paging {i}", objective_type="retention"))["id"]
        for i in range(3)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "objective_type": "retention", "q": "Paging"}
        if cursor:
            params["cursor"] = cursor
        page = await api.get("/campaigns", params=params, headers=team.headers("viewer"))
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= 2
        seen += [c["id"] for c in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert set(ids) <= set(seen)
    assert len(seen) == len(set(seen))
    none = await api.get(
        "/campaigns", params={"status": "completed", "q": "Paging"}, headers=team.headers("viewer")
    )
    assert none.json()["items"] == []


async def test_given_a_brief_then_the_council_plans_the_guilds_write_and_it_lands(
    api: httpx.AsyncClient, team: Team
) -> None:
    campaign = await _campaign(api, team, name="Brief launch", budget=5)
    landed = await _brief(api, team, campaign["id"])

    assert set(landed["brief"]["sections"]) == SECTIONS
    assert all(landed["brief"]["sections"].values())
    decisions = await _decisions(api, team, campaign["id"])
    kinds = [d["kind"] for d in decisions]
    assert kinds[:2] == ["plan", "budget"]
    assert kinds[-1] == "brief"
    plan = decisions[0]["detail"]["plan"]
    assert decisions[0]["lord"] == "LORD-003"
    guilds = {t["key"].split("_")[0] for t in plan["tasks"]}
    assert guilds == {"research", "matrix", "muse", "guardian"}
    split = decisions[1]["detail"]
    assert sum(t["cap_usd"] for t in split["tasks"].values()) <= 5 * 0.8
    approvals = [d for d in decisions if d["kind"] == "approval"]
    assert {d["step_key"] for d in approvals} == {t["key"] for t in plan["tasks"]}
    assert {d["lord"] for d in approvals} == {"LORD-002", "LORD-004", "LORD-005", "LORD-006"}
    assert all(d["detail"]["spent_usd"] <= d["detail"]["cap_usd"] for d in approvals)

    run = await api.get(f"/runs/{landed['brief_run_id']}", headers=team.headers("viewer"))
    steps = {s["key"]: s for s in run.json()["steps"]}
    assert steps["brief"]["agent"] == "LORD-007"
    assert set(steps) == {t["key"] for t in plan["tasks"]} | {"brief"}


async def test_given_a_lord_rejecting_once_then_the_revision_is_approved(
    api: httpx.AsyncClient, team: Team
) -> None:
    campaign = await _campaign(api, team, name="Launch [reject-once]", budget=5)
    landed = await _brief(api, team, campaign["id"])

    assert set(landed["brief"]["sections"]) == SECTIONS
    decisions = await _decisions(api, team, campaign["id"])
    rejections = [d for d in decisions if d["kind"] == "rejection"]
    assert rejections, decisions
    assert all(d["detail"]["reasons"] == ["Name one competitor with a source."] for d in rejections)
    for rejection in rejections:
        approved = [
            d
            for d in decisions
            if d["kind"] == "approval" and d["step_key"] == rejection["step_key"]
        ]
        assert len(approved) == 1
        assert approved[0]["detail"]["revision"] is True
        assert approved[0]["lord"] == rejection["lord"]


async def test_given_a_budget_too_small_then_the_brief_is_refused_before_any_model_call(
    api: httpx.AsyncClient,
) -> None:
    owner = await sign_up(api, "frugal")
    workspace = await api.post("/workspaces", json={"name": "Frugal"}, headers=owner.auth)
    headers = {**owner.auth, "X-Workspace-Id": workspace.json()["id"]}
    created = await api.post(
        "/campaigns",
        json={"name": "Tiny", "objective_type": "conversion", "budget": 0.05},
        headers=headers,
    )
    campaign_id = created.json()["id"]

    refused = await api.post(f"/campaigns/{campaign_id}/generate-brief", headers=headers)
    assert refused.status_code == 402, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    usage = await api.get("/usage", params={"group_by": "agent"}, headers=headers)
    assert usage.status_code == 200, usage.text
    assert usage.json()["totals"]["calls"] == 0
    decisions = await api.get(f"/campaigns/{campaign_id}/decisions", headers=headers)
    assert [d["kind"] for d in decisions.json()["items"]] == ["refusal"]
    runs = await api.get("/runs", headers=headers)
    assert runs.json()["items"] == []


async def test_given_a_quest_then_its_progress_is_tracked(
    api: httpx.AsyncClient, team: Team
) -> None:
    campaign = await _campaign(api, team, name="Quest campaign")
    body = {
        "title": "Reach 1000 sign-ups",
        "chapters": [
            {"title": "Warm up", "tasks": ["Landing page", "Waitlist email"]},
            {"title": "Launch", "tasks": ["Product Hunt post"]},
        ],
        "success_metrics": [{"name": "signups", "target": 1000}],
    }
    created = await api.post(
        f"/campaigns/{campaign['id']}/quests", json=body, headers=team.headers("analyst")
    )
    assert created.status_code == 201, created.text
    quest = created.json()
    assert quest["progress"] == 0
    assert [c["position"] for c in quest["chapters"]] == [0, 1]
    url = f"/campaigns/{campaign['id']}/quests/{quest['id']}"

    moved = await api.patch(
        url,
        json={"tasks": [{"chapter": 0, "task": 1}], "metrics": {"signups": 250}},
        headers=team.headers("analyst"),
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["progress"] == pytest.approx(1 / 3, abs=1e-3)
    assert moved.json()["chapters"][0]["tasks"][1] == {"title": "Waitlist email", "done": True}
    assert moved.json()["success_metrics"][0]["progress"] == 0.25

    wrong = await api.patch(
        url,
        json={"tasks": [{"chapter": 5, "task": 0}], "metrics": {"revenue": 1}},
        headers=team.headers("analyst"),
    )
    assert wrong.status_code == 422
    assert len(wrong.json()["errors"]) == 2
    read = await api.get(f"/campaigns/{campaign['id']}", headers=team.headers("viewer"))
    assert read.json()["quests"][0]["progress"] == pytest.approx(1 / 3, abs=1e-3)

    # A chapter starts a run (operators): its tasks, side by side, each to a guild agent.
    as_analyst = await api.patch(url, json={"start_chapter": 0}, headers=team.headers("analyst"))
    assert as_analyst.status_code == 403
    no_such = await api.patch(url, json={"start_chapter": 7}, headers=team.headers("operator"))
    assert no_such.status_code == 422
    started = await api.patch(url, json={"start_chapter": 0}, headers=team.headers("operator"))
    assert started.status_code == 200, started.text
    run_id = started.json()["chapters"][0]["run_id"]
    assert run_id and started.json()["chapters"][1]["run_id"] is None
    run = (await api.get(f"/runs/{run_id}", headers=team.headers("viewer"))).json()
    assert run["kind"] == "parallel"
    assert [s["key"] for s in run["steps"]] == ["task_1", "task_2"]
    assert all(s["agent"].split("-")[0] in {"RES", "MUSE", "MTX", "GRD"} for s in run["steps"])
    finished = await wait_for_event(api, team, run_id, "run.finished")
    assert finished["payload"]["status"] == "succeeded"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "objective_type": "fame"},
        {"name": "", "objective_type": "awareness"},
        {"name": "x", "objective_type": "awareness", "budget": -1},
        {"name": "x", "objective_type": "awareness", "start_date": "2027-02-01",
         "end_date": "2027-01-01"},
        {"name": "x", "objective_type": "awareness", "color": "red"},
        {"name": "x", "objective_type": "awareness", "positioning": {"slogan": "hi"}},
    ],
)  # fmt: skip
async def test_given_bad_campaign_input_then_422_problem(
    api: httpx.AsyncClient, team: Team, body: dict[str, Any]
) -> None:
    response = await api.post("/campaigns", json=body, headers=team.headers("analyst"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"]


async def test_given_bad_patch_and_quest_input_then_422(api: httpx.AsyncClient, team: Team) -> None:
    campaign = await _campaign(api, team)
    url = f"/campaigns/{campaign['id']}"
    for body in (
        {},
        {"status": "archived"},
        {"end_date": "2020-01-01", "start_date": "2021-01-01"},
    ):
        response = await api.patch(url, json=body, headers=team.headers("operator"))
        assert response.status_code == 422, (body, response.text)
    for quest in ({"title": "q", "chapters": []}, {"title": "q"}):
        response = await api.post(f"{url}/quests", json=quest, headers=team.headers("analyst"))
        assert response.status_code == 422, (quest, response.text)
    missing = await api.get("/campaigns/not-a-uuid", headers=team.headers("viewer"))
    assert missing.status_code == 422


async def _route_results(
    api: httpx.AsyncClient, team: Team, actor: str
) -> dict[str, tuple[int, int]]:
    """Each route as `actor` → (status, expected status)."""
    campaign = await _campaign(api, team, name=f"Roles {actor}")
    url = f"/campaigns/{campaign['id']}"
    quest = await api.post(
        f"{url}/quests",
        json={"title": "Q", "chapters": [{"title": "C", "tasks": ["t"]}]},
        headers=team.headers("analyst"),
    )
    quest_url = f"{url}/quests/{quest.json()['id']}"
    h = team.headers(actor)
    body = {"name": "N", "objective_type": "advocacy"}
    results = {
        "create": ((await api.post("/campaigns", json=body, headers=h)).status_code,
                   expected(actor, 201, minimum="analyst")),
        "list": ((await api.get("/campaigns", headers=h)).status_code,
                 expected(actor, 200, minimum="viewer")),
        "get": ((await api.get(url, headers=h)).status_code,
                expected(actor, 200, minimum="viewer")),
        "decisions": ((await api.get(f"{url}/decisions", headers=h)).status_code,
                      expected(actor, 200, minimum="viewer")),
        "edit": ((await api.patch(url, json={"name": "E"}, headers=h)).status_code,
                 expected(actor, 200, minimum="analyst")),
        "quest": ((await api.post(f"{url}/quests", json={"title": "Q2", "chapters": [
                    {"title": "C"}]}, headers=h)).status_code,
                  expected(actor, 201, minimum="analyst")),
        "progress": ((await api.patch(quest_url, json={"tasks": [{"chapter": 0, "task": 0}]},
                                      headers=h)).status_code,
                     expected(actor, 200, minimum="analyst")),
        # No budget: operators and up get as far as the refusal (402), before any model call.
        "brief": ((await api.post(f"{url}/generate-brief", headers=h)).status_code,
                  expected(actor, 402, minimum="operator")),
        "status": ((await api.patch(url, json={"status": "approved"}, headers=h)).status_code,
                   expected(actor, 200, minimum="operator")),
        "delete": ((await api.delete(url, headers=h)).status_code,
                   expected(actor, 204, minimum="admin")),
    }  # fmt: skip
    return results


@pytest.mark.parametrize("actor", ACTORS)
async def test_given_each_role_then_every_route_answers_as_the_roles_allow(
    api: httpx.AsyncClient, team: Team, actor: str
) -> None:
    results = await _route_results(api, team, actor)
    assert {k: v[0] for k, v in results.items()} == {k: v[1] for k, v in results.items()}


async def test_given_another_tenant_then_campaigns_are_invisible(
    api: httpx.AsyncClient, team: Team
) -> None:
    campaign = await _campaign(api, team, name="Secret plan")
    quest = await api.post(
        f"/campaigns/{campaign['id']}/quests",
        json={"title": "Q", "chapters": [{"title": "C", "tasks": ["t"]}]},
        headers=team.headers("analyst"),
    )
    stranger = await sign_up(api, "stranger")
    own = await api.post("/workspaces", json={"name": "Elsewhere"}, headers=stranger.auth)
    url = f"/campaigns/{campaign['id']}"
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", url, None),
        ("PATCH", url, {"name": "Mine"}),
        ("DELETE", url, None),
        ("POST", f"{url}/generate-brief", None),
        ("POST", f"{url}/quests", {"title": "Q", "chapters": [{"title": "C"}]}),
        ("PATCH", f"{url}/quests/{quest.json()['id']}", {"tasks": [{"chapter": 0, "task": 0}]}),
        ("GET", f"{url}/decisions", None),
    ]
    for workspace_id in (team.workspace_id, own.json()["id"]):
        headers = {**stranger.auth, "X-Workspace-Id": workspace_id}
        for method, path, body in calls:
            response = await api.request(method, path, json=body, headers=headers)
            assert response.status_code == 404, (workspace_id, method, path, response.text)
    listed = await api.get(
        "/campaigns", headers={**stranger.auth, "X-Workspace-Id": own.json()["id"]}
    )
    assert listed.json()["items"] == []
    still = await api.get(url, headers=team.headers("viewer"))
    assert still.json()["name"] == "Secret plan"
