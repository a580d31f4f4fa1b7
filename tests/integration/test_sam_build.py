"""The deployable bundle: `sam build` succeeds, the built AuthFunction answers /health and
the built AgentsFunction, RunsFunction and ToolsFunction, each on its own package, find
the catalog data the layer ships.

Built for this machine's architecture (so the built wheels can be imported here) and run
in a fresh Python 3.12 process, the Lambda runtime's version, against real Postgres.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.bundle import BuildFailed, sam_build

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


# Run with the function's package name as argv[1].
CATALOG = """
import importlib, sys
importlib.import_module(f"functions.{sys.argv[1]}.handler")
from guildstack.agents.catalog import load_agents, load_model_book
from guildstack.agents.workflows import load_workflows
from guildstack.config import get_settings
directory = get_settings().catalog_dir
agents = load_agents(directory / "agents.yaml")
book = load_model_book(directory / "models.yaml")
workflows = load_workflows(directory / "workflows.yaml")
print(directory, len(agents), len(book.tiers), len(workflows))
"""


def test_given_the_template_when_built_then_the_handler_answers_health(
    tmp_path: Path, database_url: str
) -> None:
    try:
        bundle = sam_build(tmp_path / "build")
    except BuildFailed as failure:
        pytest.fail(str(failure))
    build_dir, layer, function = bundle.build_dir, bundle.layer, bundle.function("AuthFunction")
    assert (layer / "guildstack" / "__init__.py").exists()
    assert not (layer / "guildstack" / "devstack").exists(), "the devstack must not ship"
    shipped = sorted(p.name for p in (function / "functions").iterdir())
    assert shipped == ["__init__.py", "__pycache__", "auth"]
    # Lambda cannot write bytecode: the bundle carries it, for 3.12, valid whatever the mtimes.
    for compiled in (
        layer / "guildstack" / "__pycache__" / "config.cpython-312.pyc",
        layer / "fastapi" / "__pycache__" / "routing.cpython-312.pyc",
        function / "functions" / "auth" / "__pycache__" / "app.cpython-312.pyc",
    ):
        assert compiled.exists(), compiled
        flags = int.from_bytes(compiled.read_bytes()[4:8], "little")
        assert flags == 0b01, f"{compiled.name} is not an unchecked-hash pyc"

    run_env = {
        "PYTHONPATH": f"{layer}:{function}",
        "STAGE": "test",
        "DATABASE_URL": database_url,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_LAMBDA_FUNCTION_NAME": "AuthFunction",
        "PYTHONDONTWRITEBYTECODE": "1",  # read-only, as in Lambda
    }
    result = subprocess.run(
        [bundle.python, "-s", "-c", SMOKE, str(EVENT)],
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

    # Each function's bundle holds its own package only: it must import nothing else's.
    split = [("AgentsFunction", "agents"), ("RunsFunction", "runs"), ("ToolsFunction", "tools")]
    for logical_id, package in split:
        built = bundle.function(logical_id)
        shipped = sorted(p.name for p in (built / "functions").iterdir())
        assert shipped == ["__init__.py", "__pycache__", package], logical_id
        catalog = subprocess.run(
            [bundle.python, "-s", "-c", CATALOG, package],
            env={
                **run_env,
                "PYTHONPATH": f"{layer}:{built}",
                "AWS_LAMBDA_FUNCTION_NAME": logical_id,
            },
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert catalog.returncode == 0, catalog.stderr[-3000:]
        directory, agents, tiers, workflows = catalog.stdout.split()
        assert Path(directory) == build_dir / "SharedLayer" / "infra" / "catalog"
        assert int(agents) >= 40 and int(tiers) == 3 and int(workflows) >= 1
