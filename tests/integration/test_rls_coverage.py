"""Every table in `public` has row-level security enabled, forced, and at least one policy."""

from __future__ import annotations

import psycopg


def test_given_the_migrated_schema_then_every_public_table_has_forced_rls_and_a_policy(
    database_url: str,
) -> None:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            """
            select c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   (select count(*) from pg_policy p where p.polrelid = c.oid) as policies
            from pg_class c
            join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = 'public' and c.relkind in ('r', 'p')
            order by c.relname
            """
        ).fetchall()
    assert rows, "no tables in public: the migrations did not run"
    offenders = [
        f"{name} (enabled={enabled}, forced={forced}, policies={policies})"
        for name, enabled, forced, policies in rows
        if not (enabled and forced and policies > 0)
    ]
    assert offenders == [], "tables without full RLS: " + ", ".join(offenders)


def test_given_the_schema_then_anon_holds_no_table_privileges_in_public(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        grants = conn.execute(
            """
            select table_name, privilege_type from information_schema.role_table_grants
            where table_schema = 'public' and grantee in ('anon', 'PUBLIC')
            """
        ).fetchall()
    assert grants == []


def test_given_views_in_public_then_each_is_security_invoker(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        unsafe = conn.execute(
            """
            select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = 'public' and c.relkind = 'v'
              and not coalesce('security_invoker=true' = any(c.reloptions), false)
            """
        ).fetchall()
    assert unsafe == []
