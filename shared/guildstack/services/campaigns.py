"""Campaigns: create, list, read (with quests), edit, move through their statuses, delete;
quests and their progress; the council's decisions. One unit of work per use case, the
caller's role checked in the transaction that acts (viewers read; analysts draft and edit
while planning; operators steer; admins delete)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from guildstack.domain.agents import AgentSpec
from guildstack.domain.authorization import Action
from guildstack.domain.campaigns import (
    PLAN_GUILDS,
    Campaign,
    CampaignStatus,
    Chapter,
    Decision,
    Metric,
    ObjectiveType,
    Quest,
    progressed,
)
from guildstack.domain.errors import Conflict, InvalidInput
from guildstack.domain.identity import Principal
from guildstack.domain.paging import Page, PageRequest
from guildstack.domain.routing import route_by_keywords
from guildstack.domain.run_graph import RunGraph
from guildstack.domain.runs import Node, Workflow
from guildstack.domain.vocabulary import AgentStatus, RunKind
from guildstack.ports.uow import UnitOfWork
from guildstack.services.access import authorized
from guildstack.services.agents import AgentRegistry

_UNSET: Any = object()


@dataclass(frozen=True)
class CampaignView:
    campaign: Campaign
    quests: list[Quest]


@dataclass(frozen=True)
class CampaignChanges:
    """What a PATCH sets; fields left out stay as they are."""

    name: str | None = None
    objective_type: ObjectiveType | None = None
    positioning: Mapping[str, Any] | None = None
    target_cohorts: Sequence[str] | None = None
    budget_usd: Decimal | None = _UNSET
    start_date: date | None = _UNSET
    end_date: date | None = _UNSET
    status: CampaignStatus | None = None

    def edits(self) -> bool:
        return any(
            v is not None and v is not _UNSET
            for v in (self.name, self.objective_type, self.positioning, self.target_cohorts)
        ) or any(v is not _UNSET for v in (self.budget_usd, self.start_date, self.end_date))


def _dates(start: date | None, end: date | None) -> None:
    if start is not None and end is not None and end < start:
        raise InvalidInput(
            "end_date is before start_date.",
            [{"loc": ["body", "end_date"], "msg": "before start_date", "type": "value_error"}],
        )


class CampaignService:
    def __init__(self, uow: UnitOfWork, agents: AgentRegistry) -> None:
        self._uow = uow
        self._agents = agents

    async def create(
        self,
        actor: Principal,
        workspace_id: UUID,
        *,
        name: str,
        objective_type: ObjectiveType,
        positioning: Mapping[str, Any],
        target_cohorts: Sequence[str],
        budget_usd: Decimal | None = None,
        start_date: date | None = None,
        end_date: date | None = None,
    ) -> Campaign:
        _dates(start_date, end_date)
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.DRAFT_CAMPAIGN)
            return await tx.campaigns.create(
                Campaign(
                    id=uuid.uuid4(),
                    workspace_id=workspace_id,
                    created_by=actor.user_id,
                    name=name,
                    objective_type=objective_type,
                    positioning=dict(positioning),
                    target_cohorts=tuple(target_cohorts),
                    budget_usd=budget_usd,
                    start_date=start_date,
                    end_date=end_date,
                    status=CampaignStatus.PLANNING,
                    created_at=tx.now,
                    updated_at=tx.now,
                )
            )

    async def list_campaigns(
        self,
        actor: Principal,
        workspace_id: UUID,
        page: PageRequest,
        *,
        status: CampaignStatus | None = None,
        objective_type: ObjectiveType | None = None,
        text: str | None = None,
    ) -> Page[Campaign]:
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
            return await tx.campaigns.list_campaigns(
                workspace_id, page, status=status, objective_type=objective_type, text=text
            )

    async def get(self, actor: Principal, workspace_id: UUID, campaign_id: UUID) -> CampaignView:
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
            campaign = await tx.campaigns.get(workspace_id, campaign_id)
            return CampaignView(campaign, await tx.campaigns.quests(workspace_id, campaign_id))

    async def update(
        self, actor: Principal, workspace_id: UUID, campaign_id: UUID, changes: CampaignChanges
    ) -> CampaignView:
        """Edits need an analyst while the campaign is planned, an operator after; a status
        change needs an operator and a transition the machine allows (409 otherwise)."""
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
            seen = await tx.campaigns.get(workspace_id, campaign_id)
            steering = changes.status is not None or seen.status is not CampaignStatus.PLANNING
            await authorized(
                tx, workspace_id, Action.STEER_CAMPAIGN if steering else Action.DRAFT_CAMPAIGN
            )
            # Locked only now: a row one may not update cannot be locked (RLS hides it).
            c = await tx.campaigns.get(workspace_id, campaign_id, lock=True)
            if c.status is not seen.status:
                raise Conflict("The campaign changed meanwhile; read it again.")
            if changes.edits():
                c = replace(
                    c,
                    name=changes.name if changes.name is not None else c.name,
                    objective_type=changes.objective_type or c.objective_type,
                    positioning=(
                        dict(changes.positioning)
                        if changes.positioning is not None
                        else c.positioning
                    ),
                    target_cohorts=(
                        tuple(changes.target_cohorts)
                        if changes.target_cohorts is not None
                        else c.target_cohorts
                    ),
                    budget_usd=(
                        c.budget_usd if changes.budget_usd is _UNSET else changes.budget_usd
                    ),
                    start_date=c.start_date if changes.start_date is _UNSET else changes.start_date,
                    end_date=c.end_date if changes.end_date is _UNSET else changes.end_date,
                )
                _dates(c.start_date, c.end_date)
            if changes.status is not None and changes.status is not c.status:
                c = c.moved_to(changes.status, tx.now)
            elif changes.status is not None:
                c.moved_to(changes.status, tx.now)  # the same status again: 409 as well
            c = replace(c, updated_at=tx.now)
            await tx.campaigns.save(c)
            return CampaignView(c, await tx.campaigns.quests(workspace_id, campaign_id))

    async def delete(self, actor: Principal, workspace_id: UUID, campaign_id: UUID) -> None:
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.DELETE_CAMPAIGN)
            await tx.campaigns.get(workspace_id, campaign_id)
            await tx.campaigns.delete(workspace_id, campaign_id)

    async def add_quest(
        self,
        actor: Principal,
        workspace_id: UUID,
        campaign_id: UUID,
        *,
        title: str,
        chapters: Sequence[tuple[str, Sequence[str]]],
        success_metrics: Sequence[tuple[str, float, float]],
    ) -> Quest:
        names = [name for name, _, _ in success_metrics]
        if len(set(names)) != len(names):
            raise InvalidInput(
                "Metric names must be unique within a quest.",
                [
                    {
                        "loc": ["body", "success_metrics"],
                        "msg": "duplicate metric name",
                        "type": "value_error",
                    }
                ],
            )
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.DRAFT_CAMPAIGN)
            await tx.campaigns.get(workspace_id, campaign_id)
            quest = Quest(
                id=uuid.uuid4(),
                workspace_id=workspace_id,
                campaign_id=campaign_id,
                title=title,
                chapters=tuple(Chapter(t, tuple(tasks)) for t, tasks in chapters),
                success_metrics=tuple(Metric(n, float(t), float(c)) for n, t, c in success_metrics),
                created_at=tx.now,
                updated_at=tx.now,
            )
            return await tx.campaigns.add_quest(quest, actor.user_id)

    async def progress(
        self,
        actor: Principal,
        workspace_id: UUID,
        campaign_id: UUID,
        quest_id: UUID,
        *,
        tasks: Sequence[tuple[int, int, bool]] = (),
        metrics: Mapping[str, float] | None = None,
    ) -> Quest:
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.DRAFT_CAMPAIGN)
            quest = await tx.campaigns.get_quest(workspace_id, campaign_id, quest_id)
            changed = progressed(quest, tasks_done=tasks, metrics=metrics, now=tx.now)
            await tx.campaigns.save_quest(changed)
            return changed

    async def start_chapter(
        self, actor: Principal, workspace_id: UUID, campaign_id: UUID, quest_id: UUID, index: int
    ) -> Quest:
        """A chapter's tasks as a run (operators): each task goes, side by side, to the guild
        agent the keyword router picks for it (the content strategist when none fits); the
        chapter keeps the run. 409 while the chapter's last run is in progress."""
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.STEER_CAMPAIGN)
            campaign = await tx.campaigns.get(workspace_id, campaign_id)
            quest = await tx.campaigns.get_quest(workspace_id, campaign_id, quest_id)
            if not 0 <= index < len(quest.chapters):
                raise InvalidInput(
                    f"The quest has no chapter {index}.",
                    [{"loc": ["body", "start_chapter"], "msg": "no such chapter",
                      "type": "value_error"}],
                )  # fmt: skip
            chapter = quest.chapters[index]
            if not chapter.tasks:
                raise Conflict("The chapter has no tasks to run.")
            if chapter.run_id is not None:
                last = await tx.runs.get(workspace_id, chapter.run_id)
                if not last.status.finished:
                    raise Conflict(f"The chapter's run is in progress (run {last.id}).")
            active = [
                a.spec
                for a in await self._agents.all_in(tx, workspace_id)
                if a.status not in UNAVAILABLE and a.spec.guild in PLAN_GUILDS
            ]
            nodes = tuple(
                Node(f"task_{i + 1}", _agent_for(task, active), task)
                for i, task in enumerate(chapter.tasks)
            )
            workflow = Workflow(
                RunKind.PARALLEL,
                f"{quest.title}: {chapter.title}"[:200],
                f"{campaign.describe()}\nQuest: {quest.title}\nChapter: {chapter.title}",
                nodes,
            ).validated(a.code for a in active)
            run = await tx.runs.add(
                RunGraph.start(workspace_id, actor.user_id, workflow, now=tx.now)
            )
            chapters = list(quest.chapters)
            chapters[index] = replace(chapter, run_id=run.id)
            changed = replace(quest, chapters=tuple(chapters), updated_at=tx.now)
            await tx.campaigns.save_quest(changed)
            return changed

    async def decisions(
        self, actor: Principal, workspace_id: UUID, campaign_id: UUID, page: PageRequest
    ) -> Page[Decision]:
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
            await tx.campaigns.get(workspace_id, campaign_id)
            return await tx.campaigns.decisions(workspace_id, campaign_id, page)


UNAVAILABLE = frozenset({AgentStatus.PAUSED, AgentStatus.TERMINATED})
FALLBACK_AGENT = "MUSE-006"  # the content strategist


def _agent_for(task: str, agents: Sequence[AgentSpec]) -> str:
    picked = route_by_keywords(task, agents, core="", max_specialists=1).specialists
    return picked[0].code if picked else FALLBACK_AGENT
