"""Workspaces (the tenants) and their members, with the role rules of API.md.

Every rule here is enforced again by row-level security; checking here first gives a
clear 403 instead of a silent empty result.
"""

from __future__ import annotations

import re
import secrets
from decimal import Decimal
from uuid import UUID

from guildstack.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from guildstack.domain.identity import Member, Principal, Role, Workspace
from guildstack.domain.paging import Page, PageRequest
from guildstack.ports.workspaces import WorkspaceStore

_NOT_FOUND = "No such workspace."


def slugify(name: str) -> str:
    """A URL-safe slug with a random suffix, so equal names never collide."""
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "workspace"
    return f"{base}-{secrets.token_hex(3)}"


class WorkspaceService:
    def __init__(self, store: WorkspaceStore) -> None:
        self._store = store

    async def create(
        self, actor: Principal, name: str, monthly_budget_usd: Decimal | None
    ) -> Workspace:
        """Create a workspace; the caller becomes its owner."""
        name = name.strip()
        if not name:
            raise InvalidInput("name must not be blank")
        return await self._store.create(actor, name, slugify(name), monthly_budget_usd)

    async def list(self, actor: Principal, page: PageRequest) -> Page[Workspace]:
        return await self._store.list_for(actor, page)

    async def get(self, actor: Principal, workspace_id: UUID) -> Workspace:
        workspace = await self._store.get(actor, workspace_id)
        if workspace is None:
            raise NotFound(_NOT_FOUND)
        return workspace

    async def require_role(self, actor: Principal, workspace_id: UUID, minimum: Role) -> Role:
        """The actor's role; NotFound for non-members (never reveal existence), else Forbidden."""
        role = await self._store.role_of(actor, workspace_id)
        if role is None:
            raise NotFound(_NOT_FOUND)
        if not role.at_least(minimum):
            raise Forbidden(f"This needs the {minimum.value} role or higher; you are {role.value}.")
        return role

    async def update(
        self,
        actor: Principal,
        workspace_id: UUID,
        *,
        name: str | None,
        monthly_budget_usd: Decimal | None,
    ) -> Workspace:
        await self.require_role(actor, workspace_id, Role.ADMIN)
        if name is not None and not name.strip():
            raise InvalidInput("name must not be blank")
        updated = await self._store.update(
            actor,
            workspace_id,
            name=name.strip() if name is not None else None,
            monthly_budget_usd=monthly_budget_usd,
        )
        if updated is None:
            raise NotFound(_NOT_FOUND)
        return updated

    async def members(
        self, actor: Principal, workspace_id: UUID, page: PageRequest
    ) -> Page[Member]:
        await self.require_role(actor, workspace_id, Role.VIEWER)
        return await self._store.members(actor, workspace_id, page)

    async def add_member(
        self, actor: Principal, workspace_id: UUID, email: str, role: Role
    ) -> Member:
        mine = await self.require_role(actor, workspace_id, Role.ADMIN)
        if role is Role.OWNER and mine is not Role.OWNER:
            raise Forbidden("Only an owner may grant the owner role.")
        return await self._store.add_member(actor, workspace_id, email.strip().lower(), role)

    async def change_role(
        self, actor: Principal, workspace_id: UUID, user_id: UUID, role: Role
    ) -> Member:
        mine = await self.require_role(actor, workspace_id, Role.ADMIN)
        target = await self._member(actor, workspace_id, user_id)
        touches_owner = role is Role.OWNER or target.role is Role.OWNER
        if touches_owner and mine is not Role.OWNER:
            raise Forbidden("Only an owner may grant or take away the owner role.")
        if target.role is role:
            return target
        updated = await self._store.set_role(actor, workspace_id, user_id, role)
        if updated is None:
            raise NotFound("No such member.")
        return updated

    async def remove_member(self, actor: Principal, workspace_id: UUID, user_id: UUID) -> None:
        leaving = user_id == actor.user_id
        mine = await self.require_role(actor, workspace_id, Role.VIEWER if leaving else Role.ADMIN)
        target = await self._member(actor, workspace_id, user_id)
        if target.role is Role.OWNER and mine is not Role.OWNER:
            raise Forbidden("Only an owner may remove an owner.")
        if not await self._store.remove_member(actor, workspace_id, user_id):
            raise Conflict("The member could not be removed.")

    async def _member(self, actor: Principal, workspace_id: UUID, user_id: UUID) -> Member:
        member = await self._store.member(actor, workspace_id, user_id)
        if member is None:
            raise NotFound("No such member.")
        return member
