"""The deployable bundle: `sam build` succeeds, the built AuthFunction answers /health and
the built AgentsFunction finds the catalog data the layer ships.

Built for this machine's architecture (so the built wheels can be imported here) and run
in a fresh Python 3.12 process, the Lambda runtime's version, against real Postgres.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EVENT = REPO / "tests" / "events" / "apigw_v2_get_health.json"

SMOKE = """
import json, sys
from functions.auth.handler import handler

class Context:
    function_name = "AuthFunction"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:AuthFunction"
    aws_request_id = "smoke-test"

print(json.dumps(handler(json.load(open(sys.argv[1])), Context())))
"""


CATALOG = """
from functions.agents.handler import handler
from guildstack.agents.catalog import load_agents, load_model_book
from guildstack.config import get_settings
directory = get_settings().catalog_dir
agents = load_agents(directory / "agents.yaml")
book = load_model_book(directory / "models.yaml")
print(directory, len(agents), len(book.tiers))
"""


def _python312(env: dict[str, str]) -> str:
    """The real 3.12 interpreter (not a pyenv shim, which needs pyenv's environment)."""
    found = shutil.which("python3.12", path=env.get("PATH"))
    if found is None:
        pytest.fail(
            "python3.12 is required for sam build (runtime python3.12) and was not found on PATH;"
            " with pyenv, set PYENV_VERSION to include a 3.12 version"
        )
    probe = subprocess.run(
        [found, "-c", "import sys; print(sys.executable)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return probe.stdout.strip()


def _build_env() -> dict[str, str]:
    env = dict(os.environ)
    if shutil.which("pyenv"):
        # pyenv machines: make python3.12 resolvable beside the current version.
        versions = subprocess.run(
            ["pyenv", "versions", "--bare"], capture_output=True, text=True, check=True
        ).stdout.split()
        active = (
            env.get("PYENV_VERSION")
            or subprocess.run(
                ["pyenv", "version-name"], capture_output=True, text=True, check=False
            ).stdout.strip()
        )
        current = [v for v in active.split(":") if v and v != "system"]
        wanted = current + [v for v in versions if v.startswith("3.12.") and v not in current]
        env["PYENV_VERSION"] = ":".join(wanted)
    uv = shutil.which("uv") or env.get("UV")
    if uv:
        env["UV"] = uv
    env["GUILDSTACK_BUILD_ARCH"] = (
        "x86_64" if platform.machine() in ("x86_64", "AMD64") else "arm64"
    )
    env["SAM_CLI_TELEMETRY"] = "0"
    return env


def test_given_the_template_when_built_then_the_handler_answers_health(
    tmp_path: Path, database_url: str
) -> None:
    env = _build_env()
    build_dir = tmp_path / "build"
    sam = Path(sys.executable).parent / "sam"
    built = subprocess.run(
        [
            str(sam), "build", "--build-in-source", "--build-dir", str(build_dir),
            "--parameter-overrides",
            f"Architecture={env['GUILDSTACK_BUILD_ARCH']}",
            "SupabaseUrl=http://127.0.0.1:9", "SecretsArn=unused", "UpstashRedisRestUrl=unused",
        ],
        cwd=REPO, env=env, check=False, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert built.returncode == 0, (built.stdout + built.stderr)[-4000:]
    layer, function = build_dir / "SharedLayer" / "python", build_dir / "AuthFunction"
    assert (layer / "guildstack" / "__init__.py").exists()
    assert not (layer / "guildstack" / "devstack").exists(), "the devstack must not ship"
    assert sorted(p.name for p in (function / "functions").iterdir()) == ["__init__.py", "auth"]

    run_env = {
        "PYTHONPATH": f"{layer}:{function}",
        "STAGE": "test",
        "DATABASE_URL": database_url,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_LAMBDA_FUNCTION_NAME": "AuthFunction",
    }
    result = subprocess.run(
        [_python312(env), "-s", "-c", SMOKE, str(EVENT)],
        env=run_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    response = json.loads(result.stdout.strip().splitlines()[-1])
    assert response["statusCode"] == 200, response
    body = json.loads(response["body"])
    assert body["checks"]["postgres"] == "ok"

    agents_function = build_dir / "AgentsFunction"
    catalog = subprocess.run(
        [_python312(env), "-s", "-c", CATALOG],
        env={**run_env, "PYTHONPATH": f"{layer}:{agents_function}"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert catalog.returncode == 0, catalog.stderr[-3000:]
    directory, agents, tiers = catalog.stdout.split()
    assert Path(directory) == build_dir / "SharedLayer" / "infra" / "catalog"
    assert int(agents) >= 40 and int(tiers) == 3
