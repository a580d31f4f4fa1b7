"""Durable runs through the running stack, as a client would use them: a DAG watched live
over SSE with a dropped connection, invoke, approvals, questions, roles and tenancy."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ACTORS, Team, expected, sign_up
from tests.e2e.sse import read_events

DIAMOND = {
    "kind": "dag",
    "title": "Launch plan",
    "input": "Plan the launch of a note-taking app.",
    "nodes": [
        {"key": "A", "agent": "business_agent", "prompt": "Frame the launch."},
        {"key": "B", "agent": "design_agent", "prompt": "Landing page.", "depends_on": ["A"]},
        {"key": "C", "agent": "seo_agent", "prompt": "Keywords.", "depends_on": ["A"]},
        {"key": "D", "agent": "nicole_core", "prompt": "One plan.", "depends_on": ["B", "C"]},
    ],
}


async def read_sse(
    api: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    *,
    stop_after: int | None = None,
) -> list[dict[str, Any]]:
    """Events of an SSE stream (id, event, data), until it ends or `stop_after` events."""
    return await read_events(api, url, headers, stop_after=stop_after)


async def wait_for_event(
    api: httpx.AsyncClient, team: Team, run_id: str, event_type: str
) -> dict[str, Any]:
    """Long-poll `/runs/{id}/events` until an event of `event_type` arrives."""
    after = 0
    for _ in range(20):
        page = await api.get(
            f"/runs/{run_id}/events",
            params={"after": after, "wait": 5},
            headers=team.headers("viewer"),
        )
        assert page.status_code == 200, page.text
        body = page.json()
        for item in body["items"]:
            if item["type"] == event_type:
                return dict(item)
        after = body["next_after"]
    raise AssertionError(f"no {event_type} event")


async def start(api: httpx.AsyncClient, team: Team, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post("/runs", json=body, headers=team.headers("operator"))
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/runs/{response.json()['run']['id']}"
    run: dict[str, Any] = response.json()["run"]
    return run


async def test_given_a_dag_watched_over_sse_with_a_dropped_connection_then_no_event_is_lost(
    api: httpx.AsyncClient, team: Team
) -> None:
    run = await start(api, team, DIAMOND)
    url = f"/runs/{run['id']}/stream"

    first = await read_sse(api, url, team.headers("viewer"), stop_after=4)
    resumed = await read_sse(
        api, url, {**team.headers("viewer"), "Last-Event-ID": str(first[-1]["id"])}
    )

    watched = first + resumed
    ids = [e["id"] for e in watched]
    assert ids == list(range(1, len(ids) + 1)), "every event once, in order"
    assert watched[-1]["event"] == "run.finished"
    assert watched[-1]["data"]["payload"]["status"] == "succeeded"
    logged = await api.get(
        f"/runs/{run['id']}/events", params={"limit": 500}, headers=team.headers("viewer")
    )
    assert [(e["id"], e["type"]) for e in logged.json()["items"]] == [
        (e["id"], e["event"]) for e in watched
    ]
    started = [e["data"]["payload"] for e in watched if e["event"] == "step.started"]
    assert [s["step"] for s in started].count("D") == 1
    assert next(s for s in started if s["step"] == "D")["handoffs"] == ["B", "C"]
    assert any(e["event"] == "step.token" for e in watched)

    final = (await api.get(f"/runs/{run['id']}", headers=team.headers("viewer"))).json()
    assert final["status"] == "succeeded"
    assert [(s["key"], s["status"], s["attempt"]) for s in final["steps"]] == [
        (k, "succeeded", 1) for k in "ABCD"
    ]
    assert final["output"] == final["steps"][-1]["output"]
    usage = await api.get("/usage", params={"group_by": "run"}, headers=team.headers("analyst"))
    groups = {g["key"]: g for g in usage.json()["groups"]}
    assert groups[run["id"]]["calls"] == 4


async def test_given_invoke_with_wait_then_the_output_comes_back(
    api: httpx.AsyncClient, team: Team
) -> None:
    waited = await api.post(
        "/agents/seo_agent/invoke",
        json={"input": "Three keywords for a note app.", "wait": True},
        headers=team.headers("operator"),
    )
    queued = await api.post(
        "/agents/seo_agent/invoke", json={"input": "Later."}, headers=team.headers("operator")
    )

    assert waited.status_code == 200, waited.text
    body = waited.json()
    assert body["status"] == "succeeded" and "offline" in body["output"]
    assert body["usage"]["provider"] == "offline" and body["usage"]["output_tokens"] > 0
    assert queued.status_code == 202
    assert queued.headers["location"] == f"/runs/{queued.json()['run_id']}"


async def test_given_a_gated_step_then_it_waits_idle_and_approval_continues_the_run(
    api: httpx.AsyncClient, team: Team, stack_queues: Any
) -> None:
    run = await start(
        api,
        team,
        {
            "kind": "pipeline",
            "title": "Gated",
            "input": "Ship the release notes.",
            "nodes": [
                {"key": "draft", "agent": "product_owner"},
                {"key": "publish", "agent": "senior_reviewer", "requires_approval": True},
            ],
        },
    )
    requested = await wait_for_event(api, team, run["id"], "approval.requested")
    waiting = (await api.get(f"/runs/{run['id']}", headers=team.headers("viewer"))).json()
    assert waiting["status"] == "waiting_approval"
    assert waiting["steps"][1]["status"] == "waiting_approval"
    assert waiting["steps"][1]["attempt"] == 0
    attributes = stack_queues.client().get_queue_attributes(
        QueueUrl=stack_queues.queue_urls["StepsQueue"], AttributeNames=["All"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0", "no worker is busy"

    pending = await api.get(
        "/approvals", params={"status": "pending"}, headers=team.headers("viewer")
    )
    approval_id = requested["payload"]["approval_id"]
    assert approval_id in {a["id"] for a in pending.json()["items"]}
    viewer = await api.post(
        f"/approvals/{approval_id}", json={"decision": "approve"}, headers=team.headers("viewer")
    )
    decided = await api.post(
        f"/approvals/{approval_id}",
        json={"decision": "approve", "comment": "ship it"},
        headers=team.headers("operator"),
    )
    again = await api.post(
        f"/approvals/{approval_id}", json={"decision": "reject"}, headers=team.headers("operator")
    )

    assert viewer.status_code == 403
    assert decided.status_code == 200 and decided.json()["status"] == "approved"
    assert again.status_code == 409
    finished = await wait_for_event(api, team, run["id"], "run.finished")
    assert finished["payload"]["status"] == "succeeded"


@pytest.mark.parametrize(
    ("on_reject", "run_status", "step_status"),
    [
        ("skip", "succeeded", "skipped"),
        ("fail", "failed", "failed"),
    ],
)
async def test_given_a_rejected_gate_then_the_workflow_decides_what_happens(
    api: httpx.AsyncClient, team: Team, on_reject: str, run_status: str, step_status: str
) -> None:
    run = await start(
        api,
        team,
        {
            "kind": "dag",
            "title": "Optional polish",
            "input": "Write a tagline.",
            "nodes": [
                {"key": "write", "agent": "business_agent"},
                {
                    "key": "polish",
                    "agent": "design_agent",
                    "depends_on": ["write"],
                    "requires_approval": True,
                    "on_reject": on_reject,
                },
            ],
        },
    )
    requested = await wait_for_event(api, team, run["id"], "approval.requested")
    await api.post(
        f"/approvals/{requested['payload']['approval_id']}",
        json={"decision": "reject"},
        headers=team.headers("admin"),
    )
    finished = await wait_for_event(api, team, run["id"], "run.finished")
    assert finished["payload"]["status"] == run_status
    final = (await api.get(f"/runs/{run['id']}", headers=team.headers("viewer"))).json()
    assert final["steps"][1]["status"] == step_status


async def test_given_an_agent_asks_a_question_then_the_run_waits_until_answered(
    api: httpx.AsyncClient, team: Team
) -> None:
    run = await start(
        api,
        team,
        {
            "kind": "single",
            "title": "Needs input",
            "input": "Plan our launch [ask]",
            "nodes": [{"key": "plan", "agent": "business_agent"}],
        },
    )
    asked = await wait_for_event(api, team, run["id"], "question.asked")
    waiting = (await api.get(f"/runs/{run['id']}", headers=team.headers("viewer"))).json()
    pending = await api.get(
        "/questions", params={"status": "pending"}, headers=team.headers("viewer")
    )
    question_id = asked["payload"]["question_id"]

    assert waiting["status"] == "waiting_input"
    assert asked["payload"]["question"] == "Which market should we launch in first?"
    assert question_id in {q["id"] for q in pending.json()["items"]}
    answered = await api.post(
        f"/questions/{question_id}", json={"answer": "Germany"}, headers=team.headers("operator")
    )
    assert answered.status_code == 200 and answered.json()["status"] == "answered"
    finished = await wait_for_event(api, team, run["id"], "run.finished")
    assert finished["payload"]["status"] == "succeeded"
    final = (await api.get(f"/runs/{run['id']}", headers=team.headers("viewer"))).json()
    assert final["steps"][0]["attempt"] == 2
    assert "offline" in final["output"]


async def test_given_a_run_cancelled_while_it_waits_for_an_answer_then_the_question_closes(
    api: httpx.AsyncClient, team: Team
) -> None:
    run = await start(
        api,
        team,
        {
            "kind": "single",
            "title": "Cancelled while asking",
            "input": "Plan our launch [ask]",
            "nodes": [{"key": "plan", "agent": "business_agent"}],
        },
    )
    asked = await wait_for_event(api, team, run["id"], "question.asked")
    question_id = asked["payload"]["question_id"]

    cancelled = await api.post(f"/runs/{run['id']}/cancel", headers=team.headers("operator"))
    closed = await api.get(
        "/questions", params={"status": "cancelled"}, headers=team.headers("viewer")
    )
    answered = await api.post(
        f"/questions/{question_id}", json={"answer": "Too late"}, headers=team.headers("operator")
    )

    assert cancelled.status_code == 202
    assert question_id in {q["id"] for q in closed.json()["items"]}
    assert answered.status_code == 409


@pytest.mark.parametrize("actor", ACTORS)
async def test_given_each_role_when_starting_a_run_then_operators_and_up_may(
    api: httpx.AsyncClient, team: Team, actor: str
) -> None:
    body = {**DIAMOND, "kind": "single", "nodes": [{"key": "x", "agent": "seo_agent"}]}
    response = await api.post("/runs", json=body, headers=team.headers(actor))
    assert response.status_code == expected(actor, 202, minimum="operator")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"nodes": []}, "empty_workflow"),
        ({"nodes": [{"key": "A", "agent": "nobody"}]}, "unknown_agent"),
        (
            {
                "nodes": [
                    {"key": "A", "agent": "seo_agent", "depends_on": ["B"]},
                    {"key": "B", "agent": "seo_agent", "depends_on": ["A"]},
                ]
            },
            "cycle",
        ),
        (
            {"nodes": [{"key": "A", "agent": "seo_agent", "depends_on": ["Z"]}]},
            "dangling_dependency",
        ),
        (
            {"nodes": [{"key": "A", "agent": "seo_agent"}, {"key": "A", "agent": "seo_agent"}]},
            "duplicate_key",
        ),
        ({"input": "x" * 20_001}, "input_too_large"),
    ],
)
async def test_given_an_invalid_workflow_then_422_names_the_problem_and_nothing_is_stored(
    api: httpx.AsyncClient, team: Team, change: dict[str, Any], problem: str
) -> None:
    before = (await api.get("/runs", params={"limit": 200}, headers=team.headers("viewer"))).json()
    response = await api.post("/runs", json={**DIAMOND, **change}, headers=team.headers("operator"))
    after = (await api.get("/runs", params={"limit": 200}, headers=team.headers("viewer"))).json()

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem in {e["type"] for e in response.json()["errors"]}
    assert len(after["items"]) == len(before["items"])


async def test_given_another_tenant_then_runs_events_streams_and_gates_are_invisible(
    api: httpx.AsyncClient, team: Team
) -> None:
    run = await start(
        api,
        team,
        {
            "kind": "single",
            "title": "Private",
            "input": "Secret plan [ask]",
            "nodes": [{"key": "plan", "agent": "business_agent", "requires_approval": True}],
        },
    )
    requested = await wait_for_event(api, team, run["id"], "approval.requested")
    asking = await start(
        api,
        team,
        {
            "kind": "single",
            "title": "Asks",
            "input": "Plan [ask]",
            "nodes": [{"key": "plan", "agent": "business_agent"}],
        },
    )
    asked = await wait_for_event(api, team, asking["id"], "question.asked")
    stranger = await sign_up(api, "stranger")
    own = await api.post("/workspaces", json={"name": "Elsewhere"}, headers=stranger.auth)
    theirs = {**stranger.auth, "X-Workspace-Id": own.json()["id"]}
    approval = requested["payload"]["approval_id"]

    for method, url, body in [
        ("GET", f"/runs/{run['id']}", None),
        ("GET", f"/runs/{run['id']}/events", None),
        ("GET", f"/runs/{run['id']}/stream", None),
        ("POST", f"/runs/{run['id']}/cancel", None),
        ("POST", f"/runs/{run['id']}/steps/plan/retry", None),
        ("POST", f"/approvals/{approval}", {"decision": "approve"}),
        ("POST", f"/questions/{asked['payload']['question_id']}", {"answer": "mine now"}),
    ]:
        response = await api.request(method, url, json=body, headers=theirs)
        assert response.status_code == 404, (method, url, response.status_code)
    for url in ("/runs", "/approvals", "/questions"):
        listed = await api.get(url, headers=theirs)
        assert listed.status_code == 200 and listed.json()["items"] == []
    # Their own token with our workspace id: not a member, so 404 as well.
    ours = {**stranger.auth, "X-Workspace-Id": team.workspace_id}
    assert (await api.get(f"/runs/{run['id']}/stream", headers=ours)).status_code == 404

    cancelled = await api.post(f"/runs/{run['id']}/cancel", headers=team.headers("operator"))
    assert cancelled.status_code == 202 and cancelled.json()["run"]["status"] == "cancelled"
    again = await api.post(f"/runs/{run['id']}/cancel", headers=team.headers("operator"))
    assert again.status_code == 409


async def test_given_a_bad_last_event_id_then_400(api: httpx.AsyncClient, team: Team) -> None:
    run = await start(
        api, team, {**DIAMOND, "kind": "single", "nodes": [{"key": "x", "agent": "seo_agent"}]}
    )
    response = await api.get(
        f"/runs/{run['id']}/stream", headers={**team.headers("viewer"), "Last-Event-ID": "abc"}
    )
    assert response.status_code == 400
