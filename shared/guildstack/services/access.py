"""The membership check every workspace-scoped use case starts with, inside its own unit of
work: the caller's role is read in the same transaction as the action it allows."""

from __future__ import annotations

from uuid import UUID

from guildstack.domain.authorization import Action, authorize
from guildstack.domain.vocabulary import Role
from guildstack.ports.uow import Tx


async def authorized(tx: Tx, workspace_id: UUID, action: Action) -> Role:
    """The caller's role when it may perform `action` in the workspace: `NotFound` for
    non-members (a workspace's existence is never revealed), `Forbidden` for a role too low."""
    return authorize(await tx.workspaces.role_of(workspace_id), action)
