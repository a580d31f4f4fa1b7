"""The devstack prints its ready line only once `/health` says every dependency answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from guildstack.devstack.servers import ServerThread
from guildstack.devstack.stack import wait_until_healthy


def health_server(answers: list[dict[str, object]]) -> Starlette:
    """Answers `answers` in turn, then the last one for ever."""
    seen: list[int] = [0]

    async def health(request: Request) -> JSONResponse:
        answer = answers[min(seen[0], len(answers) - 1)]
        seen[0] += 1
        return JSONResponse(answer)

    return Starlette(routes=[Route("/health", health)])


DOWN: dict[str, object] = {
    "status": "degraded",
    "checks": {"postgres": "ok", "redis": "down", "queue": "ok"},
}
UP: dict[str, object] = {"status": "ok", "checks": {"postgres": "ok", "redis": "ok", "queue": "ok"}}


@pytest.fixture
def serve() -> Iterator[list[ServerThread]]:
    servers: list[ServerThread] = []
    yield servers
    for server in servers:
        server.stop()


def test_given_dependencies_coming_up_then_ready_once_all_answer(
    serve: list[ServerThread],
) -> None:
    server = ServerThread(health_server([DOWN, DOWN, UP]), port=0, name="health")
    serve.append(server)
    url = server.start()

    assert wait_until_healthy(url, timeout=10, interval=0.01)


def test_given_a_dependency_that_stays_down_then_not_ready(serve: list[ServerThread]) -> None:
    server = ServerThread(health_server([DOWN]), port=0, name="health")
    serve.append(server)
    url = server.start()

    assert not wait_until_healthy(url, timeout=0.2, interval=0.01)
