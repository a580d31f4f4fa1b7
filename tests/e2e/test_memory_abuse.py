"""Memory ranking cannot be gamed through the API: vectors without a direction, vectors of
another model, and feedback stacked by one member."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import Team

MODEL = "all-MiniLM-L6-v2"  # the devstack's embedder
ZEROS = [0.0] * 384


async def test_given_an_all_zero_embedding_when_remembered_then_refused_and_search_ranks_on_meaning(
    api: httpx.AsyncClient, team: Team
) -> None:
    h = team.headers("analyst")
    relevant = await api.post(
        "/memory",
        json={"content": "The office wifi password is on the fridge.", "collection": "core"},
        headers=h,
    )
    planted = await api.post(
        "/memory",
        json={"content": "Buy crypto now!", "collection": "core", "embedding": ZEROS},
        headers=h,
    )
    found = await api.post(
        "/memory/search", json={"query": "where is the wifi password"}, headers=h
    )

    assert relevant.status_code == 201, relevant.text
    assert planted.status_code == 422, planted.text
    assert found.json()["hits"][0]["memory"]["id"] == relevant.json()["id"]


async def test_given_an_embedding_of_this_model_without_direction_then_422_naming_it(
    api: httpx.AsyncClient, team: Team
) -> None:
    response = await api.post(
        "/memory",
        json={
            "content": "zero",
            "collection": "core",
            "embedding": ZEROS,
            "embedding_model": MODEL,
        },
        headers=team.headers("analyst"),
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [(e["loc"], e["type"]) for e in response.json()["errors"]] == [
        (["body", "embedding"], "zero_vector")
    ]


async def test_given_a_non_finite_embedding_value_then_422_not_500(
    api: httpx.AsyncClient, team: Team
) -> None:
    # Python's JSON (what the request body parser uses) reads the NaN and Infinity tokens.
    vector = ",".join(["NaN", "Infinity", *["0.1"] * 382])
    body = (
        '{"content": "nan", "collection": "core", "embedding_model": "' + MODEL + '",'
        ' "embedding": [' + vector + "]}"
    )
    response = await api.post(
        "/memory",
        content=body.encode(),
        headers={**team.headers("analyst"), "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert {e["type"] for e in response.json()["errors"]} == {"not_finite"}


async def test_given_an_embedding_named_for_another_model_then_422(
    api: httpx.AsyncClient, team: Team
) -> None:
    response = await api.post(
        "/memory",
        json={
            "content": "other model",
            "collection": "core",
            "embedding": [0.1] * 384,
            "embedding_model": "openai/text-embedding-3-small@384",
        },
        headers=team.headers("analyst"),
    )
    assert response.status_code == 422, response.text
    assert [e["type"] for e in response.json()["errors"]] == ["model_mismatch"]


async def test_given_an_embedding_of_this_model_then_it_is_stored_as_that_model(
    api: httpx.AsyncClient, team: Team
) -> None:
    response = await api.post(
        "/memory",
        json={
            "content": "client side vector",
            "collection": "core",
            "embedding": [0.0] * 383 + [3.0],
            "embedding_model": MODEL,
        },
        headers=team.headers("analyst"),
    )
    assert response.status_code == 201, response.text
    assert response.json()["embedding_model"] == MODEL


async def test_given_one_member_voting_again_and_again_then_their_vote_counts_once(
    api: httpx.AsyncClient, team: Team
) -> None:
    created = await api.post(
        "/memory",
        json={"content": "Standup is at 9:15.", "collection": "business", "scope": "workspace"},
        headers=team.headers("operator"),
    )
    url = f"/memory/{created.json()['id']}/feedback"

    async def vote(actor: str, value: int) -> int:
        response = await api.post(url, json={"value": value}, headers=team.headers(actor))
        assert response.status_code == 200, response.text
        score: int = response.json()["feedback_score"]
        return score

    assert [await vote("viewer", 1) for _ in range(5)] == [1, 1, 1, 1, 1]
    assert await vote("analyst", 1) == 2
    assert await vote("viewer", -1) == 0  # changed, not added
