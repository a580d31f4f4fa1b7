"""CampaignsFunction: campaigns, their quests and briefs, and the Council of Lords'
decisions (the HTTP API's Campaigns routes)."""

from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Query, Response

from functions.campaigns.schemas import (
    CampaignResponse,
    CreateCampaignRequest,
    CreateQuestRequest,
    DecisionResponse,
    GenerateBriefRequest,
    OnboardingRequest,
    OnboardingStarted,
    QuestProgressRequest,
    QuestResponse,
    StartedResponse,
    UpdateCampaignRequest,
)
from guildstack.bootstrap import Container, build
from guildstack.domain.campaigns import CampaignStatus, ObjectiveType
from guildstack.domain.paging import PageRequest
from guildstack.http.app import create_app
from guildstack.http.auth import Scoped, in_workspace
from guildstack.http.openapi import MODEL_CALL
from guildstack.http.pagination import ListResponse, list_of, page_request
from guildstack.observability import metrics

if TYPE_CHECKING:
    from guildstack.services.campaigns import CampaignService
    from guildstack.services.council import CouncilService
    from guildstack.services.onboarding import OnboardingService

Campaigns = Annotated["Scoped[CampaignService]", Depends(in_workspace(lambda c: c.campaigns))]
Council = Annotated["Scoped[CouncilService]", Depends(in_workspace(lambda c: c.council))]
Onboarding = Annotated["Scoped[OnboardingService]", Depends(in_workspace(lambda c: c.onboarding))]
Paging = Annotated[PageRequest, Depends(page_request)]

router = APIRouter()


@router.post("/campaigns", status_code=201)
async def create_campaign(
    body: CreateCampaignRequest, ws: Campaigns, response: Response
) -> CampaignResponse:
    campaign = await ws.service.create(
        ws.principal,
        ws.workspace_id,
        name=body.name,
        objective_type=body.objective_type,
        positioning=body.positioning.model_dump(exclude_none=True),
        target_cohorts=body.target_cohorts,
        budget_usd=body.budget,
        start_date=body.start_date,
        end_date=body.end_date,
    )
    response.headers["Location"] = f"/campaigns/{campaign.id}"
    metrics.add_metric(name="CampaignsCreated", unit="Count", value=1)
    return CampaignResponse.of(campaign, [])


@router.get("/campaigns")
async def list_campaigns(
    ws: Campaigns,
    paging: Paging,
    status: CampaignStatus | None = None,
    objective_type: ObjectiveType | None = None,
    q: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> ListResponse[CampaignResponse]:
    page = await ws.service.list_campaigns(
        ws.principal, ws.workspace_id, paging, status=status, objective_type=objective_type, text=q
    )
    return list_of(page, CampaignResponse.of)


@router.get("/campaigns/{campaign_id}")
async def get_campaign(campaign_id: UUID, ws: Campaigns) -> CampaignResponse:
    view = await ws.service.get(ws.principal, ws.workspace_id, campaign_id)
    return CampaignResponse.of(view.campaign, view.quests)


@router.patch("/campaigns/{campaign_id}")
async def update_campaign(
    campaign_id: UUID, body: UpdateCampaignRequest, ws: Campaigns
) -> CampaignResponse:
    from guildstack.services.campaigns import CampaignChanges

    given = body.model_fields_set
    optional: dict[str, Any] = {
        name: getattr(body, field)
        for field, name in (
            ("budget", "budget_usd"),
            ("start_date", "start_date"),
            ("end_date", "end_date"),
        )
        if field in given
    }
    changes = CampaignChanges(
        name=body.name,
        objective_type=body.objective_type,
        positioning=body.positioning.model_dump(exclude_none=True) if body.positioning else None,
        target_cohorts=body.target_cohorts,
        status=body.status,
        **optional,
    )
    view = await ws.service.update(ws.principal, ws.workspace_id, campaign_id, changes)
    return CampaignResponse.of(view.campaign, view.quests)


@router.delete("/campaigns/{campaign_id}", status_code=204)
async def delete_campaign(campaign_id: UUID, ws: Campaigns) -> Response:
    await ws.service.delete(ws.principal, ws.workspace_id, campaign_id)
    return Response(status_code=204)


@router.post("/campaigns/{campaign_id}/generate-brief", status_code=202, responses=MODEL_CALL)
async def generate_brief(
    campaign_id: UUID,
    ws: Council,
    response: Response,
    body: GenerateBriefRequest | None = None,
) -> StartedResponse:
    """The council plans the brief and its guilds write it (follow the run); the brief lands
    in the campaign when the run ends."""
    run = await ws.service.generate_brief(
        ws.principal,
        ws.workspace_id,
        campaign_id,
        human_approval=body.human_approval if body else False,
    )
    response.headers["Location"] = f"/runs/{run.id}"
    return StartedResponse(run_id=str(run.id))


@router.post("/campaigns/{campaign_id}/quests", status_code=201)
async def create_quest(
    campaign_id: UUID, body: CreateQuestRequest, ws: Campaigns, response: Response
) -> QuestResponse:
    quest = await ws.service.add_quest(
        ws.principal,
        ws.workspace_id,
        campaign_id,
        title=body.title,
        chapters=[(c.title, c.tasks) for c in body.chapters],
        success_metrics=[(m.name, m.target, m.current) for m in body.success_metrics],
    )
    response.headers["Location"] = f"/campaigns/{campaign_id}/quests/{quest.id}"
    return QuestResponse.of(quest)


@router.patch("/campaigns/{campaign_id}/quests/{quest_id}")
async def quest_progress(
    campaign_id: UUID, quest_id: UUID, body: QuestProgressRequest, ws: Campaigns
) -> QuestResponse:
    """Progress of chapters' tasks and of metrics; `start_chapter` runs a chapter's tasks."""
    quest = None
    if body.tasks or body.metrics:
        quest = await ws.service.progress(
            ws.principal,
            ws.workspace_id,
            campaign_id,
            quest_id,
            tasks=[(t.chapter, t.task, t.done) for t in body.tasks],
            metrics=body.metrics,
        )
    if body.start_chapter is not None:
        quest = await ws.service.start_chapter(
            ws.principal, ws.workspace_id, campaign_id, quest_id, body.start_chapter
        )
    assert quest is not None  # noqa: S101 - the request validator asks for one of them
    return QuestResponse.of(quest)


@router.get("/campaigns/{campaign_id}/decisions")
async def list_decisions(
    campaign_id: UUID, ws: Campaigns, paging: Paging
) -> ListResponse[DecisionResponse]:
    """The council's decisions, oldest first: plans, budget splits, approvals and rejections
    of guild output, refusals, briefs landed; each with the lord who made it."""
    page = await ws.service.decisions(ws.principal, ws.workspace_id, campaign_id, paging)
    return list_of(page, DecisionResponse.of)


@router.post("/onboarding", status_code=202, responses=MODEL_CALL)
async def start_onboarding(
    body: OnboardingRequest, ws: Onboarding, response: Response
) -> OnboardingStarted:
    """The 12-step onboarding of the workspace's company as a run; when the last one failed,
    that run resumes (its failed steps run again, what succeeded is kept)."""
    run, resumed = await ws.service.start(ws.principal, ws.workspace_id, body.company)
    response.headers["Location"] = f"/runs/{run.id}"
    return OnboardingStarted(run_id=str(run.id), resumed=resumed)


@router.get("/onboarding")
async def onboarding_progress(ws: Onboarding) -> dict[str, Any]:
    """Progress per step (status, output) and, once done, the company codex."""
    progress = await ws.service.progress(ws.principal, ws.workspace_id)
    return progress.as_json()


def create(container: Container) -> FastAPI:
    """The Campaigns function's app around a composition root (tests pass their own)."""
    app = create_app(container.settings, title="Guildstack Campaigns", routers=[router])
    app.state.container = container
    return app


app = create(build())
