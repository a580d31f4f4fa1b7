"""`guildstack sam-env`: an `env.json` for `sam local invoke/start-api --env-vars`.

SAM lets an env-vars file override only the variables the template declares for a function
(its own and the globals), so this writes, for every function, a value for each of those:
the running devstack's endpoints as a container reaches them (`host.docker.internal` by
default; `127.0.0.1` with `--docker-network host` on Linux, since the devstack listens on
the loopback), the template's literal values, and empty strings for the rest (a model key
left empty means "not configured": the offline provider answers).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from guildstack.config import LOCAL_UPSTASH_TOKEN, Settings
from guildstack.devstack.template import Template

DOCKER_HOST = "host.docker.internal"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "0.0.0.0"})  # noqa: S104 - names, not binds
MOTO_ACCOUNT = "123456789012"  # the account moto's queue URLs name


def on_host(url: str, host: str) -> str:
    """`url` with a loopback host replaced by `host` (a remote host is kept)."""
    parts = urlsplit(url)
    if parts.hostname not in LOOPBACK:
        return url
    netloc = parts.netloc.replace(parts.hostname, host, 1)
    return urlunsplit(parts._replace(netloc=netloc))


def local_values(
    *,
    host: str,
    data_dir: Path,
    configured: Settings,
    ports: Any,
) -> dict[str, str]:
    """The devstack's endpoints (or what the environment configures instead), as seen from
    a container."""
    database_url = (
        configured.database_url.get_secret_value()
        if configured.database_url is not None
        else f"postgresql://postgres@127.0.0.1:{ports.postgres}/postgres"
    )
    if configured.upstash_redis_rest_url and configured.upstash_redis_rest_token:
        upstash_url = configured.upstash_redis_rest_url
        upstash_token = configured.upstash_redis_rest_token.get_secret_value()
    else:
        upstash_url, upstash_token = f"http://127.0.0.1:{ports.upstash}", LOCAL_UPSTASH_TOKEN
    if configured.supabase_url and configured.supabase_anon_key:
        supabase_url = configured.supabase_url
        anon_key = configured.supabase_anon_key.get_secret_value()
    else:
        from guildstack.devstack.gotrue import SigningKey, api_key_for

        supabase_url = f"http://127.0.0.1:{ports.supabase}"
        key = SigningKey.load_or_create(data_dir / "auth" / "signing-key.json")
        anon_key = api_key_for(key, "anon")
    sqs = f"http://127.0.0.1:{ports.sqs}"
    values = {
        "STAGE": "local",
        "DATABASE_URL": database_url,
        "SUPABASE_URL": supabase_url,
        "SUPABASE_ANON_KEY": anon_key,
        "UPSTASH_REDIS_REST_URL": upstash_url,
        "UPSTASH_REDIS_REST_TOKEN": upstash_token,
        "SQS_ENDPOINT_URL": sqs,
        "POWERTOOLS_TRACE_DISABLED": "true",
        # The local embedder needs the dev dependencies, which the layer does not ship.
        "EMBEDDER": "local",
    }
    return {name: on_host(v, host) if "://" in v else v for name, v in values.items()}


def queue_urls(template: Template, sqs_endpoint: str) -> dict[str, str]:
    """`<SNAKE_ID>_URL` → the devstack's queue URL (queues are named by logical id)."""
    from guildstack.devstack.sqs import queue_env_name

    return {
        queue_env_name(q.logical_id): f"{sqs_endpoint}/{MOTO_ACCOUNT}/{q.logical_id}"
        for q in template.queues
    }


def sam_env(template: Template, values: dict[str, str]) -> dict[str, dict[str, str]]:
    """Per function, a value for every variable the template declares for it."""
    queues = queue_urls(template, values["SQS_ENDPOINT_URL"])
    env: dict[str, dict[str, str]] = {}
    for spec in template.functions:
        variables: dict[str, str] = {}
        for name, declared in spec.environment.items():
            if name in values:
                variables[name] = values[name]
            elif name in queues:
                variables[name] = queues[name]
            elif isinstance(declared, str | int | float | bool):
                variables[name] = str(declared)
            else:  # a reference (secret, parameter): not configured locally
                variables[name] = ""
        env[spec.logical_id] = variables
    return env


def write_sam_env(
    root: Path, output: Path, *, host: str = DOCKER_HOST, data_dir: Path | None = None
) -> dict[str, dict[str, str]]:
    from guildstack.devstack.stack import Ports

    template = Template.load(root / "template.yaml")
    values = local_values(
        host=host,
        data_dir=data_dir or root / ".devstack",
        configured=Settings.from_environ(),
        ports=Ports(),
    )
    env = sam_env(template, values)
    output.write_text(json.dumps(env, indent=2, sort_keys=True) + "\n")
    return env
