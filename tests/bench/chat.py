"""Chat: what the stack adds before a streamed reply's first token.

`POST /chat/message` on the Stream function's app, served by uvicorn on a local port and
read by an HTTP client as a browser would (SSE), on the embedded PostgreSQL. The model is
the offline provider whose streamed calls wait `FIRST_TOKEN_SECONDS` before their first
token (a real model's time to first token); its plain calls (the router's, the
specialists') answer at once, so what is left is the stack's own time: authentication,
the accept transaction (budget, limits, message), routing and memory recall, the run's
start, the step's claim, the specialists' metered calls and the streamed call's
reservation.

Overhead = time from sending the request to reading the first `token` event, minus
`FIRST_TOKEN_SECONDS`. Also printed: time to the first byte (the first `meta` event, sent
before any model call) and to `done` (the reply stored).

A bare FastAPI app whose SSE route waits `FIRST_TOKEN_SECONDS` and sends one token is the
floor (the HTTP server and client alone). Then two configurations: without memories (the
stack alone), and with the devstack's local embedder recalling memories for each message (a
CPU-bound embedding on this machine; in AWS the embedder is a network call that overlaps
the accept transaction the same way). With only the offline provider there is no routing
model: keywords route without a model call.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Sequence

import httpx
import jwt
import uvicorn
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from pydantic import SecretStr

from functions.stream.app import create as create_stream
from guildstack.adapters.models.offline import OfflineProvider
from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.bootstrap import build
from guildstack.config import Settings
from guildstack.devstack.servers import free_port
from guildstack.domain.errors import DependencyUnavailable
from guildstack.domain.models import ModelRequest, StreamItem
from tests.bench.model_call import _workspace
from tests.bench.support import bench_database

FIRST_TOKEN_SECONDS = 0.2
TARGET_MS = 20.0
SECRET = "bench-secret-" + uuid.uuid4().hex
ISSUER = "guildstack-bench"
WARM_UP = 3


class NoEmbedder:
    """Memory switched off: every lookup fails at once, and the turn goes on without."""

    model_id = "none"
    dimensions = 384

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        raise DependencyUnavailable("no embedder in this configuration")


class FirstTokenDelay(OfflineProvider):
    """The offline provider, its streams starting after a real model's first-token delay."""

    async def stream(self, model: str, request: ModelRequest) -> AsyncIterator[StreamItem]:
        await asyncio.sleep(FIRST_TOKEN_SECONDS)
        async for item in super().stream(model, request):
            yield item


def _token(user: uuid.UUID) -> str:
    now = int(time.time())
    claims = {
        "sub": str(user),
        "aud": "authenticated",
        "role": "authenticated",
        "iss": ISSUER,
        "iat": now,
        "exp": now + 3600,
    }
    return jwt.encode(claims, SECRET, algorithm="HS256")


def _bare_app() -> FastAPI:
    app = FastAPI()

    @app.post("/chat/message")
    async def reply() -> StreamingResponse:
        async def frames() -> AsyncIterator[str]:
            yield "event: meta\ndata: {}\n\n"
            await asyncio.sleep(FIRST_TOKEN_SECONDS)
            yield 'event: token\ndata: {"text": "hi"}\n\n'
            yield "event: done\ndata: {}\n\n"

        return StreamingResponse(frames(), media_type="text/event-stream")

    return app


async def _serve(app: FastAPI, turns: int, headers: dict[str, str]) -> list[tuple[float, ...]]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    samples: list[tuple[float, ...]] = []
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no start-up event
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for i in range(WARM_UP + turns):
                sample = await _turn(client, headers)
                if i >= WARM_UP:
                    samples.append(sample)
    finally:
        server.should_exit = True
        await serving
    return samples


async def bare(turns: int) -> list[list[float]]:
    samples = await _serve(_bare_app(), turns, {})
    return [[s[k] * 1000 for s in samples] for k in range(3)]


async def _turn(client: httpx.AsyncClient, headers: dict[str, str]) -> tuple[float, ...]:
    """Seconds to the first byte, the first token and `done`, for one turn."""
    body = {"content": "Plan a launch week for our bakery's new sourdough"}
    started = time.perf_counter()
    first_byte = first_token = None
    async with client.stream("POST", "/chat/message", json=body, headers=headers) as r:
        if r.status_code != 200:
            raise RuntimeError(f"chat refused: {r.status_code} {await r.aread()!r}")
        async for line in r.aiter_lines():
            now = time.perf_counter() - started
            if first_byte is None:
                first_byte = now
            if line == "event: token" and first_token is None:
                first_token = now
            elif line == "event: error":
                raise RuntimeError("the turn failed")
            elif line == "event: done":
                assert first_token is not None
                return first_byte, first_token, now
    raise RuntimeError("the stream ended without `done`")


async def run(url: str, turns: int, *, memory: bool) -> list[list[float]]:
    user, workspace = await _workspace(url)
    database = PostgresDatabase(url, max_size=8)
    settings = Settings(
        stage="test",
        database_url=SecretStr(url),
        jwt_issuer=ISSUER,
        supabase_jwt_secret=SecretStr(SECRET),
    )
    overrides: dict[str, object] = {} if memory else {"embedder": NoEmbedder()}
    container = build(
        settings,
        database=database,
        model_providers={"offline": FirstTokenDelay()},
        **overrides,
    )
    headers = {"Authorization": f"Bearer {_token(user)}", "X-Workspace-Id": str(workspace)}
    try:
        samples = await _serve(create_stream(container), turns, headers)
    finally:
        await database.close()
    return [[s[k] * 1000 for s in samples] for k in range(3)]


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else values[0]


def print_table(results: dict[str, list[list[float]]], turns: int) -> None:
    print(f"### Chat: a streamed reply's first token ({turns} turns each, offline model)\n")
    print(
        f"The streamed call's first token comes {FIRST_TOKEN_SECONDS * 1000:.0f} ms after it"
        " starts; overhead is what the stack adds to that. Median (p95) ms.\n"
    )
    print("| configuration | first byte | first `token` | **overhead** | `done` |")
    print("|---|---:|---:|---:|---:|")
    verdict = ""
    for name, (first_byte, first_token, done) in results.items():
        overhead = [t - FIRST_TOKEN_SECONDS * 1000 for t in first_token]
        cells = [_cell(v) for v in (first_byte, first_token, overhead, done)]
        print(f"| {name} | " + " | ".join(cells) + " |")
        if not verdict and not name.startswith("bare"):
            met = statistics.median(overhead) <= TARGET_MS
            verdict = f"{name}: {'meets' if met else 'misses'} it"
    print(f"\nTarget: overhead ≤ {TARGET_MS:.0f} ms median ({verdict}).")


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({_p95(values):.1f})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=25, help="timed turns")
    args = parser.parse_args(argv)
    with bench_database() as url:
        results = {
            "bare FastAPI SSE route (the floor)": asyncio.run(bare(args.runs)),
            "without memories": asyncio.run(run(url, args.runs, memory=False)),
            "recalling memories (local embedder)": asyncio.run(run(url, args.runs, memory=True)),
        }
    print_table(results, args.runs)


if __name__ == "__main__":
    main()
