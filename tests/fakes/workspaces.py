"""An in-memory WorkspaceStore with the same visibility rules RLS applies."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from guildstack.domain.errors import Conflict, NotFound
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


@dataclass
class InMemoryWorkspaceStore:
    workspaces: dict[uuid.UUID, Workspace] = field(default_factory=dict)
    members_by_ws: dict[uuid.UUID, dict[uuid.UUID, Member]] = field(default_factory=dict)
    emails: dict[str, uuid.UUID] = field(default_factory=dict)

    def register(self, email: str) -> uuid.UUID:
        user_id = uuid.uuid4()
        self.emails[email] = user_id
        return user_id

    def _visible(self, actor: Principal, workspace_id: uuid.UUID) -> bool:
        return actor.user_id in self.members_by_ws.get(workspace_id, {})

    def _with_role(self, actor: Principal, ws: Workspace) -> Workspace:
        role = self.members_by_ws[ws.id][actor.user_id].role
        return Workspace(ws.id, ws.name, ws.slug, ws.monthly_budget_usd, ws.created_at, role)

    async def create(
        self, actor: Principal, name: str, slug: str, monthly_budget_usd: Decimal | None
    ) -> Workspace:
        ws = Workspace(
            uuid.uuid4(), name, slug, monthly_budget_usd or Decimal("10"), datetime.now(UTC)
        )
        self.workspaces[ws.id] = ws
        self.members_by_ws[ws.id] = {
            actor.user_id: Member(
                ws.id, actor.user_id, actor.email, None, Role.OWNER, datetime.now(UTC)
            )
        }
        return self._with_role(actor, ws)

    async def list_for(self, actor: Principal, page: PageRequest) -> Page[Workspace]:
        mine = [
            self._with_role(actor, ws)
            for ws in sorted(self.workspaces.values(), key=lambda w: (w.created_at, w.id))
            if self._visible(actor, ws.id)
            and (page.after is None or (ws.created_at, ws.id) > page.after)
        ]
        return page_of(mine[: page.limit + 1], page.limit, lambda w: (w.created_at, w.id))

    async def get(self, actor: Principal, workspace_id: uuid.UUID) -> Workspace | None:
        if not self._visible(actor, workspace_id):
            return None
        return self._with_role(actor, self.workspaces[workspace_id])

    async def role_of(self, actor: Principal, workspace_id: uuid.UUID) -> Role | None:
        member = self.members_by_ws.get(workspace_id, {}).get(actor.user_id)
        return member.role if member else None

    async def update(
        self,
        actor: Principal,
        workspace_id: uuid.UUID,
        *,
        name: str | None,
        monthly_budget_usd: Decimal | None,
    ) -> Workspace | None:
        ws = self.workspaces.get(workspace_id)
        if ws is None or not self._visible(actor, workspace_id):
            return None
        ws = Workspace(
            ws.id,
            name or ws.name,
            ws.slug,
            monthly_budget_usd if monthly_budget_usd is not None else ws.monthly_budget_usd,
            ws.created_at,
        )
        self.workspaces[ws.id] = ws
        return self._with_role(actor, ws)

    async def members(
        self, actor: Principal, workspace_id: uuid.UUID, page: PageRequest
    ) -> Page[Member]:
        if not self._visible(actor, workspace_id):
            return Page([], None)
        rows = sorted(
            self.members_by_ws[workspace_id].values(), key=lambda m: (m.created_at, m.user_id)
        )
        rows = [m for m in rows if page.after is None or (m.created_at, m.user_id) > page.after]
        return page_of(rows[: page.limit + 1], page.limit, lambda m: (m.created_at, m.user_id))

    async def member(
        self, actor: Principal, workspace_id: uuid.UUID, user_id: uuid.UUID
    ) -> Member | None:
        if not self._visible(actor, workspace_id):
            return None
        return self.members_by_ws[workspace_id].get(user_id)

    async def add_member(
        self, actor: Principal, workspace_id: uuid.UUID, email: str, role: Role
    ) -> Member:
        user_id = self.emails.get(email)
        if user_id is None:
            raise NotFound("No account has that email address.")
        if user_id in self.members_by_ws[workspace_id]:
            raise Conflict("Already a member.")
        member = Member(workspace_id, user_id, email, None, role, datetime.now(UTC))
        self.members_by_ws[workspace_id][user_id] = member
        return member

    def _owners(self, workspace_id: uuid.UUID) -> int:
        return sum(m.role is Role.OWNER for m in self.members_by_ws[workspace_id].values())

    async def set_role(
        self, actor: Principal, workspace_id: uuid.UUID, user_id: uuid.UUID, role: Role
    ) -> Member | None:
        old = self.members_by_ws[workspace_id].get(user_id)
        if old is None:
            return None
        if old.role is Role.OWNER and role is not Role.OWNER and self._owners(workspace_id) == 1:
            raise Conflict("a workspace must keep at least one owner")
        new = Member(workspace_id, user_id, old.email, old.full_name, role, old.created_at)
        self.members_by_ws[workspace_id][user_id] = new
        return new

    async def remove_member(
        self, actor: Principal, workspace_id: uuid.UUID, user_id: uuid.UUID
    ) -> bool:
        old = self.members_by_ws[workspace_id].get(user_id)
        if old is None:
            return False
        if old.role is Role.OWNER and self._owners(workspace_id) == 1:
            raise Conflict("a workspace must keep at least one owner")
        del self.members_by_ws[workspace_id][user_id]
        return True

    async def profile(self, actor: Principal) -> Profile | None:
        return Profile(actor.user_id, actor.email, None, AccountKind.STANDARD, 20, None)

    async def memberships(self, actor: Principal) -> list[Membership]:
        return [
            Membership(ws.id, ws.name, self.members_by_ws[ws.id][actor.user_id].role)
            for ws in self.workspaces.values()
            if self._visible(actor, ws.id)
        ]

    async def touch(self, actor: Principal) -> None:
        return None
