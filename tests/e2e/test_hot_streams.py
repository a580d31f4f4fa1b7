"""Event streams through the running stack with Redis up (events come through the hot feed)
and with Redis down (readers fall back to polling Postgres): either way a client sees every
event once, in order, and the stream ends when the run does."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from guildstack.devstack.redis import RedisServer
from tests.e2e.conftest import Team
from tests.e2e.sse import read_events
from tests.e2e.test_runs_api import DIAMOND, start


@pytest.fixture
def redis_down(redis_server: RedisServer) -> Iterator[None]:
    """Redis stopped for the test (the gateway's limiters fail open), then started again."""
    redis_server.stop()
    try:
        yield
    finally:
        redis_server.start()


async def watch_run(api: httpx.AsyncClient, team: Team) -> tuple[list[dict[str, Any]], Any]:
    run = await start(api, team, DIAMOND)
    url = f"/runs/{run['id']}/stream"
    watched = await read_events(api, url, team.headers("viewer"))
    logged = await api.get(
        f"/runs/{run['id']}/events", params={"limit": 500}, headers=team.headers("viewer")
    )
    assert logged.status_code == 200, logged.text
    return watched, logged.json()["items"]


def assert_complete(watched: list[dict[str, Any]], logged: list[dict[str, Any]]) -> None:
    assert [e["id"] for e in watched] == list(range(1, len(watched) + 1)), "once, in order"
    assert watched[-1]["event"] == "run.finished"
    assert [(e["id"], e["type"], e["payload"]) for e in logged] == [
        (e["id"], e["event"], e["data"]["payload"]) for e in watched
    ]


async def test_given_redis_up_then_a_watched_run_misses_nothing(
    api: httpx.AsyncClient, team: Team
) -> None:
    watched, logged = await watch_run(api, team)

    assert_complete(watched, logged)
    assert any(e["event"] == "step.token" for e in watched)


async def test_given_redis_down_then_a_watched_run_still_misses_nothing(
    api: httpx.AsyncClient, team: Team, redis_down: None
) -> None:
    watched, logged = await watch_run(api, team)

    assert_complete(watched, logged)


async def test_given_redis_down_then_a_watched_conversation_still_gets_each_message(
    api: httpx.AsyncClient, team: Team, redis_down: None
) -> None:
    headers = team.headers("analyst")
    created = await api.post("/conversations", json={"title": "Fallback"}, headers=headers)
    assert created.status_code == 201, created.text
    conversation_id = created.json()["id"]
    url = f"/conversations/{conversation_id}/stream"
    news: list[dict[str, Any]] = []

    def second_message(data: dict[str, Any]) -> bool:
        if data["type"] == "message.new":
            news.append(data)
        return len(news) == 2

    watching = asyncio.create_task(read_events(api, url, headers, until=second_message))
    for text in ("First", "Second"):
        posted = await api.post(
            f"/conversations/{conversation_id}/messages", json={"content": text}, headers=headers
        )
        assert posted.status_code == 201, posted.text
    watched = await asyncio.wait_for(watching, 60)

    assert [e["id"] for e in watched] == list(range(1, len(watched) + 1))
    assert [n["payload"]["seq"] for n in news] == [1, 2]
