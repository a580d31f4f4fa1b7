"""The migration runner: idempotent, recorded like the Supabase CLI, shim only off Supabase."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from guildstack.adapters.postgres.migrate import (
    apply_migrations,
    default_root,
    discover,
    is_supabase,
)


@pytest.fixture
def scratch_database(postgres_server_url: str) -> Iterator[str]:
    name = f"gs_scratch_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    yield postgres_server_url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


def test_given_a_fresh_database_when_migrating_twice_then_the_second_run_applies_nothing(
    scratch_database: str,
) -> None:
    expected = [m.version for m in discover(default_root())]
    assert apply_migrations(scratch_database) == expected
    assert apply_migrations(scratch_database) == []
    with psycopg.connect(scratch_database) as conn:
        recorded = [
            r[0]
            for r in conn.execute(
                "select version from supabase_migrations.schema_migrations order by version"
            )
        ]
    assert recorded == expected


def test_given_a_supabase_database_then_the_local_shim_is_not_applied(
    scratch_database: str,
) -> None:
    with psycopg.connect(scratch_database, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_roles where rolname = 'supabase_admin'").fetchone()
        if exists is None:
            conn.execute("create role supabase_admin nologin")
    root = default_root()
    try:
        with psycopg.connect(scratch_database) as conn:
            assert is_supabase(conn)
        # With the shim skipped, the migrations cannot find auth.users: proof it was skipped.
        with pytest.raises(psycopg.Error):
            apply_migrations(scratch_database, root=root)
    finally:
        with psycopg.connect(scratch_database, autocommit=True) as conn:
            conn.execute("drop role if exists supabase_admin")
