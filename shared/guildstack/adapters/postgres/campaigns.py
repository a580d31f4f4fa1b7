"""`PostgresCampaignRepository`: campaigns, quests and the council's decisions, under the
caller's RLS (the council's decisions and a campaign's brief are written by the system)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from guildstack.adapters.postgres.database import Connection, returned_row
from guildstack.adapters.postgres.paging import fetch_page
from guildstack.domain.campaigns import (
    Campaign,
    CampaignStatus,
    Chapter,
    Decision,
    DecisionKind,
    Metric,
    ObjectiveType,
    Quest,
)
from guildstack.domain.errors import NotFound
from guildstack.domain.paging import Page, PageRequest

_NOT_FOUND = "No such campaign in this workspace."
_COLUMNS = (
    "id, workspace_id, created_by, name, objective_type, positioning, target_cohorts,"
    " budget_usd, start_date, end_date, status, brief, brief_run_id, created_at, updated_at"
)
_QUEST_COLUMNS = (
    "id, workspace_id, campaign_id, title, chapters, success_metrics, created_at, updated_at"
)
_DECISION_COLUMNS = "id, campaign_id, run_id, step_key, kind, lord, summary, detail, created_at"


class PostgresCampaignRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def create(self, campaign: Campaign) -> Campaign:
        c = campaign
        cur = await self._conn.execute(
            "insert into public.campaigns (id, workspace_id, created_by, name, objective_type,"  # noqa: S608
            " positioning, target_cohorts, budget_usd, start_date, end_date, status,"
            " created_at, updated_at)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            f" returning {_COLUMNS}",
            (c.id, c.workspace_id, c.created_by, c.name, c.objective_type.value,
             json.dumps(dict(c.positioning)), json.dumps(list(c.target_cohorts)), c.budget_usd,
             c.start_date, c.end_date, c.status.value, c.created_at, c.updated_at),
        )  # fmt: skip
        return _campaign(await returned_row(cur))

    async def get(self, workspace_id: UUID, campaign_id: UUID, *, lock: bool = False) -> Campaign:
        suffix = " for no key update" if lock else ""
        cur = await self._conn.execute(
            f"select {_COLUMNS} from public.campaigns"  # noqa: S608 - constant columns
            f" where id = %s and workspace_id = %s{suffix}",
            (campaign_id, workspace_id),
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFound(_NOT_FOUND)
        return _campaign(row)

    async def list_campaigns(
        self,
        workspace_id: UUID,
        page: PageRequest,
        *,
        status: CampaignStatus | None = None,
        objective_type: ObjectiveType | None = None,
        text: str | None = None,
    ) -> Page[Campaign]:
        return await fetch_page(
            self._conn,
            f"select {_COLUMNS} from public.campaigns where workspace_id = %(ws)s"  # noqa: S608
            " and (%(status)s::text is null or status = %(status)s)"
            " and (%(objective)s::text is null or objective_type = %(objective)s)"
            " and (%(text)s::text is null or name ilike '%%' || %(text)s || '%%')",
            {
                "ws": workspace_id,
                "status": status.value if status else None,
                "objective": objective_type.value if objective_type else None,
                "text": _like(text) if text else None,
            },
            page,
            _campaign,
            lambda c: (c.created_at, c.id),
        )

    async def save(self, campaign: Campaign, *, system: bool = False) -> None:
        c = campaign
        params: dict[str, Any] = {
            "id": c.id, "ws": c.workspace_id, "name": c.name,
            "objective": c.objective_type.value, "positioning": json.dumps(dict(c.positioning)),
            "cohorts": json.dumps(list(c.target_cohorts)), "budget": c.budget_usd,
            "start": c.start_date, "end": c.end_date, "status": c.status.value,
            "updated": c.updated_at,
            "brief": json.dumps(dict(c.brief)) if c.brief is not None else None,
            "run": c.brief_run_id,
        }  # fmt: skip
        extra = ", brief = %(brief)s::jsonb, brief_run_id = %(run)s" if system else ""
        await self._conn.execute(
            "update public.campaigns set name = %(name)s, objective_type = %(objective)s,"  # noqa: S608
            " positioning = %(positioning)s::jsonb, target_cohorts = %(cohorts)s::jsonb,"
            " budget_usd = %(budget)s, start_date = %(start)s, end_date = %(end)s,"
            f" status = %(status)s, updated_at = %(updated)s{extra}"
            " where id = %(id)s and workspace_id = %(ws)s",
            params,
        )

    async def delete(self, workspace_id: UUID, campaign_id: UUID) -> bool:
        cur = await self._conn.execute(
            "delete from public.campaigns where id = %s and workspace_id = %s returning id",
            (campaign_id, workspace_id),
        )
        return await cur.fetchone() is not None

    async def add_quest(self, quest: Quest, created_by: UUID | None) -> Quest:
        q = quest
        cur = await self._conn.execute(
            "insert into public.campaign_quests (id, workspace_id, campaign_id, created_by,"  # noqa: S608
            " title, chapters, success_metrics, created_at, updated_at)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            f" returning {_QUEST_COLUMNS}",
            (q.id, q.workspace_id, q.campaign_id, created_by, q.title,
             json.dumps(_chapters_json(q)), json.dumps(_metrics_json(q)), q.created_at,
             q.updated_at),
        )  # fmt: skip
        return _quest(await returned_row(cur))

    async def get_quest(self, workspace_id: UUID, campaign_id: UUID, quest_id: UUID) -> Quest:
        cur = await self._conn.execute(
            f"select {_QUEST_COLUMNS} from public.campaign_quests"  # noqa: S608
            " where id = %s and campaign_id = %s and workspace_id = %s for no key update",
            (quest_id, campaign_id, workspace_id),
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFound("No such quest in this campaign.")
        return _quest(row)

    async def save_quest(self, quest: Quest) -> None:
        q = quest
        await self._conn.execute(
            "update public.campaign_quests set chapters = %s, success_metrics = %s,"
            " updated_at = %s where id = %s and workspace_id = %s",
            (json.dumps(_chapters_json(q)), json.dumps(_metrics_json(q)), q.updated_at, q.id,
             q.workspace_id),
        )  # fmt: skip

    async def quests(self, workspace_id: UUID, campaign_id: UUID) -> list[Quest]:
        cur = await self._conn.execute(
            f"select {_QUEST_COLUMNS} from public.campaign_quests"  # noqa: S608
            " where campaign_id = %s and workspace_id = %s order by created_at, id",
            (campaign_id, workspace_id),
        )
        return [_quest(row) for row in await cur.fetchall()]

    async def record(self, workspace_id: UUID, decisions: Sequence[Decision]) -> None:
        if not decisions:
            return
        rows = [
            {
                "id": str(d.id or uuid4()),
                "campaign_id": str(d.campaign_id),
                "run_id": str(d.run_id) if d.run_id else None,
                "step_key": d.step_key,
                "kind": d.kind.value,
                "lord": d.lord,
                "summary": d.summary,
                "detail": dict(d.detail),
                "ord": i,
            }
            for i, d in enumerate(decisions)
        ]
        # One statement; decisions of one change keep their order (the clock plus a micro-
        # second each, as they share the transaction's time).
        await self._conn.execute(
            "insert into public.campaign_decisions (id, workspace_id, campaign_id, run_id,"
            " step_key, kind, lord, summary, detail, created_at)"
            " select x.id, %(ws)s, x.campaign_id, x.run_id, x.step_key, x.kind, x.lord,"
            " x.summary, x.detail, now() + make_interval(secs => x.ord / 1000000.0)"
            " from jsonb_to_recordset(%(rows)s::jsonb) as x(id uuid, campaign_id uuid,"
            " run_id uuid, step_key text, kind text, lord text, summary text, detail jsonb,"
            " ord int)",
            {"ws": workspace_id, "rows": json.dumps(rows)},
        )

    async def decisions(
        self, workspace_id: UUID, campaign_id: UUID, page: PageRequest
    ) -> Page[Decision]:
        return await fetch_page(
            self._conn,
            f"select {_DECISION_COLUMNS} from public.campaign_decisions"  # noqa: S608
            " where workspace_id = %(ws)s and campaign_id = %(c)s",
            {"ws": workspace_id, "c": campaign_id},
            page,
            _decision,
            _decision_cursor,
            newest_first=False,
        )


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _campaign(row: dict[str, Any]) -> Campaign:
    budget = row["budget_usd"]
    return Campaign(
        id=row["id"],
        workspace_id=row["workspace_id"],
        created_by=row["created_by"],
        name=row["name"],
        objective_type=ObjectiveType(row["objective_type"]),
        positioning=row["positioning"] or {},
        target_cohorts=tuple(row["target_cohorts"] or ()),
        budget_usd=Decimal(budget) if budget is not None else None,
        start_date=row["start_date"],
        end_date=row["end_date"],
        status=CampaignStatus(row["status"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        brief=row["brief"],
        brief_run_id=row["brief_run_id"],
    )


def _chapters_json(q: Quest) -> list[dict[str, Any]]:
    return [
        {
            "title": c.title,
            "tasks": list(c.tasks),
            "done": list(c.done),
            "run_id": str(c.run_id) if c.run_id else None,
        }
        for c in q.chapters
    ]


def _metrics_json(q: Quest) -> list[dict[str, Any]]:
    return [{"name": m.name, "target": m.target, "current": m.current} for m in q.success_metrics]


def _quest(row: dict[str, Any]) -> Quest:
    return Quest(
        id=row["id"],
        workspace_id=row["workspace_id"],
        campaign_id=row["campaign_id"],
        title=row["title"],
        chapters=tuple(
            Chapter(
                title=c["title"],
                tasks=tuple(c.get("tasks", ())),
                done=tuple(c.get("done", ())),
                run_id=UUID(c["run_id"]) if c.get("run_id") else None,
            )
            for c in row["chapters"]
        ),
        success_metrics=tuple(
            Metric(m["name"], float(m["target"]), float(m.get("current", 0)))
            for m in row["success_metrics"]
        ),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _decision_cursor(d: Decision) -> tuple[datetime, UUID]:
    assert d.created_at is not None and d.id is not None  # noqa: S101 - read rows have both
    return d.created_at, d.id


def _decision(row: dict[str, Any]) -> Decision:
    return Decision(
        id=row["id"],
        campaign_id=row["campaign_id"],
        run_id=row["run_id"],
        step_key=row["step_key"],
        kind=DecisionKind(row["kind"]),
        lord=row["lord"],
        summary=row["summary"],
        detail=row["detail"] or {},
        created_at=row["created_at"],
    )
