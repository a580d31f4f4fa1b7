"""The `sam local` kit: `guildstack sam-env` gives every function a value for each variable
the template declares for it, pointing at the devstack from a container; every event in
`tests/events/` runs through `guildstack invoke` against the running stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from guildstack.config import Settings
from guildstack.devstack.cli import main
from guildstack.devstack.sam_env import DOCKER_HOST, local_values, sam_env
from guildstack.devstack.sqs import SqsEndpoint
from guildstack.devstack.stack import Ports
from guildstack.devstack.template import Template
from tests.e2e.conftest import sign_up
from tests.fixtures.gateway import REPO, TEMPLATE_PATH

EVENTS = REPO / "tests" / "events"
# Each shipped event and the function it is for.
SHIPPED = {
    "apigw_v2_get_health.json": "AuthFunction",
    "apigw_v2_get_agents.json": "AgentsFunction",
    "apigw_v2_get_workflows.json": "RunsFunction",
    "sqs_step_batch.json": "WorkerFunction",
    "sqs_dead_letter_batch.json": "DeadLetterFunction",
    "schedule_sweep.json": "SweeperFunction",
    "schedule_retention.json": "RetentionFunction",
    "schedule_daily_audit.json": "SelfAuditFunction",
    "schedule_weekly_audit.json": "SelfAuditFunction",
    "schedule_cache_warm.json": "CacheWarmFunction",
}


def test_given_the_template_then_env_json_covers_every_declared_variable(tmp_path: Path) -> None:
    template = Template.load(TEMPLATE_PATH)
    values = local_values(host=DOCKER_HOST, data_dir=tmp_path, configured=Settings(), ports=Ports())
    env = sam_env(template, values)

    assert set(env) == {spec.logical_id for spec in template.functions}
    for spec in template.functions:
        variables = env[spec.logical_id]
        assert set(variables) == set(spec.environment), spec.logical_id
        assert all(isinstance(v, str) for v in variables.values())
        assert "127.0.0.1" not in json.dumps(variables)  # a container cannot reach loopback
        settings = Settings.from_environ(variables)
        assert settings.stage == "local"
        assert settings.database_url is not None
        assert settings.database_url.get_secret_value().startswith(
            f"postgresql://postgres@{DOCKER_HOST}:54322/"
        )
        assert settings.supabase_url == f"http://{DOCKER_HOST}:54321"
        assert settings.supabase_anon_key is not None
        assert settings.upstash_redis_rest_url == f"http://{DOCKER_HOST}:54330"
        assert settings.sqs_endpoint_url == f"http://{DOCKER_HOST}:54331"
        if "STEPS_QUEUE_URL" in spec.environment:
            assert settings.steps_queue_url == f"http://{DOCKER_HOST}:54331/123456789012/StepsQueue"
        # Unresolvable references (secrets) are empty: not configured, offline provider.
        assert settings.anthropic_api_key is None and settings.openai_api_key is None
    assert env["SelfAuditFunction"]["STEPS_DLQ_URL"].endswith("/StepsDLQ")


def test_given_the_command_then_env_json_is_written(tmp_path: Path) -> None:
    output = tmp_path / "env.json"
    code = main(
        ["sam-env", "--output", str(output), "--host", "10.0.2.2", "--data-dir", str(tmp_path)]
    )
    assert code == 0
    written = json.loads(output.read_text())
    assert written["WorkerFunction"]["SQS_ENDPOINT_URL"] == "http://10.0.2.2:54331"


def test_given_the_events_folder_then_every_event_is_shipped_for_a_function() -> None:
    assert {p.name for p in EVENTS.glob("*.json")} == set(SHIPPED)
    declared = {spec.logical_id for spec in Template.load(TEMPLATE_PATH).functions}
    assert set(SHIPPED.values()) <= declared


def _invoke(function: str, event: str, environment: dict[str, str]) -> Any:
    done = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "guildstack.devstack.cli", "invoke", function, "--event",
         str(EVENTS / event)],
        cwd=REPO, env=environment, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    start = 0 if out.startswith(("{\n", "[\n")) else max(out.rfind("\n{\n"), out.rfind("\n[\n")) + 1
    return json.loads(out[start:])


@pytest.fixture(scope="module")
def environment(stack_settings: Settings, stack_queues: SqsEndpoint) -> dict[str, str]:
    s = stack_settings
    assert s.database_url and s.supabase_anon_key and s.upstash_redis_rest_token
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GUILDSTACK_", "STEPS_"))},
        **stack_queues.environment(),
        "STAGE": "test",
        "DATABASE_URL": s.database_url.get_secret_value(),
        "SUPABASE_URL": s.supabase_url or "",
        "SUPABASE_ANON_KEY": s.supabase_anon_key.get_secret_value(),
        "UPSTASH_REDIS_REST_URL": s.upstash_redis_rest_url or "",
        "UPSTASH_REDIS_REST_TOKEN": s.upstash_redis_rest_token.get_secret_value(),
        "RATE_LIMIT_PREFIX": s.rate_limit_prefix,
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


@pytest.mark.parametrize("event", sorted(SHIPPED))
async def test_given_a_shipped_event_then_guildstack_invoke_runs_it(
    api: httpx.AsyncClient, environment: dict[str, str], event: str
) -> None:
    user = await sign_up(api, "sam")
    workspace = await api.post("/workspaces", json={"name": "Sam"}, headers=user.auth)
    env = {
        **environment,
        "GUILDSTACK_ACCESS_TOKEN": user.access_token,
        "GUILDSTACK_WORKSPACE_ID": workspace.json()["id"],
    }

    result = _invoke(SHIPPED[event], event, env)

    if event.startswith("apigw_"):
        assert result["statusCode"] == 200, result
        if event == "apigw_v2_get_agents.json":
            codes = {a["code"] for a in json.loads(result["body"])["items"]}
            assert codes and all(isinstance(c, str) for c in codes)
        if event == "apigw_v2_get_workflows.json":
            names = {t["name"] for t in json.loads(result["body"])["items"]}
            assert names and all(isinstance(n, str) for n in names)
    elif event.startswith("sqs_"):
        assert result == {"batchItemFailures": []}
    else:
        assert isinstance(result, dict) and result


def test_given_samconfig_then_local_commands_read_env_json_and_every_required_parameter() -> None:
    import tomllib

    import yaml

    from guildstack.devstack.template import _CfnLoader

    config = tomllib.loads((REPO / "samconfig.toml").read_text())["default"]
    document = yaml.load(TEMPLATE_PATH.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    required = {n for n, p in document["Parameters"].items() if "Default" not in p}
    for command in ("local_invoke", "local_start_api"):
        parameters = config[command]["parameters"]
        assert parameters["env_vars"] == "env.json"
        given = {pair.split("=", 1)[0] for pair in parameters["parameter_overrides"].split()}
        assert required <= given, required - given
    assert "env.json" in (REPO / ".gitignore").read_text().split()
