"""The API document generates a working typed client: openapi-typescript turns it into
types, `tsc --strict` checks a small front-end program against them, and the program's
calls succeed against the running stack. A program that leaves out a required header
does not compile."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from guildstack.devstack.openapi import build_document, render
from guildstack.devstack.template import Template

REPO = Path(__file__).resolve().parents[2]
SOURCES = REPO / "tests" / "typescript"
NPM_SECONDS = 300


def _run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed commands
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=NPM_SECONDS,
        env={**os.environ, **env},
        check=False,
    )


def _must(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def client_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The client program with its dependencies installed and the generated types."""
    work = tmp_path_factory.mktemp("typescript")
    for name in ("package.json", "tsconfig.json", "client.ts"):
        shutil.copy(SOURCES / name, work / name)
    npm = shutil.which("npm")
    assert npm is not None, "npm is needed (scripts/test installs Node.js when it is missing)"
    _must(_run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], work))
    document = build_document(Template.load(REPO / "template.yaml"))
    (work / "openapi.json").write_text(render(document))
    # Defaults do not make request fields required (openapi-typescript's default does).
    generate = ["openapi.json", "-o", "api.d.ts", "--default-non-nullable", "false"]
    _must(_run([str(work / "node_modules/.bin/openapi-typescript"), *generate], work))
    return work


def test_the_generated_client_compiles_and_its_calls_succeed(
    client_dir: Path, gateway_url: str
) -> None:
    _must(_run([str(client_dir / "node_modules/.bin/tsc"), "-p", "."], client_dir))

    output = _must(_run(["node", "out/client.js"], client_dir, GATEWAY_URL=gateway_url))

    summary = json.loads(output.strip().splitlines()[-1])
    assert summary["agents"] >= 1
    assert summary["run_status"] in {"queued", "running", "succeeded"}
    assert summary["steps"] == ["write"]
    assert summary["missing"] == {"status": 404, "title": "Not Found"}


def test_given_a_call_without_the_workspace_header_then_it_does_not_compile(
    client_dir: Path,
) -> None:
    wrong = client_dir / "wrong"
    wrong.mkdir(exist_ok=True)
    (wrong / "wrong.ts").write_text(
        'import createClient from "openapi-fetch";\n'
        'import type { paths } from "../api.js";\n'
        "const api = createClient<paths>({});\n"
        'await api.GET("/runs/{run_id}", { params: { path: { run_id: "x" } } });\n'
    )
    config = json.loads((client_dir / "tsconfig.json").read_text())
    config["files"] = ["wrong.ts"]
    config["compilerOptions"]["noEmit"] = True
    (wrong / "tsconfig.json").write_text(json.dumps(config))

    checked = _run([str(client_dir / "node_modules/.bin/tsc"), "-p", "."], wrong)

    assert checked.returncode != 0
    assert "X-Workspace-Id" in checked.stdout


async def test_the_gateway_serves_the_document_and_a_page(gateway_url: str) -> None:
    async with httpx.AsyncClient(base_url=gateway_url) as http:
        served = await http.get("/openapi.json")
        page = await http.get("/docs")

    assert served.status_code == 200
    assert served.json() == build_document(Template.load(REPO / "template.yaml"))
    assert page.status_code == 200 and "/runs/{run_id}/stream" in page.text
