"""The whole system on one machine: Postgres, Redis + Upstash bridge, Supabase Auth
stand-in, and every function behind one gateway built from template.yaml.

Each function sees the environment Lambda would give it (DATABASE_URL, SUPABASE_URL, ...),
pointing at the local stand-ins; production code runs unchanged.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from starlette.applications import Starlette
from starlette.routing import Mount

from guildstack.config import LOCAL_UPSTASH_TOKEN, Settings, get_settings
from guildstack.devstack.servers import ServerThread

READY_LINE = "guildstack devstack ready"
# Ports of the dev servers front ends commonly run on locally.
FRONTEND_PORTS = (3000, 5173, 8080)
LOCAL_VISIBILITY = {"StepsQueue": 30}


@dataclass(frozen=True)
class Ports:
    gateway: int = 8787
    supabase: int = 54321  # Supabase CLI's API port
    postgres: int = 54322  # Supabase CLI's database port
    redis: int = 54329
    upstash: int = 54330
    sqs: int = 54331


@dataclass(frozen=True)
class Endpoints:
    database_url: str
    redis_url: str
    upstash_url: str
    upstash_token: str
    supabase_url: str
    anon_key: str
    service_role_key: str

    def environment(self) -> dict[str, str]:
        """What a deployed function would find in its environment, pointing at the stand-ins."""
        return {
            "STAGE": "local",
            "DATABASE_URL": self.database_url,
            "SUPABASE_URL": self.supabase_url,
            "SUPABASE_ANON_KEY": self.anon_key,
            "SUPABASE_SERVICE_ROLE_KEY": self.service_role_key,
            "UPSTASH_REDIS_REST_URL": self.upstash_url,
            "UPSTASH_REDIS_REST_TOKEN": self.upstash_token,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "Guildstack",
        }


def local_cors_origins(gateway_port: int) -> list[str]:
    """The origins the devstack allows by default: local front ends and the gateway's own
    pages. CORS_ORIGINS replaces the list."""
    return [
        f"http://{host}:{port}"
        for port in (*FRONTEND_PORTS, gateway_port)
        for host in ("localhost", "127.0.0.1")
    ]


def start_backing_services(
    data_dir: Path, ports: Ports, stack: ExitStack, configured: Settings | None = None
) -> Endpoints:
    """Postgres (migrated), Redis + Upstash bridge and the auth stand-in, stopped by `stack`.

    Whatever `configured` already names is used instead of its stand-in: DATABASE_URL
    (a local Postgres or Supabase through its pooler), UPSTASH_REDIS_REST_URL/TOKEN (real
    Upstash), SUPABASE_URL/SUPABASE_ANON_KEY (real Supabase Auth).
    """
    from guildstack.adapters.postgres.migrate import apply_migrations

    configured = configured or Settings()
    if configured.database_url is not None:
        database_url = configured.database_url.get_secret_value()
    else:
        database_url = _embedded_postgres(data_dir, ports, stack)
    apply_migrations(database_url)

    if configured.upstash_redis_rest_url and configured.upstash_redis_rest_token:
        redis_url = "(managed by Upstash)"
        upstash_url = configured.upstash_redis_rest_url
        upstash_token = configured.upstash_redis_rest_token.get_secret_value()
    else:
        redis_url, upstash_url = _local_redis(data_dir, ports, stack)
        upstash_token = LOCAL_UPSTASH_TOKEN

    if configured.supabase_url and configured.supabase_anon_key:
        supabase_url = configured.supabase_url
        anon_key = configured.supabase_anon_key.get_secret_value()
        service = configured.supabase_service_role_key
        service_role_key = service.get_secret_value() if service else ""
    else:
        origins = configured.cors_origins or local_cors_origins(ports.gateway)
        supabase_url, anon_key, service_role_key = _local_auth(
            data_dir, ports, stack, database_url, origins
        )

    return Endpoints(
        database_url=database_url,
        redis_url=redis_url,
        upstash_url=upstash_url,
        upstash_token=upstash_token,
        supabase_url=supabase_url,
        anon_key=anon_key,
        service_role_key=service_role_key,
    )


def _embedded_postgres(data_dir: Path, ports: Ports, stack: ExitStack) -> str:
    from guildstack.devstack.postgres import EmbeddedPostgres

    postgres = EmbeddedPostgres(data_dir / "postgres", port=ports.postgres)
    database_url = postgres.start()
    stack.callback(postgres.stop)
    return database_url


def _local_redis(data_dir: Path, ports: Ports, stack: ExitStack) -> tuple[str, str]:
    from guildstack.devstack.redis import RedisServer
    from guildstack.devstack.upstash_bridge import create_bridge_app

    redis = RedisServer(data_dir / "redis", port=ports.redis)
    redis_url = redis.start()
    stack.callback(redis.stop)
    bridge = ServerThread(
        create_bridge_app(redis_url, LOCAL_UPSTASH_TOKEN), port=ports.upstash, name="upstash"
    )
    upstash_url = bridge.start()
    stack.callback(bridge.stop)
    return redis_url, upstash_url


def _local_auth(
    data_dir: Path, ports: Ports, stack: ExitStack, database_url: str, cors_origins: list[str]
) -> tuple[str, str, str]:
    from guildstack.devstack.gotrue import SigningKey, api_key_for, create_auth_app

    supabase_url = f"http://127.0.0.1:{ports.supabase}"
    key = SigningKey.load_or_create(data_dir / "auth" / "signing-key.json")
    anon_key = api_key_for(key, "anon")
    service_role_key = api_key_for(key, "service_role")
    auth_app = create_auth_app(
        database_url,
        issuer=f"{supabase_url}/auth/v1",
        signing_key=key,
        anon_key=anon_key,
        service_role_key=service_role_key,
        cors_origins=cors_origins,
    )
    supabase = ServerThread(
        Starlette(routes=[Mount("/auth/v1", app=auth_app)]), port=ports.supabase, name="supabase"
    )
    supabase.start()
    stack.callback(supabase.stop)
    return supabase_url, anon_key, service_role_key


def start_gateway(
    root: Path,
    port: int,
    stack: ExitStack,
    *,
    import_module: Callable[[str], Any] | None = None,
    observer: Callable[[str, str, int], None] | None = None,
    pages: dict[str, Any] | None = None,
    workers: int = 0,
) -> str:
    """Every function of template.yaml behind one uvicorn server; returns its URL. With
    `workers`, each HTTP function runs in its own uvicorn with that many processes (as
    Lambda runs each function in containers of its own) and the gateway forwards to it."""
    from guildstack.devstack.gateway import build_gateway
    from guildstack.devstack.template import Template

    template = Template.load(root / "template.yaml")
    kwargs: dict[str, Any] = {"import_module": import_module} if import_module else {}
    if workers > 0:
        from guildstack.devstack.workers import start_function_processes

        http = [(f.logical_id, f.app_module) for f in template.functions if f.routes]
        kwargs["apps"] = start_function_processes(root, http, workers, stack)
    origins = frozenset(get_settings().cors_origins)
    gateway = ServerThread(
        build_gateway(template, cors_origins=origins, observer=observer, pages=pages, **kwargs),
        port=port,
        name="gateway",
    )
    url = gateway.start()
    stack.callback(gateway.stop)
    return url


def run_forever(*, gateway_port: int, data_dir: Path | None, workers: int = 0) -> int:
    """`guildstack dev`: start everything, print the URLs and one ready line, stop on Ctrl-C."""
    from guildstack.devstack.cli import repo_root

    root = repo_root()
    data = data_dir or root / ".devstack"
    ports = Ports(gateway=gateway_port)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with ExitStack() as stack:
        from guildstack.devstack.console import CONSOLE_PATH, ConsoleConfig, create_console_app
        from guildstack.devstack.sqs import start_event_sources, start_sqs
        from guildstack.devstack.template import Template

        settings = get_settings()
        endpoints = start_backing_services(data, ports, stack, settings)
        origins = settings.cors_origins or local_cors_origins(ports.gateway)
        os.environ.setdefault("CORS_ORIGINS", ",".join(origins))
        template = Template.load(root / "template.yaml")
        # Locally a failed step comes back in 30 s rather than the deployed 15 minutes.
        sqs = start_sqs(template, ports.sqs, stack, visibility_timeout_override=LOCAL_VISIBILITY)
        # Functions read their settings from the environment at import, as on Lambda.
        os.environ.update(endpoints.environment())
        os.environ.update(sqs.environment())
        get_settings.cache_clear()
        console = create_console_app(
            root / "web",
            ConsoleConfig(
                api="",
                stream="",
                supabaseUrl=endpoints.supabase_url,
                anonKey=endpoints.anon_key,
            ),
        )
        gateway_url = start_gateway(
            root, ports.gateway, stack, pages={CONSOLE_PATH: console}, workers=workers
        )
        # Worker, dead-letter and sweeper handlers are imported here, with that environment.
        start_event_sources(template, sqs, stack)
        if not wait_until_healthy(gateway_url):
            print("warning: some dependency is not answering; see /health", flush=True)  # noqa: T201
        _print_banner(gateway_url, endpoints, sqs.endpoint_url)
        stop.wait()
        print("stopping…", flush=True)  # noqa: T201
    print("stopped", flush=True)  # noqa: T201
    return 0


def wait_until_healthy(gateway_url: str, *, timeout: float = 60.0, interval: float = 0.2) -> bool:
    """Whether `/health` reported every dependency `ok` within `timeout` (the ready line is
    printed only then: a client that starts on it finds everything answering)."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            body = httpx.get(f"{gateway_url}/health", timeout=5).json()
            if body.get("status") == "ok" and all(v == "ok" for v in body["checks"].values()):
                return True
        except (httpx.HTTPError, ValueError, KeyError, AttributeError):
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def _print_banner(gateway_url: str, endpoints: Endpoints, sqs_url: str) -> None:
    lines = [
        f"  gateway    {gateway_url}   (try: curl {gateway_url}/health)",
        f"  console    {gateway_url}/console/   (API document: {gateway_url}/docs)",
        f"  supabase   {endpoints.supabase_url}   (auth at /auth/v1)",
        f"  postgres   {_without_password(endpoints.database_url)}",
        f"  upstash    {endpoints.upstash_url}   (redis {endpoints.redis_url})",
        f"  sqs        {sqs_url}   (StepsQueue, StepsDLQ; worker, dead letters, sweeper)",
        f"  anon key   {endpoints.anon_key}",
        f"{READY_LINE}: {gateway_url}",
    ]
    print("\n".join(lines), flush=True)  # noqa: T201
