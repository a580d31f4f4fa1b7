"""`PostgresWorkspaceRepository`: workspaces, members and profiles, under the caller's RLS."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from guildstack.adapters.postgres.database import Connection, returned_row
from guildstack.adapters.postgres.paging import fetch_page
from guildstack.domain.errors import NotFound
from guildstack.domain.identity import (
    AccountKind,
    Invite,
    Member,
    Membership,
    Principal,
    Profile,
    Role,
    Workspace,
)
from guildstack.domain.paging import Page, PageRequest

_WORKSPACE_COLUMNS = (
    "w.id, w.name, w.slug, w.monthly_budget_usd, w.created_at, m.role,"
    " w.conversation_retention_days"
)
_MEMBER_QUERY = """
    select m.workspace_id, m.user_id, m.role, m.account_kind, m.created_at, p.email, p.full_name
    from public.workspace_members m
    left join public.profiles p on p.id = m.user_id
"""


class PostgresWorkspaceRepository:
    def __init__(self, conn: Connection, actor: Principal | None) -> None:
        self._conn = conn
        self._actor = actor

    @property
    def _me(self) -> UUID:
        if self._actor is None:
            raise RuntimeError("this read needs a transaction acting for a signed-in user")
        return self._actor.user_id

    async def role_of(self, workspace_id: UUID, user_id: UUID | None = None) -> Role | None:
        cur = await self._conn.execute(
            "select role from public.workspace_members where workspace_id = %s and user_id = %s",
            (workspace_id, user_id or self._me),
        )
        row = await cur.fetchone()
        return Role(row["role"]) if row else None

    async def create(self, name: str, slug: str, monthly_budget_usd: Decimal | None) -> Workspace:
        cur = await self._conn.execute(
            "select id from public.create_workspace(%s, %s, %s)", (name, slug, monthly_budget_usd)
        )
        row = await returned_row(cur)
        created = await self.get(row["id"])
        if created is None:
            raise NotFound("The new workspace is not visible to its creator.")
        return created

    async def list_mine(self, page: PageRequest) -> Page[Workspace]:
        return await fetch_page(
            self._conn,
            f"select {_WORKSPACE_COLUMNS} from public.workspaces w"  # noqa: S608 - constant columns
            " join public.workspace_members m on m.workspace_id = w.id and m.user_id = %(uid)s"
            " where true",
            {"uid": self._me},
            page,
            _to_workspace,
            lambda w: (w.created_at, w.id),
            key=("w.created_at", "w.id"),
            newest_first=False,
        )

    async def get(self, workspace_id: UUID) -> Workspace | None:
        cur = await self._conn.execute(
            f"select {_WORKSPACE_COLUMNS} from public.workspaces w"  # noqa: S608 - constant columns
            " join public.workspace_members m on m.workspace_id = w.id and m.user_id = %s"
            " where w.id = %s",
            (self._me, workspace_id),
        )
        row = await cur.fetchone()
        return _to_workspace(row) if row else None

    async def update(
        self,
        workspace_id: UUID,
        *,
        name: str | None,
        monthly_budget_usd: Decimal | None,
        conversation_retention_days: int | None = None,
    ) -> Workspace | None:
        cur = await self._conn.execute(
            "update public.workspaces set name = coalesce(%(name)s, name),"
            " monthly_budget_usd = coalesce(%(budget)s, monthly_budget_usd),"
            " conversation_retention_days = case when %(days)s::int is null"
            "   then conversation_retention_days else nullif(%(days)s::int, 0) end"
            " where id = %(ws)s returning id",
            {
                "name": name,
                "budget": monthly_budget_usd,
                "days": conversation_retention_days,
                "ws": workspace_id,
            },
        )
        if await cur.fetchone() is None:
            return None
        return await self.get(workspace_id)

    async def members(self, workspace_id: UUID, page: PageRequest) -> Page[Member]:
        return await fetch_page(
            self._conn,
            _MEMBER_QUERY + " where m.workspace_id = %(ws)s",
            {"ws": workspace_id},
            page,
            _to_member,
            lambda m: (m.created_at, m.user_id),
            key=("m.created_at", "m.user_id"),
            newest_first=False,
        )

    async def member(self, workspace_id: UUID, user_id: UUID) -> Member | None:
        cur = await self._conn.execute(
            _MEMBER_QUERY + " where m.workspace_id = %s and m.user_id = %s",
            (workspace_id, user_id),
        )
        row = await cur.fetchone()
        return _to_member(row) if row else None

    async def invite(self, workspace_id: UUID, email: str, role: Role) -> Invite:
        cur = await self._conn.execute(
            "select workspace_id, email, role, created_at, expires_at"
            " from public.invite_workspace_member(%s, %s, %s)",
            (workspace_id, email, role.value),
        )
        row = await returned_row(cur)
        return Invite(
            workspace_id=row["workspace_id"],
            email=row["email"],
            role=Role(row["role"]),
            created_at=row["created_at"],
            expires_at=row["expires_at"],
        )

    async def accept_invites(self) -> int:
        cur = await self._conn.execute("select public.accept_my_invites() as joined")
        return int((await returned_row(cur))["joined"])

    async def set_role(self, workspace_id: UUID, user_id: UUID, role: Role) -> Member | None:
        cur = await self._conn.execute(
            "update public.workspace_members set role = %s"
            " where workspace_id = %s and user_id = %s returning user_id",
            (role.value, workspace_id, user_id),
        )
        if await cur.fetchone() is None:
            return None
        return await self.member(workspace_id, user_id)

    async def set_account_kind(
        self, workspace_id: UUID, user_id: UUID, kind: AccountKind
    ) -> Member | None:
        cur = await self._conn.execute(
            "update public.workspace_members set account_kind = %s"
            " where workspace_id = %s and user_id = %s returning user_id",
            (kind.value, workspace_id, user_id),
        )
        if await cur.fetchone() is None:
            return None
        return await self.member(workspace_id, user_id)

    async def remove_member(self, workspace_id: UUID, user_id: UUID) -> bool:
        cur = await self._conn.execute(
            "delete from public.workspace_members where workspace_id = %s and user_id = %s",
            (workspace_id, user_id),
        )
        return bool(cur.rowcount == 1)

    async def profile(self) -> Profile | None:
        cur = await self._conn.execute(
            "select id, email, full_name, account_kind, weekly_image_limit, last_active"
            " from public.profiles where id = %s",
            (self._me,),
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

    async def memberships(self) -> list[Membership]:
        cur = await self._conn.execute(
            "select w.id, w.name, m.role from public.workspace_members m"
            " join public.workspaces w on w.id = m.workspace_id"
            " where m.user_id = %s order by w.created_at, w.id",
            (self._me,),
        )
        return [
            Membership(workspace_id=r["id"], name=r["name"], role=Role(r["role"]))
            for r in await cur.fetchall()
        ]

    async def touch(self) -> None:
        await self._conn.execute(
            "update public.profiles set last_active = now() where id = %s", (self._me,)
        )


def _to_workspace(row: dict[str, Any]) -> Workspace:
    return Workspace(
        id=row["id"],
        name=row["name"],
        slug=row["slug"],
        monthly_budget_usd=row["monthly_budget_usd"],
        created_at=row["created_at"],
        role=Role(row["role"]) if row.get("role") else None,
        conversation_retention_days=row.get("conversation_retention_days"),
    )


def _to_member(row: dict[str, Any]) -> Member:
    return Member(
        workspace_id=row["workspace_id"],
        user_id=row["user_id"],
        email=row["email"],
        full_name=row["full_name"],
        role=Role(row["role"]),
        created_at=row["created_at"],
        account_kind=AccountKind(row["account_kind"]),
    )
