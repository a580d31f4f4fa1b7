"""Apply SQL migrations the way the Supabase CLI records them.

Versions go into `supabase_migrations.schema_migrations`, the table `supabase db push`
uses, so this runner and the CLI agree about what is applied. On a plain Postgres (the
devstack, CI) the local shim in `infra/supabase/local/` is applied first; on Supabase it
never is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

_MIGRATION_NAME = re.compile(r"^(\d{14})_([a-z0-9_]+)\.sql$")
# Any constant works: it only has to be the same for every runner.
_LOCK_KEY = 4_711_202_611


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path


def default_root() -> Path:
    """`infra/supabase` of the checkout this package lives in."""
    return Path(__file__).resolve().parents[4] / "infra" / "supabase"


def discover(root: Path) -> list[Migration]:
    migrations = []
    for path in sorted((root / "migrations").glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise ValueError(f"migration file name not <14 digits>_<name>.sql: {path.name}")
        migrations.append(Migration(match.group(1), match.group(2), path))
    return migrations


def is_supabase(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    row = conn.execute("select exists (select 1 from pg_roles where rolname = 'supabase_admin')")
    found = row.fetchone()
    return bool(found and found[0])


def apply_migrations(dsn: str, *, root: Path | None = None) -> list[str]:
    """Apply what is not applied yet, each file in its own transaction; return the versions."""
    root = root or default_root()
    applied_now: list[str] = []
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as conn:
        conn.execute("select pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            if not is_supabase(conn):
                _apply_local_shim(conn, root / "local")
            _ensure_history_table(conn)
            done = {
                str(r[0])
                for r in conn.execute("select version from supabase_migrations.schema_migrations")
            }
            for migration in discover(root):
                if migration.version in done:
                    continue
                statements = migration.path.read_text()
                with conn.transaction():
                    conn.execute(statements.encode())
                    conn.execute(
                        "insert into supabase_migrations.schema_migrations"
                        " (version, name, statements) values (%s, %s, %s)",
                        (migration.version, migration.name, [statements]),
                    )
                applied_now.append(migration.version)
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


def _apply_local_shim(conn: psycopg.Connection[tuple[object, ...]], local: Path) -> None:
    """The shim files are idempotent; they run every time so edits to them take effect."""
    for path in sorted(local.glob("*.sql")):
        with conn.transaction():
            conn.execute(path.read_text().encode())


def _ensure_history_table(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    conn.execute("create schema if not exists supabase_migrations")
    conn.execute(
        """
        create table if not exists supabase_migrations.schema_migrations (
            version text primary key,
            statements text[],
            name text
        )
        """
    )
