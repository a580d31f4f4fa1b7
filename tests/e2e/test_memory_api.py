"""The Memory function through the gateway: remember, search with score parts, delete,
feedback, documents, roles, tenancy and bad input as problem+json."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest

from tests.e2e.conftest import Team, sign_up


async def test_given_memories_then_search_finds_them_with_score_parts_and_delete_removes(
    api: httpx.AsyncClient, team: Team
) -> None:
    h = team.headers("viewer")
    created = await api.post(
        "/memory",
        json={
            "content": "The quarterly review is on the last Friday of March.",
            "collection": "core",
        },
        headers=h,
    )
    assert created.status_code == 201, created.text
    memory = created.json()
    assert created.headers["location"] == f"/memory/{memory['id']}"
    assert memory["scope"] == "user" and memory["embedding_model"] == "all-MiniLM-L6-v2"

    found = await api.post(
        "/memory/search", json={"query": "when is the quarterly review"}, headers=h
    )
    hit = found.json()["hits"][0]
    assert hit["memory"]["id"] == memory["id"]
    assert set(hit["parts"]) == {"semantic", "feedback", "recency", "frequency", "text"}

    liked = await api.post(f"/memory/{memory['id']}/feedback", json={"value": 1}, headers=h)
    assert liked.status_code == 200 and liked.json()["feedback_score"] == 1
    gone = await api.delete(f"/memory/{memory['id']}", headers=h)
    after = await api.post(
        "/memory/search", json={"query": "when is the quarterly review"}, headers=h
    )
    assert gone.status_code == 204
    assert memory["id"] not in {x["memory"]["id"] for x in after.json()["hits"]}


async def test_given_shared_memories_then_operators_write_and_members_read(
    api: httpx.AsyncClient, team: Team
) -> None:
    body = {
        "content": "Invoices go out on the 1st.",
        "collection": "business",
        "scope": "workspace",
    }
    by_viewer = await api.post("/memory", json=body, headers=team.headers("viewer"))
    by_operator = await api.post("/memory", json=body, headers=team.headers("operator"))
    listed = await api.get(
        "/memory", params={"collection": "business"}, headers=team.headers("analyst")
    )

    assert by_viewer.status_code == 403
    assert by_operator.status_code == 201
    assert by_operator.json()["id"] in {m["id"] for m in listed.json()["items"]}


async def test_given_another_tenant_then_memories_are_invisible(
    api: httpx.AsyncClient, team: Team
) -> None:
    mine = await api.post(
        "/memory",
        json={"content": "Board meeting notes: raise prices in May.", "collection": "business",
              "scope": "workspace"},
        headers=team.headers("owner"),
    )  # fmt: skip
    stranger = await sign_up(api, "stranger")
    own = await api.post("/workspaces", json={"name": "Other"}, headers=stranger.auth)
    theirs = {**stranger.auth, "X-Workspace-Id": own.json()["id"]}
    ours = {**stranger.auth, "X-Workspace-Id": team.workspace_id}

    search = await api.post(
        "/memory/search", json={"query": "board meeting prices"}, headers=theirs
    )
    assert mine.json()["id"] not in {x["memory"]["id"] for x in search.json()["hits"]}
    assert (await api.delete(f"/memory/{mine.json()['id']}", headers=theirs)).status_code == 404
    assert (await api.post("/memory/search", json={"query": "x"}, headers=ours)).status_code == 404
    assert (await api.get("/memory", headers=ours)).status_code == 404


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/memory/search", {"query": ""}),
        ("/memory/search", {"query": "ok", "collections": ["gossip"]}),
        ("/memory", {"content": "hello", "collection": "gossip"}),
        ("/memory", {"content": "x" * 8001, "collection": "core"}),
        ("/memory", {"content": "hello", "collection": "core", "embedding": [0.5] * 10}),
    ],
)
async def test_given_bad_input_then_422_problem(
    api: httpx.AsyncClient, team: Team, path: str, body: dict[str, object]
) -> None:
    response = await api.post(path, json=body, headers=team.headers("operator"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_given_feedback_other_than_plus_or_minus_one_then_422(
    api: httpx.AsyncClient, team: Team
) -> None:
    created = await api.post(
        "/memory",
        json={"content": "Feedback target.", "collection": "core"},
        headers=team.headers("viewer"),
    )
    bad = await api.post(
        f"/memory/{created.json()['id']}/feedback",
        json={"value": 0},
        headers=team.headers("viewer"),
    )
    assert bad.status_code == 422


async def test_given_a_document_then_202_and_listed_with_its_status(
    api: httpx.AsyncClient, team: Team
) -> None:
    h = team.headers("viewer")
    text = "Our refund policy: refunds within 14 days. " * 40
    accepted = await api.post(
        "/memory/documents", json={"title": "Refunds", "text": text}, headers=h
    )
    listed = await api.get("/memory/documents", headers=h)

    assert accepted.status_code == 202, accepted.text
    document = accepted.json()
    assert document["status"] == "pending"
    assert document["id"] in {d["id"] for d in listed.json()["items"]}

    async def ingested() -> dict[str, object] | None:
        items = (await api.get("/memory/documents", headers=h)).json()["items"]
        found = next(d for d in items if d["id"] == document["id"])
        return found if found["status"] == "ready" else None

    ready = await eventually(ingested, within=30)
    assert isinstance(ready["chunk_count"], int) and ready["chunk_count"] >= 2
    hits = await api.post(
        "/memory/search",
        json={"query": "how many days for a refund", "collections": ["documents"]},
        headers=h,
    )
    assert "refund" in hits.json()["hits"][0]["memory"]["content"]


async def eventually(
    check: Callable[[], Awaitable[dict[str, object] | None]], within: float
) -> dict[str, object]:
    """`check()` until it returns something, re-asking with a growing pause, within a bound:
    the worker's progress is only visible through the API."""
    delay, waited = 0.05, 0.0
    while waited < within:
        result = await check()
        if result is not None:
            return result
        await asyncio.sleep(delay)
        waited += delay
        delay = min(delay * 2, 1.0)
    raise AssertionError(f"not done within {within} s")
