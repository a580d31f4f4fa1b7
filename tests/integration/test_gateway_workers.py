"""`guildstack dev --workers N`: each HTTP function in its own uvicorn process, the gateway
forwarding to it (responses streamed as written), on the real local services."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route

from guildstack.config import Settings
from guildstack.devstack.servers import ServerThread
from guildstack.devstack.stack import start_gateway
from guildstack.devstack.workers import ProxyApp
from tests.fixtures.gateway import REPO


@pytest.fixture
def worker_gateway(stack_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The gateway with every HTTP function in a process of its own, configured (as on
    Lambda) from the environment."""
    secret = stack_settings.database_url
    token = stack_settings.upstash_redis_rest_token
    anon = stack_settings.supabase_anon_key
    assert secret and token and anon and stack_settings.supabase_url
    env = {
        "STAGE": "test",
        "DATABASE_URL": secret.get_secret_value(),
        "SUPABASE_URL": stack_settings.supabase_url,
        "SUPABASE_ANON_KEY": anon.get_secret_value(),
        "UPSTASH_REDIS_REST_URL": str(stack_settings.upstash_redis_rest_url),
        "UPSTASH_REDIS_REST_TOKEN": token.get_secret_value(),
        "RATE_LIMIT_PREFIX": f"{stack_settings.rate_limit_prefix}:workers",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with ExitStack() as stack:
        yield start_gateway(REPO, 0, stack, workers=1)


async def test_given_workers_then_requests_reach_each_function_in_its_own_process(
    worker_gateway: str,
) -> None:
    async with httpx.AsyncClient(base_url=worker_gateway, timeout=30) as api:
        email = "workers@example.com"
        signed_up = await api.post(
            "/auth/signup", json={"email": email, "password": "pw-workers-1"}
        )
        assert signed_up.status_code == 201, signed_up.text
        auth = {"Authorization": f"Bearer {signed_up.json()['session']['access_token']}"}
        created = await api.post("/workspaces", json={"name": "Apart"}, headers=auth)
        headers = {**auth, "X-Workspace-Id": created.json()["id"]}
        agents = await api.get("/agents", params={"limit": 5}, headers=headers)
        missing = await api.get("/memory/documents", headers={**auth, "X-Workspace-Id": "x"})

    assert agents.status_code == 200 and len(agents.json()["items"]) == 5
    assert missing.status_code == 400
    assert missing.headers["content-type"].startswith("application/problem+json")


async def test_given_a_streamed_answer_then_the_proxy_passes_each_chunk_as_written() -> None:
    release = threading.Event()

    async def events() -> AsyncIterator[bytes]:
        yield b"data: first\n\n"
        await asyncio.to_thread(release.wait, 10)
        yield b"data: second\n\n"

    async def stream(_: object) -> StreamingResponse:
        return StreamingResponse(events(), media_type="text/event-stream")

    upstream = ServerThread(Starlette(routes=[Route("/s", stream)]), name="upstream")
    base = upstream.start()
    proxy = ServerThread(ProxyApp(base), name="proxy")
    try:
        async with (
            httpx.AsyncClient(base_url=proxy.start(), timeout=10) as client,
            client.stream("GET", "/s") as response,
        ):
            chunks = response.aiter_raw()
            first = await chunks.__anext__()
            # The second chunk is not written yet: the first arrived on its own.
            assert first == b"data: first\n\n"
            assert response.headers["content-type"].startswith("text/event-stream")
            release.set()
            assert await chunks.__anext__() == b"data: second\n\n"
    finally:
        proxy.stop()
        upstream.stop()
