"""`guildstack` command: `dev` (the whole local system), `migrate`, `invoke`, `sam-env`."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import warnings
from pathlib import Path


def repo_root() -> Path:
    """The checkout this package lives in (shared/guildstack/devstack → repo)."""
    return Path(__file__).resolve().parents[3]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="guildstack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="run Postgres, Redis, auth and every function locally")
    dev.add_argument("--port", type=int, default=8787, help="gateway port (default 8787)")
    dev.add_argument("--data-dir", type=Path, default=None, help="default: <repo>/.devstack")
    dev.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("GUILDSTACK_DEV_WORKERS", "0")),
        help="run each HTTP function in its own uvicorn with this many processes (as Lambda"
        " runs each function apart); 0 (default): every app in the gateway's process",
    )

    migrate = commands.add_parser("migrate", help="apply SQL migrations to a database")
    migrate.add_argument("--database-url", required=False, default=None)

    invoke = commands.add_parser("invoke", help="call a function's Lambda handler in-process")
    invoke.add_argument("logical_id")
    invoke.add_argument("--event", type=Path, required=True)
    invoke.add_argument("--template", type=Path, default=None)

    openapi = commands.add_parser("openapi", help="write the whole API's OpenAPI document")
    openapi.add_argument("--out", type=Path, default=None, help="default: docs/openapi.json")
    openapi.add_argument(
        "--check", action="store_true", help="fail if the file differs from the code"
    )
    sam_env = commands.add_parser(
        "sam-env", help="write env.json for `sam local ... --env-vars` (the devstack's endpoints)"
    )
    sam_env.add_argument("--output", type=Path, default=Path("env.json"))
    sam_env.add_argument(
        "--host",
        default="host.docker.internal",
        help="the devstack's address from a container (127.0.0.1 with --docker-network host)",
    )
    sam_env.add_argument("--data-dir", type=Path, default=None, help="default: <repo>/.devstack")

    args = parser.parse_args(argv)
    # The repository root plays Lambda's /var/task: function packages import from it.
    if str(repo_root()) not in sys.path:
        sys.path.insert(0, str(repo_root()))
    # pgserver's lock-file location warning is noise on machines without XDG_RUNTIME_DIR.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    if args.command == "dev":
        from guildstack.devstack.stack import run_forever

        return run_forever(gateway_port=args.port, data_dir=args.data_dir, workers=args.workers)
    if args.command == "migrate":
        return _migrate(args.database_url)
    if args.command == "openapi":
        return _openapi(args.out or repo_root() / "docs" / "openapi.json", check=args.check)
    if args.command == "sam-env":
        from guildstack.devstack.sam_env import write_sam_env

        env = write_sam_env(repo_root(), args.output, host=args.host, data_dir=args.data_dir)
        print(f"wrote {args.output} for {len(env)} functions")  # noqa: T201
        return 0
    return _invoke(args.logical_id, args.event, args.template)


def _openapi(out: Path, *, check: bool) -> int:
    from guildstack.devstack.openapi import build_document, render
    from guildstack.devstack.template import Template

    text = render(build_document(Template.load(repo_root() / "template.yaml")))
    if check:
        if not out.exists() or out.read_text() != text:
            print(f"{out} is out of date: run `guildstack openapi`", file=sys.stderr)  # noqa: T201
            return 1
        return 0
    out.write_text(text)
    print(f"wrote {out}")  # noqa: T201
    return 0


def _migrate(database_url: str | None) -> int:
    from guildstack.adapters.postgres.migrate import apply_migrations
    from guildstack.config import get_settings

    url = database_url
    if url is None:
        configured = get_settings().database_url
        url = configured.get_secret_value() if configured else None
    if not url:
        print("no database: pass --database-url or set DATABASE_URL", file=sys.stderr)  # noqa: T201
        return 2
    applied = apply_migrations(url)
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none'}")  # noqa: T201
    return 0


PLACEHOLDER = re.compile(r"\$\{(GUILDSTACK_[A-Z0-9_]+)\}")


def with_placeholders(text: str) -> str:
    """`${GUILDSTACK_...}` in an event replaced by that environment variable (an access
    token, a workspace id), so a shipped event can make an authenticated request."""
    return PLACEHOLDER.sub(lambda m: os.environ.get(m.group(1), m.group(0)), text)


def _invoke(logical_id: str, event_file: Path, template_file: Path | None) -> int:
    from guildstack.devstack.invoke import invoke
    from guildstack.devstack.template import Template

    template = Template.load(template_file or repo_root() / "template.yaml")
    event = json.loads(with_placeholders(event_file.read_text()))
    result = invoke(template, logical_id, event)
    print(json.dumps(result, indent=2, default=str))  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
