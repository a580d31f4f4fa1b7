"""The reference web console in Chromium (driven by puppeteer-core), served from an origin
of its own as a front end would be: sign-up with supabase-js, a workspace, a run whose
gated step is approved from the page while it streams in (EventSource with a ticket), a
streamed chat reply, a team discussion followed to its end, a password change, sign-out
and sign-in. Screenshots are kept in
`test-artifacts/console/`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from guildstack.devstack.console import ConsoleConfig, create_console_app
from guildstack.devstack.servers import ServerThread
from tests.fixtures.auth import AuthEndpoint

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "console"
BROWSER_SECONDS = 300


@pytest.fixture(scope="module")
def console_url(console_origin: str, gateway_url: str, auth_server: AuthEndpoint) -> Iterator[str]:
    config = ConsoleConfig(
        api=gateway_url,
        stream=gateway_url,
        supabaseUrl=auth_server.url,
        anonKey=auth_server.anon_key,
    )
    port = urlsplit(console_origin).port
    assert port is not None
    server = ServerThread(create_console_app(REPO / "web", config), port=port, name="console")
    server.start()
    yield f"{console_origin}/"
    server.stop()


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """puppeteer-core installed next to the driving script."""
    work = tmp_path_factory.mktemp("browser")
    for name in ("package.json", "console.mjs"):
        shutil.copy(REPO / "tests" / "browser" / name, work / name)
    npm = shutil.which("npm")
    assert npm is not None, "npm is needed (scripts/test installs Node.js when it is missing)"
    installed = subprocess.run(  # noqa: S603 - a fixed command
        [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=BROWSER_SECONDS,
        env={**os.environ, "PUPPETEER_SKIP_DOWNLOAD": "1"},
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    return work


def test_given_the_console_in_a_browser_then_a_user_goes_from_sign_up_to_chat(
    console_url: str, driver: Path
) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium is not None, "Chromium is needed (scripts/test installs it when missing)"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    result = subprocess.run(  # noqa: S603 - a fixed command
        ["node", "console.mjs"],
        cwd=driver,
        capture_output=True,
        text=True,
        timeout=BROWSER_SECONDS,
        env={
            **os.environ,
            "CONSOLE_URL": console_url,
            "CHROMIUM": chromium,
            "SCREENSHOTS": str(SCREENSHOTS),
        },
        check=False,
    )

    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["console_errors"] == []
    assert summary["signed_in_as"].startswith("browser-")
    assert summary["agents"] >= 5
    events = summary["run_events"]
    assert any("approval.requested" in e for e in events)
    assert any("approval.decided" in e for e in events)
    assert "run.finished succeeded" in events[-1]
    assert summary["chat_reply"].strip()
    assert summary["chat_meta"].startswith("routed by keywords")
    assert summary["usage"].startswith("Spent $")
    assert summary["discussion_messages"] >= 3
    assert summary["after_sign_out"] == "Signed out."
    assert summary["signed_in_again"] is True
    shots = sorted(p.name for p in SCREENSHOTS.glob("*.png"))
    assert shots == [
        "1-workspace.png",
        "2-run-waiting-for-approval.png",
        "3-run-succeeded.png",
        "4-chat.png",
        "5-discussion.png",
        "6-signed-in-again.png",
    ]
