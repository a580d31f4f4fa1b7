"""What the benchmarks share: a throwaway migrated database on the embedded PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from guildstack.adapters.postgres.migrate import apply_migrations
from guildstack.devstack.postgres import EmbeddedPostgres

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def bench_database() -> Iterator[str]:
    """The URL of a fresh database with every migration applied; dropped afterwards."""
    server = EmbeddedPostgres(REPO / ".devstack" / "bench-postgres", durable=False)
    server.start()
    name = f"gs_bench_{uuid.uuid4().hex[:8]}"
    url = server.create_database(name)
    try:
        apply_migrations(url)
        yield url
    finally:
        server.drop_database(name)
        server.stop()
