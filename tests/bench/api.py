"""What a request costs through the whole app, beside a bare FastAPI route doing one
Postgres transaction on the same database.

The apps are the functions' own (every middleware, the token check, the rate limits in
Redis, the workspace check and the use case's transaction), called in-process over ASGI,
as are the bare routes, so both sides pay the same client and framework costs. Postgres is
the embedded server; Redis sits behind the Upstash REST bridge, in a process of its own
(as Upstash is not in the function's process). Rows: two reads (`GET /agents?limit=20`,
AgentsFunction: membership, 7-day activity and the agent list, with the agent-list cache;
`GET /workspaces`, AuthFunction: the caller's workspaces) and a write (`POST
/conversations`, ChatFunction), one client in sequence, then 50 clients at once. Targets:
a read's single-client p50 at most 1.5x the bare route's; throughput at 50 clients at
least 0.67x.

Each read is also set beside a bare route running that read's own statements (the claims,
then the same queries, through the same repositories where there are some): the
difference is what the app adds (middleware, token check, limits, cache, response models),
the rest is the database work the read's answer needs.

Two placements, each judged: in process (the client calls the app over ASGI, so only the
app's own work is measured), and over HTTP, where each app is served by a uvicorn process
of its own (as `guildstack dev --workers 1` serves each function, and as Lambda gives each
function its own container) and the client is this process. The second is how a client
meets the API. Over HTTP, 50 clients in one client process are limited by that process
(for the bare route it is the busiest of all): its throughput is printed, not judged.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import multiprocessing
import pstats
import secrets
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import psycopg
from fastapi import FastAPI
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.routing import Mount

from guildstack.bootstrap import build
from guildstack.config import Settings
from guildstack.devstack.gotrue import SigningKey, api_key_for, create_auth_app
from guildstack.devstack.redis import RedisServer
from guildstack.devstack.servers import ServerThread, free_port
from guildstack.observability import logger
from tests.bench.support import REPO, bench_database

CLIENTS = 50
PROFILE_ORDER = "cumulative"
READ_P50_TARGET = 1.5
THROUGHPUT_TARGET = 0.67
Call = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


def _serve_bridge(redis_url: str, token: str, port: int) -> None:
    """The Upstash REST bridge in a process of its own."""
    import uvicorn

    from guildstack.devstack.upstash_bridge import create_bridge_app

    uvicorn.run(create_bridge_app(redis_url, token), host="127.0.0.1", port=port,
                log_level="warning", lifespan="off")  # fmt: skip


def _serve_app(kind: str, settings: dict[str, Any], workspace_id: str, claims: dict[str, Any],
               port: int) -> None:  # fmt: skip
    """One app (`bare`, `agents`, `chat` or `auth`) served by uvicorn, in a process of its
    own."""
    import uvicorn

    logger.setLevel("WARNING")
    url = settings["database_url"]
    if kind == "bare":
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            url, min_size=1, max_size=settings["db_pool_max_size"], open=False,
            kwargs={"autocommit": True, "row_factory": dict_row, "prepare_threshold": None},
        )  # fmt: skip
        app = bare_app(pool, workspace_id, claims)

        @app.on_event("startup")
        async def open_pool() -> None:
            await pool.open()

        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
        return
    from functions.agents.app import create as agents_app
    from functions.auth.app import create as auth_app
    from functions.chat.app import create as chat_app

    create = {"agents": agents_app, "chat": chat_app, "auth": auth_app}[kind]
    uvicorn.run(create(build(Settings(**settings))), host="127.0.0.1", port=port,
                log_level="warning", lifespan="off")  # fmt: skip


@contextmanager
def _served(settings: dict[str, Any], workspace_id: str, claims: dict[str, Any]
            ) -> Iterator[dict[str, str]]:  # fmt: skip
    """The three apps, each in its own uvicorn process: their base URLs."""
    spawn = multiprocessing.get_context("spawn")
    urls, processes = {}, []
    try:
        for kind in ("bare", "agents", "chat", "auth"):
            port = free_port()
            process = spawn.Process(target=_serve_app,
                                    args=(kind, settings, workspace_id, claims, port),
                                    daemon=True)  # fmt: skip
            process.start()
            processes.append(process)
            urls[kind] = f"http://127.0.0.1:{port}"
        for url in urls.values():
            _wait_for(url)
        yield urls
    finally:
        for process in processes:
            process.terminate()
            process.join(5)


@dataclass
class Row:
    label: str
    single: list[float]
    concurrent: list[float]
    throughput: float

    def p(self, samples: list[float], q: int) -> float:
        return statistics.quantiles(samples, n=100)[q - 1] * 1000


async def _measure(label: str, client: httpx.AsyncClient, call: Call, n: int) -> Row:
    for _ in range(30):
        (await call(client)).raise_for_status()
    single = []
    for _ in range(n):
        started = time.perf_counter()
        (await call(client)).raise_for_status()
        single.append(time.perf_counter() - started)
    latencies: list[float] = []
    each = max(4, n // CLIENTS * 2)

    async def one_client() -> None:
        for _ in range(each):
            started = time.perf_counter()
            (await call(client)).raise_for_status()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(CLIENTS)))
    wall = time.perf_counter() - started
    return Row(label, single, latencies, len(latencies) / wall)


def bare_app(pool: AsyncConnectionPool[Any], workspace_id: str, claims: dict[str, Any]
             ) -> FastAPI:  # fmt: skip
    """A FastAPI app whose routes each run one transaction on the same database: a simple
    read or write, and the read `GET /agents` makes (with its claims, as its user)."""
    from guildstack.adapters.postgres.agents import PostgresAgentRepository
    from guildstack.adapters.postgres.workspaces import PostgresWorkspaceRepository
    from guildstack.domain.principal import Principal

    app = FastAPI()
    me = Principal(uuid.UUID(claims["sub"]), None, claims)
    ws = uuid.UUID(workspace_id)
    setup = (json.dumps(claims), claims["sub"])

    async def as_user(conn: Any) -> None:
        """What a user's transaction starts with: the claims, the `authenticated` role."""
        await conn.execute(
            "select set_config('request.jwt.claims', %s, true), set_config("
            "'request.jwt.claim.sub', %s, true), set_config('role', 'authenticated', true)",
            setup,
        )

    @app.get("/bare/agents")
    async def same_read() -> dict[str, Any]:
        """The statements of `GET /agents` (claims and role, membership, 7-day activity,
        rows), through the same repositories, without the app around them."""
        async with pool.connection() as conn, conn.transaction():
            await as_user(conn)
            if await PostgresWorkspaceRepository(conn, me).role_of(ws) is None:
                return {"items": []}
            agents = PostgresAgentRepository(conn, me)
            activity = await agents.activity(ws, timedelta(days=7))
            rows = await agents.all(ws)
        return {
            "items": [
                {"code": a.code, "name": a.spec.name, "status": a.status.value} for a in rows
            ],
            "active": len(activity),
        }

    @app.get("/bare/read")
    async def read() -> dict[str, Any]:
        async with pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "select id, code, name, status from public.agents where workspace_id = %s"
                " order by code limit 20",
                (workspace_id,),
            )
            return {"items": [dict(row) for row in await cur.fetchall()]}

    @app.get("/bare/workspaces")
    async def my_workspaces() -> dict[str, Any]:
        """The statements of `GET /workspaces` (claims and role, the caller's workspaces
        under RLS), without the app around them."""
        async with pool.connection() as conn, conn.transaction():
            await as_user(conn)
            cur = await conn.execute(
                "select id, name, slug, created_at from public.workspaces order by created_at"
                " limit 50"
            )
            return {"items": [{**row, "id": str(row["id"])} for row in await cur.fetchall()]}

    @app.post("/bare/write", status_code=201)
    async def write(body: dict[str, Any]) -> dict[str, Any]:
        async with pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "insert into bench_writes (body) values (%s) returning id", (json.dumps(body),)
            )
            row = await cur.fetchone()
            assert row is not None
            return {"id": str(row["id"])}

    return app


async def run(settings: Settings, url: str, token: str, workspace_id: str,
              claims: dict[str, Any], n: int, profile: bool) -> list[tuple[Row, ...]]:  # fmt: skip
    """In process: each app called over ASGI."""
    from functions.agents.app import create as agents_app
    from functions.auth.app import create as auth_app
    from functions.chat.app import create as chat_app

    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url, min_size=1, max_size=settings.db_pool_max_size, open=False,
        kwargs={"autocommit": True, "row_factory": dict_row, "prepare_threshold": None},
    )  # fmt: skip
    await pool.open()
    agents, chat, auth = build(settings), build(settings), build(settings)
    apps = {
        "bare": bare_app(pool, workspace_id, claims),
        "agents": agents_app(agents),
        "chat": chat_app(chat),
        "auth": auth_app(auth),
    }

    def client(name: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=apps[name])
        return httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=60)

    try:
        return await _compare(client, token, workspace_id, n, profile)
    finally:
        await pool.close()
        for container in (agents, chat, auth):
            if "database" in vars(container):
                await container.database.close()


async def run_over_http(urls: dict[str, str], token: str, workspace_id: str, n: int
                        ) -> list[tuple[Row, ...]]:  # fmt: skip
    """Over HTTP: each app in its own uvicorn process, one keep-alive pool per app."""
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)

    def client(name: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=urls[name], timeout=60, limits=limits)

    return await _compare(client, token, workspace_id, n, profile=False)


async def _compare(client: Callable[[str], httpx.AsyncClient], token: str, workspace_id: str,
                   n: int, profile: bool) -> list[tuple[Row, ...]]:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}", "X-Workspace-Id": workspace_id}

    async def full_read(c: httpx.AsyncClient) -> httpx.Response:
        return await c.get("/agents", params={"limit": 20}, headers=headers)

    async def full_write(c: httpx.AsyncClient) -> httpx.Response:
        return await c.post("/conversations", json={"title": "bench"}, headers=headers)

    async def bare_read(c: httpx.AsyncClient) -> httpx.Response:
        return await c.get("/bare/read", headers=headers)

    async def same_read(c: httpx.AsyncClient) -> httpx.Response:
        return await c.get("/bare/agents", headers=headers)

    async def full_workspaces(c: httpx.AsyncClient) -> httpx.Response:
        return await c.get("/workspaces", headers=headers)

    async def same_workspaces(c: httpx.AsyncClient) -> httpx.Response:
        return await c.get("/bare/workspaces", headers=headers)

    async def bare_write(c: httpx.AsyncClient) -> httpx.Response:
        return await c.post("/bare/write", json={"title": "bench"}, headers=headers)

    async with (
        client("bare") as bare,
        client("agents") as ag,
        client("chat") as ch,
        client("auth") as au,
    ):
        if profile:
            await _profile(ag, full_read, n)
        return [
            (await _measure("read /agents", ag, full_read, n),
             await _measure("read /agents", bare, bare_read, n),
             await _measure("read /agents", bare, same_read, n)),
            (await _measure("read /workspaces", au, full_workspaces, n),
             await _measure("read /workspaces", bare, bare_read, n),
             await _measure("read /workspaces", bare, same_workspaces, n)),
            (await _measure("write", ch, full_write, n),
             await _measure("write", bare, bare_write, n)),
        ]  # fmt: skip


# A/B pairs in one process, alternated in blocks so the machine's drift falls on both.
AB_BLOCK = 20


async def run_ab(settings: Settings, token: str, workspace_id: str, n: int
                 ) -> list[tuple[str, str, list[float]]]:  # fmt: skip
    """What one part costs, measured by switching it off: the agent-list cache on
    `GET /agents`; local-first limits and pipelined reads on `GET /workspaces`."""
    from functions.agents.app import create as agents_app
    from functions.auth.app import create as auth_app

    no_cache = build(settings)
    no_cache.__dict__["cache"] = None  # the composition root's cached property, preset
    exact = settings.model_copy(update={"rate_limit_local_share": 0.0})
    unpipelined = build(settings)
    # Read-only use cases in an ordinary member transaction (its start a round trip).
    setattr(unpipelined.uow, "reading", unpipelined.uow.__call__)  # noqa: B010
    pairs = [
        ("GET /agents", "/agents", agents_app,
         [("with the agent-list cache", build(settings)), ("without it", no_cache)]),
        ("GET /workspaces", "/workspaces", auth_app,
         [("as built", build(settings)), ("exact limits", build(exact)),
          ("reads not pipelined", unpipelined)]),
    ]  # fmt: skip
    headers = {"Authorization": f"Bearer {token}", "X-Workspace-Id": workspace_id}
    results = []
    for label, path, create, variants in pairs:
        clients = [
            (name, httpx.AsyncClient(transport=httpx.ASGITransport(app=create(container)),
                                     base_url="http://bench"), container)
            for name, container in variants
        ]  # fmt: skip
        samples: dict[str, list[float]] = {name: [] for name, _, _ in clients}
        for _ in range(30):
            for _, client, _ in clients:
                (await client.get(path, params={"limit": 20}, headers=headers)).raise_for_status()
        for _ in range(max(1, n // AB_BLOCK)):
            for name, client, _ in clients:
                for _ in range(AB_BLOCK):
                    started = time.perf_counter()
                    response = await client.get(path, params={"limit": 20}, headers=headers)
                    response.raise_for_status()
                    samples[name].append(time.perf_counter() - started)
        for name, client, container in clients:
            await client.aclose()
            if "database" in vars(container):
                await container.database.close()
            results.append((label, name, samples[name]))
    return results


def _print_ab(results: list[tuple[str, str, list[float]]]) -> None:
    print(f"## One part switched off (in process, alternated in blocks of {AB_BLOCK})\n")
    print("| request | variant | p50 ms | p95 ms |")
    print("|---|---|---:|---:|")
    for label, name, samples in results:
        quantiles = statistics.quantiles(samples, n=100)
        print(f"| {label} | {name} | {quantiles[49] * 1000:.2f} | {quantiles[94] * 1000:.2f} |")
    print()


async def _profile(client: httpx.AsyncClient, call: Call, n: int) -> None:
    for _ in range(30):
        await call(client)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n):
        await call(client)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats(PROFILE_ORDER).print_stats(45)
    print("```\n" + out.getvalue()[-9000:] + "\n```\n")


def _setup(url: str, auth_url: str, anon_key: str) -> tuple[str, str, dict[str, Any]]:
    """A signed-up user owning a workspace; a table for the bare write."""
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    signed_up = httpx.post(
        f"{auth_url}/auth/v1/signup",
        json={"email": email, "password": f"pw-{uuid.uuid4().hex}"},
        headers={"apikey": anon_key},
    )
    signed_up.raise_for_status()
    body = signed_up.json()
    claims = {"sub": body["user"]["id"], "role": "authenticated", "email": email}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "create table if not exists bench_writes (id uuid primary key default"
            " gen_random_uuid(), body jsonb not null, created_at timestamptz default now())"
        )
        with conn.transaction():
            conn.execute(
                "select set_config('request.jwt.claims', %s, true),"
                " set_config('request.jwt.claim.sub', %s, true),"
                " set_config('role', 'authenticated', true)",
                (json.dumps(claims), claims["sub"]),
            )
            row = conn.execute("select id from public.create_workspace('Bench', 'bench', null)")
            created = row.fetchone()
    assert created is not None
    return str(body["access_token"]), str(created[0]), claims


def _print(rows: list[tuple[Row, ...]], n: int, where: str, *, judge_rate: bool = True) -> None:
    print(f"## A request through the whole app beside a bare route, {where} ({n} in"
          f" sequence, then {CLIENTS} clients at once)\n")  # fmt: skip
    print("| request | side | 1 client p50 ms | p95 ms | 50 clients req/s | p50 ms | p95 ms |")
    print("|---|---|---:|---:|---:|---:|---:|")
    sides = ("Guildstack", "bare FastAPI + 1 transaction",
             "bare FastAPI + the read's own transaction")  # fmt: skip
    for group in rows:
        for side, row in zip(sides, group, strict=False):
            print(
                f"| {row.label} | {side} | {row.p(row.single, 50):.2f}"
                f" | {row.p(row.single, 95):.2f}"
                f" | {row.throughput:.0f} | {row.p(row.concurrent, 50):.1f}"
                f" | {row.p(row.concurrent, 95):.1f} |"
            )
    print()
    for full, bare, *same in rows:
        p50 = full.p(full.single, 50) / bare.p(bare.single, 50)
        rate = full.throughput / bare.throughput
        verdict_p50 = "pass" if p50 <= READ_P50_TARGET else "MISS"
        verdict_rate = "pass" if rate >= THROUGHPUT_TARGET else "MISS"
        judged = full.label.startswith("read")
        print(
            f"- {full.label}: single-client p50 {p50:.2f}x the bare route"
            + (f" (target ≤ {READ_P50_TARGET}x: {verdict_p50})" if judged else "")
            + f"; throughput at {CLIENTS} clients {rate:.2f}x"
            + (f" (target ≥ {THROUGHPUT_TARGET}x: {verdict_rate})" if judge_rate else "")
        )
        for own in same:
            print(
                f"- {full.label}, beside a bare route running the read's own statements:"
                f" p50 {full.p(full.single, 50) / own.p(own.single, 50):.2f}x,"
                f" throughput {full.throughput / own.throughput:.2f}x (what the app adds:"
                " middleware, token, limits, cache, response models)"
            )
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="print a profile of reads")
    args = parser.parse_args(argv)
    logger.setLevel("WARNING")
    n = max(200, args.runs * 40)
    redis = RedisServer(REPO / ".devstack" / "bench-redis")
    redis_url = redis.start()
    token, port = secrets.token_urlsafe(16), free_port()
    bridge = multiprocessing.get_context("spawn").Process(
        target=_serve_bridge, args=(redis_url, token, port), daemon=True
    )
    bridge.start()
    key = SigningKey.generate()
    try:
        with bench_database() as url:
            auth_port = free_port()
            auth_url = f"http://127.0.0.1:{auth_port}"
            anon, service = api_key_for(key, "anon"), api_key_for(key, "service_role")
            auth = create_auth_app(url, issuer=f"{auth_url}/auth/v1", signing_key=key,
                                   anon_key=anon, service_role_key=service)  # fmt: skip
            server = ServerThread(Starlette(routes=[Mount("/auth/v1", app=auth)]),
                                  port=auth_port, name="auth")  # fmt: skip
            server.start()
            _wait_for(f"http://127.0.0.1:{port}")
            settings: dict[str, Any] = {
                "stage": "test",
                "database_url": url,
                "supabase_url": auth_url,
                "supabase_anon_key": anon,
                "upstash_redis_rest_url": f"http://127.0.0.1:{port}",
                "upstash_redis_rest_token": token,
                # Counted as always, never reached.
                "rate_limit_per_minute": 10_000_000,
                "workspace_rate_limit_per_minute": 10_000_000,
                "rate_limit_prefix": f"gs:bench:{uuid.uuid4().hex[:8]}",
            }
            settings["db_pool_max_size"] = Settings(**settings).db_pool_max_size
            access, workspace_id, claims = _setup(url, auth_url, anon)
            in_process = asyncio.run(
                run(Settings(**settings), url, access, workspace_id, claims, n, args.profile)
            )
            parts = asyncio.run(run_ab(Settings(**settings), access, workspace_id, n))
            with _served(settings, workspace_id, claims) as urls:
                over_http = asyncio.run(run_over_http(urls, access, workspace_id, n))
            server.stop()
    finally:
        bridge.terminate()
        bridge.join(5)
        redis.stop()
    _print(in_process, n, "in process (ASGI)")
    _print(over_http, n, "over HTTP (each app its own uvicorn process)", judge_rate=False)
    _print_ab(parts)
    return 0


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not start")


if __name__ == "__main__":
    raise SystemExit(main())
