"""The reference web console (`web/`), served as static files with its `config.js`.

The console is a thin client of the public API: this only tells it where the API, the
Stream function and Supabase Auth are, and which anon key to use.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

CONSOLE_PATH = "/console"


@dataclass(frozen=True)
class ConsoleConfig:
    api: str  # the API gateway's base URL ("" for the page's own origin)
    stream: str  # the Stream function's base URL
    supabaseUrl: str  # noqa: N815 - the name the page reads
    anonKey: str  # noqa: N815


def create_console_app(web_dir: Path, config: ConsoleConfig) -> Starlette:
    script = f"window.GUILDSTACK_CONFIG = {json.dumps(asdict(config))};\n"

    async def config_js(request: Request) -> Response:
        return Response(script, media_type="text/javascript", headers={"Cache-Control": "no-store"})

    return Starlette(
        routes=[
            Route("/config.js", config_js),
            Mount("/", StaticFiles(directory=web_dir, html=True)),
        ]
    )
