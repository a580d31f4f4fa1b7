"""Workspaces (the tenants) and their members, with the role rules of the domain's table.

Every rule here is enforced again by row-level security; checking here first gives a
clear 403 instead of a silent empty result.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from decimal import Decimal
from uuid import UUID

from guildstack.domain.authorization import NOT_A_MEMBER, Action, authorize
from guildstack.domain.errors import Conflict, InvalidInput, NotFound
from guildstack.domain.identity import AccountKind, Invite, Member, Principal, Role, Workspace
from guildstack.domain.paging import Page, PageRequest
from guildstack.ports.uow import Tx, UnitOfWork
from guildstack.services.access import authorized


def slugify(name: str) -> str:
    """The URL-safe start of a workspace's slug. The database appends a random suffix of its
    own (and draws again on a collision), so the caller never learns whether a slug exists."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-") or "workspace"


class WorkspaceService:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def create(
        self, actor: Principal, name: str, monthly_budget_usd: Decimal | None
    ) -> Workspace:
        """Create a workspace; the caller becomes its owner."""
        name = name.strip()
        if not name:
            raise InvalidInput("name must not be blank")
        async with self._uow(actor) as tx:
            return await tx.workspaces.create(name, slugify(name), monthly_budget_usd)

    async def list(self, actor: Principal, page: PageRequest) -> Page[Workspace]:
        async with self._uow.reading(actor) as tx:
            return await tx.workspaces.list_mine(page)

    async def get(self, actor: Principal, workspace_id: UUID) -> Workspace:
        async with self._uow.reading(actor) as tx:
            workspace = await tx.workspaces.get(workspace_id)
        if workspace is None:
            raise NotFound(NOT_A_MEMBER)
        return workspace

    async def update(
        self,
        actor: Principal,
        workspace_id: UUID,
        *,
        name: str | None,
        monthly_budget_usd: Decimal | None,
        conversation_retention_days: int | None = None,
    ) -> Workspace:
        """Rename, set the budget, or how long conversations are kept (0: for good)."""
        if name is not None and not name.strip():
            raise InvalidInput("name must not be blank")
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.UPDATE_WORKSPACE)
            updated = await tx.workspaces.update(
                workspace_id,
                name=name.strip() if name is not None else None,
                monthly_budget_usd=monthly_budget_usd,
                conversation_retention_days=conversation_retention_days,
            )
        if updated is None:
            raise NotFound(NOT_A_MEMBER)
        return updated

    async def members(
        self, actor: Principal, workspace_id: UUID, page: PageRequest
    ) -> Page[Member]:
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
            return await tx.workspaces.members(workspace_id, page)

    async def invite_member(
        self, actor: Principal, workspace_id: UUID, email: str, role: Role
    ) -> Invite:
        """Invite an email address to the workspace (admin+; only an owner invites owners).
        The answer is the same whether or not the address has an account, so nobody can
        use this to find out; the account joins when it signs up or next loads its
        profile (`AccountService.me`)."""
        async with self._uow(actor) as tx:
            mine = await authorized(tx, workspace_id, Action.MANAGE_MEMBERS)
            if role is Role.OWNER:
                authorize(mine, Action.GRANT_OWNER)
            return await tx.workspaces.invite(workspace_id, email.strip().lower(), role)

    async def update_member(
        self,
        actor: Principal,
        workspace_id: UUID,
        user_id: UUID,
        *,
        role: Role | None = None,
        account_kind: AccountKind | None = None,
    ) -> Member:
        """Change a member's role and/or account kind (admin+; only an owner grants or
        takes away the owner role). The account kind shapes the assistant's answers and the
        member's chat limits."""
        async with self._uow(actor) as tx:
            mine = await authorized(tx, workspace_id, Action.MANAGE_MEMBERS)
            member = await _member(tx, workspace_id, user_id)
            if role is not None and role is not member.role:
                if role is Role.OWNER or member.role is Role.OWNER:
                    authorize(mine, Action.GRANT_OWNER)
                member = await _updated(tx.workspaces.set_role(workspace_id, user_id, role))
            if account_kind is not None and account_kind is not member.account_kind:
                authorize(mine, Action.SET_ACCOUNT_KIND)
                member = await _updated(
                    tx.workspaces.set_account_kind(workspace_id, user_id, account_kind)
                )
        return member

    async def remove_member(self, actor: Principal, workspace_id: UUID, user_id: UUID) -> None:
        leaving = user_id == actor.user_id
        async with self._uow(actor) as tx:
            action = Action.LEAVE if leaving else Action.MANAGE_MEMBERS
            mine = await authorized(tx, workspace_id, action)
            target = await _member(tx, workspace_id, user_id)
            if target.role is Role.OWNER:
                authorize(mine, Action.GRANT_OWNER)
            if not await tx.workspaces.remove_member(workspace_id, user_id):
                raise Conflict("The member could not be removed.")


async def _updated(change: Awaitable[Member | None]) -> Member:
    member = await change
    if member is None:
        raise NotFound("No such member.")
    return member


async def _member(tx: Tx, workspace_id: UUID, user_id: UUID) -> Member:
    member = await tx.workspaces.member(workspace_id, user_id)
    if member is None:
        raise NotFound("No such member.")
    return member
