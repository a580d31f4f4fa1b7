"""`PostgresWorkspaceStore`: workspaces, members and profiles, all under the caller's RLS."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.domain.errors import NotFound
from guildstack.domain.identity import (
    AccountKind,
    Member,
    Membership,
    Principal,
    Profile,
    Role,
    Workspace,
)
from guildstack.domain.paging import Page, PageRequest, page_of

_WORKSPACE_COLUMNS = "w.id, w.name, w.slug, w.monthly_budget_usd, w.created_at, m.role"
_MEMBER_QUERY = """
    select m.workspace_id, m.user_id, m.role, m.created_at, p.email, p.full_name
    from public.workspace_members m
    left join public.profiles p on p.id = m.user_id
"""


class PostgresWorkspaceStore:
    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def create(
        self, actor: Principal, name: str, slug: str, monthly_budget_usd: Decimal | None
    ) -> Workspace:
        async with self._db.transaction(actor.claims) as conn:
            cur = await conn.execute(
                "select id from public.create_workspace(%s, %s, %s)",
                (name, slug, monthly_budget_usd),
            )
            row = await cur.fetchone()
            assert row is not None  # noqa: S101 - the function always returns the row
            created = await _workspace(conn, actor, row["id"])
        assert created is not None  # noqa: S101 - the creator is its owner
        return created

    async def list_for(self, actor: Principal, page: PageRequest) -> Page[Workspace]:
        async with self._db.transaction(actor.claims) as conn:
            cur = await conn.execute(
                f"""
                select {_WORKSPACE_COLUMNS}
                from public.workspaces w
                join public.workspace_members m
                  on m.workspace_id = w.id and m.user_id = %(uid)s
                where (%(after_ts)s::timestamptz is null
                       or (w.created_at, w.id)
                          > (%(after_ts)s::timestamptz, %(after_id)s::uuid))
                order by w.created_at, w.id
                limit %(limit)s
                """,  # noqa: S608 - constant column list
                {"uid": actor.user_id, "limit": page.limit + 1, **_after(page)},
            )
            rows = await cur.fetchall()
        return page_of([_to_workspace(r) for r in rows], page.limit, lambda w: (w.created_at, w.id))

    async def get(self, actor: Principal, workspace_id: UUID) -> Workspace | None:
        async with self._db.transaction(actor.claims) as conn:
            return await _workspace(conn, actor, workspace_id)

    async def role_of(self, actor: Principal, workspace_id: UUID) -> Role | None:
        async with self._db.transaction(actor.claims) as conn:
            cur = await conn.execute(
                "select role from public.workspace_members"
                " where workspace_id = %s and user_id = %s",
                (workspace_id, actor.user_id),
            )
            row = await cur.fetchone()
        return Role(row["role"]) if row else None

    async def update(
        self,
        actor: Principal,
        workspace_id: UUID,
        *,
        name: str | None,
        monthly_budget_usd: Decimal | None,
    ) -> Workspace | None:
        async with self._db.transaction(actor.claims) as conn:
            cur = await conn.execute(
                """
                update public.workspaces
                set name = coalesce(%s, name),
                    monthly_budget_usd = coalesce(%s, monthly_budget_usd)
                where id = %s
                returning id
                """,
                (name, monthly_budget_usd, workspace_id),
            )
            if await cur.fetchone() is None:
                return None
            return await _workspace(conn, actor, workspace_id)

    async def members(
        self, actor: Principal, workspace_id: UUID, page: PageRequest
    ) -> Page[Member]:
        async with self._db.transaction(actor.claims) as conn:
            cur = await conn.execute(
                _MEMBER_QUERY
                + """
                where m.workspace_id = %(ws)s
                  and (%(after_ts)s::timestamptz is null
                       or (m.created_at, m.user_id)
                          > (%(after_ts)s::timestamptz, %(after_id)s::uuid))
                order by m.created_at, m.user_id
                limit %(limit)s
                """,
                {"ws": workspace_id, "limit": page.limit + 1, **_after(page)},
            )
            rows = await cur.fetchall()
        return page_of(
            [_to_member(r) for r in rows], page.limit, lambda m: (m.created_at, m.user_id)
        )

    async def member(self, actor: Principal, workspace_id: UUID, user_id: UUID) -> Member | None:
        async with self._db.transaction(actor.claims) as conn:
            cur = await conn.execute(
                _MEMBER_QUERY + " where m.workspace_id = %s and m.user_id = %s",
                (workspace_id, user_id),
            )
            row = await cur.fetchone()
        return _to_member(row) if row else None

    async def add_member(
        self, actor: Principal, workspace_id: UUID, email: str, role: Role
    ) -> Member:
        async with self._db.transaction(actor.claims) as conn:
            cur = await conn.execute(
                "select (public.add_workspace_member(%s, %s, %s)).user_id as user_id",
                (workspace_id, email, role.value),
            )
            row = await cur.fetchone()
            if row is None or row["user_id"] is None:
                raise NotFound("No account has that email address.")
            cur = await conn.execute(
                _MEMBER_QUERY + " where m.workspace_id = %s and m.user_id = %s",
                (workspace_id, row["user_id"]),
            )
            added = await cur.fetchone()
        assert added is not None  # noqa: S101 - just inserted in this transaction
        return _to_member(added)

    async def set_role(
        self, actor: Principal, workspace_id: UUID, user_id: UUID, role: Role
    ) -> Member | None:
        async with self._db.transaction(actor.claims) as conn:
            cur = await conn.execute(
                """
                update public.workspace_members set role = %s
                where workspace_id = %s and user_id = %s
                returning user_id
                """,
                (role.value, workspace_id, user_id),
            )
            if await cur.fetchone() is None:
                return None
            cur = await conn.execute(
                _MEMBER_QUERY + " where m.workspace_id = %s and m.user_id = %s",
                (workspace_id, user_id),
            )
            row = await cur.fetchone()
        return _to_member(row) if row else None

    async def remove_member(self, actor: Principal, workspace_id: UUID, user_id: UUID) -> bool:
        async with self._db.transaction(actor.claims) as conn:
            cur = await conn.execute(
                "delete from public.workspace_members where workspace_id = %s and user_id = %s",
                (workspace_id, user_id),
            )
            return bool(cur.rowcount == 1)

    async def profile(self, actor: Principal) -> Profile | None:
        async with self._db.transaction(actor.claims) as conn:
            cur = await conn.execute(
                """
                select id, email, full_name, account_kind, weekly_image_limit, last_active
                from public.profiles where id = %s
                """,
                (actor.user_id,),
            )
            row = await cur.fetchone()
        if row is None:
            return None
        return Profile(
            id=row["id"],
            email=row["email"],
            full_name=row["full_name"],
            account_kind=AccountKind(row["account_kind"]),
            weekly_image_limit=row["weekly_image_limit"],
            last_active=row["last_active"],
        )

    async def memberships(self, actor: Principal) -> list[Membership]:
        async with self._db.transaction(actor.claims) as conn:
            cur = await conn.execute(
                """
                select w.id, w.name, m.role
                from public.workspace_members m
                join public.workspaces w on w.id = m.workspace_id
                where m.user_id = %s
                order by w.created_at, w.id
                """,
                (actor.user_id,),
            )
            rows = await cur.fetchall()
        return [
            Membership(workspace_id=r["id"], name=r["name"], role=Role(r["role"])) for r in rows
        ]

    async def touch(self, actor: Principal) -> None:
        async with self._db.transaction(actor.claims) as conn:
            await conn.execute(
                "update public.profiles set last_active = now() where id = %s", (actor.user_id,)
            )


async def _workspace(conn: Any, actor: Principal, workspace_id: UUID) -> Workspace | None:
    cur = await conn.execute(
        f"""
        select {_WORKSPACE_COLUMNS}
        from public.workspaces w
        join public.workspace_members m on m.workspace_id = w.id and m.user_id = %s
        where w.id = %s
        """,  # noqa: S608 - constant column list
        (actor.user_id, workspace_id),
    )
    row = await cur.fetchone()
    return _to_workspace(row) if row else None


def _to_workspace(row: dict[str, Any]) -> Workspace:
    return Workspace(
        id=row["id"],
        name=row["name"],
        slug=row["slug"],
        monthly_budget_usd=row["monthly_budget_usd"],
        created_at=row["created_at"],
        role=Role(row["role"]) if row.get("role") else None,
    )


def _to_member(row: dict[str, Any]) -> Member:
    return Member(
        workspace_id=row["workspace_id"],
        user_id=row["user_id"],
        email=row["email"],
        full_name=row["full_name"],
        role=Role(row["role"]),
        created_at=row["created_at"],
    )


def _after(page: PageRequest) -> dict[str, Any]:
    ts, ident = page.after if page.after else (None, None)
    return {"after_ts": ts, "after_id": ident}
