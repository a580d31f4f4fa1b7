"""The campaigns repository: campaigns, their quests and the council's decisions, bound to a
unit of work (under the caller's row-level security, or the system's)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

from guildstack.domain.campaigns import Campaign, CampaignStatus, Decision, ObjectiveType, Quest
from guildstack.domain.paging import Page, PageRequest


class CampaignRepository(Protocol):
    async def create(self, campaign: Campaign) -> Campaign: ...

    async def get(self, workspace_id: UUID, campaign_id: UUID, *, lock: bool = False) -> Campaign:
        """`NotFound` unless the caller may see it; `lock` holds the row until commit."""
        ...

    async def list_campaigns(
        self,
        workspace_id: UUID,
        page: PageRequest,
        *,
        status: CampaignStatus | None = None,
        objective_type: ObjectiveType | None = None,
        text: str | None = None,
    ) -> Page[Campaign]: ...

    async def save(self, campaign: Campaign, *, system: bool = False) -> None:
        """Write what a member may change; with `system`, the brief and its run too."""
        ...

    async def delete(self, workspace_id: UUID, campaign_id: UUID) -> bool: ...

    async def add_quest(self, quest: Quest, created_by: UUID | None) -> Quest: ...

    async def get_quest(self, workspace_id: UUID, campaign_id: UUID, quest_id: UUID) -> Quest: ...

    async def save_quest(self, quest: Quest) -> None: ...

    async def quests(self, workspace_id: UUID, campaign_id: UUID) -> list[Quest]: ...

    async def record(self, workspace_id: UUID, decisions: Sequence[Decision]) -> None:
        """The council's decisions (a system transaction)."""
        ...

    async def decisions(
        self, workspace_id: UUID, campaign_id: UUID, page: PageRequest
    ) -> Page[Decision]:
        """Oldest first."""
        ...
