"""The Council of Lords: a lord's plan for a campaign's brief becomes a run.

`CouncilService.generate_brief`: the Strategos answers with a structured plan (which guild
agents do what, after whom, for which share of the budget); the plan is validated (known,
active guild agents; acyclic; shares within the campaign's budget once the council's own
share is set aside) and becomes a `campaign_brief` run: one step per task, side by side
where nothing orders them, then the Herald's brief. A campaign whose budget cannot pay for
a brief is refused before any provider call; a plan that cannot run is refused before any
guild agent is called. Both refusals, the plan and the budget split are recorded as the
council's decisions.

`CouncilSteps` is the kind's executor: a guild agent's task (streamed), then the review of
its guild's lord (approve, or reject with reasons: one revision round, reviewed again),
every call within the task's cap; the Herald's step writes the brief as JSON sections.
The brief lands in the campaign when the run ends (`run_finishers.BriefFinisher`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any
from uuid import UUID

from guildstack.agents.council_prompts import (
    COUNCIL_SHARE,
    PLANNER,
    REVIEWERS,
    TREASURER,
    baseline_plan,
    brief_request,
    campaign_facts,
    plan_request,
    review_request,
    task_request,
)
from guildstack.domain.agents import AgentSpec
from guildstack.domain.authorization import Action
from guildstack.domain.campaigns import (
    BRIEF_STEP,
    HERALD,
    MIN_TASK_USD,
    PLAN_GUILDS,
    Campaign,
    CampaignStatus,
    Decision,
    DecisionKind,
    Plan,
    PlanRefused,
    validate_plan,
)
from guildstack.domain.errors import BudgetExceeded, Conflict
from guildstack.domain.identity import Principal
from guildstack.domain.models import CallContext, Completion
from guildstack.domain.run_graph import NewStep, RunGraph
from guildstack.domain.runs import Node, Run, Workflow
from guildstack.domain.vocabulary import AgentStatus, Guild, RunKind
from guildstack.observability import metrics
from guildstack.ports.models import LanguageModel
from guildstack.ports.uow import Tx, UnitOfWork
from guildstack.services.access import authorized
from guildstack.services.agents import AgentRegistry
from guildstack.services.engine import Claim, Streamer
from guildstack.services.onboarding import Codex
from guildstack.services.structured import complete_json

# The least budget a brief may have: the council's share must pay for its plan and brief.
MIN_BRIEF_BUDGET_USD = Decimal("0.25")
UNAVAILABLE = frozenset({AgentStatus.PAUSED, AgentStatus.TERMINATED})


def _refusal(campaign: Campaign, lord: str, summary: str, detail: Mapping[str, Any]) -> Decision:
    return Decision(campaign.id, DecisionKind.REFUSAL, lord, summary, detail)


class CouncilService:
    def __init__(
        self,
        uow: UnitOfWork,
        agents: AgentRegistry,
        model: LanguageModel,
        codex: Codex | None = None,
    ) -> None:
        self._uow = uow
        self._agents = agents
        self._model = model
        self._codex = codex or Codex(uow, None)

    async def generate_brief(
        self,
        actor: Principal,
        workspace_id: UUID,
        campaign_id: UUID,
        *,
        human_approval: bool = False,
    ) -> Run:
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.STEER_CAMPAIGN)
            campaign = await tx.campaigns.get(workspace_id, campaign_id)
            await _check_startable(tx, campaign)
            agents = [
                a.spec
                for a in await self._agents.all_in(tx, workspace_id)
                if a.status not in UNAVAILABLE
            ]
            codex = await self._codex.text(tx, workspace_id)
        budget = campaign.budget_usd
        if budget is None or budget < MIN_BRIEF_BUDGET_USD:
            await self._record(workspace_id, [_refusal(
                campaign, TREASURER, "No budget for a brief.",
                {"budget_usd": float(budget or 0), "minimum_usd": float(MIN_BRIEF_BUDGET_USD)},
            )])  # fmt: skip
            raise BudgetExceeded(
                f"A brief needs a campaign budget of at least USD {MIN_BRIEF_BUDGET_USD}; "
                "set the campaign's budget."
            )
        lords = {a.code: a for a in agents if a.guild == Guild.COUNCIL}
        guild_agents = [a for a in agents if a.guild in PLAN_GUILDS]
        missing = [c for c in (PLANNER, HERALD, *REVIEWERS.values()) if c not in lords]
        if missing:
            raise Conflict(f"These lords are not available: {', '.join(sorted(set(missing)))}.")
        plan = await self._plan(actor, campaign, lords[PLANNER], guild_agents)
        reserve = budget * Decimal(str(COUNCIL_SHARE))
        try:
            validate_plan(
                plan, {a.code: a.guild for a in guild_agents}, budget, reserve_usd=reserve
            )
        except PlanRefused as exc:
            await self._record(workspace_id, [_refusal(
                campaign, PLANNER, exc.detail, {"plan": plan.as_json(), "problems": exc.errors},
            )])  # fmt: skip
            metrics.add_metric(name="CouncilPlansRefused", unit="Count", value=1)
            raise
        return await self._start(
            actor, campaign, plan, agents, human_approval=human_approval, codex=codex
        )

    async def _plan(
        self,
        actor: Principal,
        campaign: Campaign,
        lord: AgentSpec,
        guild_agents: Sequence[AgentSpec],
    ) -> Plan:
        default = baseline_plan(campaign, guild_agents)
        request = plan_request(lord, campaign, guild_agents, default)
        context = CallContext(campaign.workspace_id, actor.user_id, lord.code)
        result = await complete_json(self._model, request, context)
        return Plan.of(lord.code, result.value)

    async def _start(
        self,
        actor: Principal,
        campaign: Campaign,
        plan: Plan,
        agents: Sequence[AgentSpec],
        *,
        human_approval: bool,
        codex: str | None,
    ) -> Run:
        budget = campaign.budget_usd or Decimal(0)
        caps = plan.caps(budget)
        guild_of = {a.code: a.guild for a in agents}
        nodes = [Node(t.key, t.agent, t.instruction, t.depends_on) for t in plan.tasks]
        nodes.append(
            Node(
                BRIEF_STEP,
                HERALD,
                "Write the campaign's brief from the guilds' approved work.",
                tuple(t.key for t in plan.tasks),
                requires_approval=human_approval,
            )
        )
        workflow = Workflow(
            RunKind.CAMPAIGN_BRIEF,
            f"Brief: {campaign.name}"[:200],
            campaign.describe() + (f"\n\n# The company codex\n{codex}" if codex else ""),
            tuple(nodes),
            budget,
        )
        context = {
            "campaign_id": str(campaign.id),
            "campaign": campaign_facts(campaign),
            "caps": {k: str(v) for k, v in caps.items()},
            "guilds": {t.key: guild_of[t.agent] for t in plan.tasks},
            "guild_of": {t.agent: guild_of[t.agent] for t in plan.tasks},
        }
        workspace_id = campaign.workspace_id
        # The member was authorized above; the run and the council's record are the system's.
        async with self._uow.system("start a campaign brief") as tx:
            current = await tx.campaigns.get(workspace_id, campaign.id, lock=True)
            await _check_startable(tx, current)
            graph = RunGraph.start(
                workspace_id, actor.user_id, workflow, now=tx.now, context=context
            )
            run = await tx.runs.add(graph)
            await tx.campaigns.save(replace(current, brief_run_id=run.id), system=True)
            split = {t.key: {"agent": t.agent, "cap_usd": float(caps[t.key])} for t in plan.tasks}
            await tx.campaigns.record(
                workspace_id,
                [
                    Decision(
                        campaign.id,
                        DecisionKind.PLAN,
                        plan.lord,
                        plan.rationale or f"{len(plan.tasks)} tasks for the guilds.",
                        {"plan": plan.as_json()},
                        run_id=run.id,
                    ),
                    Decision(
                        campaign.id,
                        DecisionKind.BUDGET,
                        TREASURER,
                        f"USD {budget} split over {len(plan.tasks)} tasks; "
                        f"{COUNCIL_SHARE:.0%} kept for the council.",
                        {
                            "budget_usd": float(budget),
                            "council_usd": float(budget * Decimal(str(COUNCIL_SHARE))),
                            "tasks": split,
                        },
                        run_id=run.id,
                    ),
                ],
            )
        metrics.add_metric(name="CampaignBriefsStarted", unit="Count", value=1)
        return run

    async def _record(self, workspace_id: UUID, decisions: Sequence[Decision]) -> None:
        async with self._uow.system("record the council's decisions") as tx:
            await tx.campaigns.record(workspace_id, decisions)


async def _check_startable(tx: Tx, campaign: Campaign) -> None:
    if campaign.status is CampaignStatus.COMPLETED:
        raise Conflict("The campaign is completed.")
    if campaign.brief_run_id is not None:
        run = await tx.runs.get(campaign.workspace_id, campaign.brief_run_id)
        if not run.status.finished:
            raise Conflict(f"A brief is already being written (run {run.id}).")


class CouncilSteps:
    """The executor of `campaign_brief` runs (see the module's docstring)."""

    asks = False

    def __init__(
        self, uow: UnitOfWork, model: LanguageModel, lords: Mapping[str, AgentSpec]
    ) -> None:
        self._uow = uow
        self._model = model
        self._lords = dict(lords)
        # Decisions an attempt made, recorded with its outcome (`follow`).
        self._decided: dict[tuple[UUID, str, int], list[Decision]] = {}

    def prepare(self, claim: Claim) -> None:
        return None

    async def execute(self, claim: Claim, stream: Streamer) -> tuple[Completion, str]:
        if claim.step_key == BRIEF_STEP:
            return await self._brief(claim)
        return await self._task(claim, stream)

    async def _brief(self, claim: Claim) -> tuple[Completion, str]:
        ctx = claim.run_context
        request = brief_request(
            claim.agent,
            ctx.get("campaign", {}),
            claim.run_input,
            claim.inputs.handoffs,
            ctx.get("guild_of", {}),
        )
        result = await complete_json(self._model, request, claim.context())
        return replace(result.completion, text=json.dumps(result.value)), ""

    async def _task(self, claim: Claim, stream: Streamer) -> tuple[Completion, str]:
        ctx = claim.run_context
        key = claim.step_key
        cap = Decimal(ctx["caps"][key])
        lord = self._lords[REVIEWERS[ctx["guilds"][key]]]
        campaign_id = UUID(ctx["campaign_id"])
        decisions: list[Decision] = []

        def decided(kind: DecisionKind, summary: str, **detail: Any) -> None:
            decisions.append(
                Decision(campaign_id, kind, lord.code, summary, detail, claim.run_id, key)
            )

        if cap < MIN_TASK_USD:
            raise BudgetExceeded(
                f"Task {key!r} has USD {cap}, under the USD {MIN_TASK_USD} needed."
            )
        try:
            draft, tail, output = await self._work_and_review(claim, stream, lord, cap, decided)
        except (BudgetExceeded, Conflict):
            await self._record_now(claim.workspace_id, decisions)
            raise
        self._decided[(claim.run_id, key, claim.attempt)] = decisions
        metrics.add_metric(name="CouncilReviews", unit="Count", value=len(decisions))
        return replace(draft, text=output), tail if output == draft.text else ""

    async def _work_and_review(
        self, claim: Claim, stream: Streamer, lord: AgentSpec, cap: Decimal, decided: Any
    ) -> tuple[Completion, str, str]:
        """The draft (streamed), the lord's review and at most one revision: the draft's
        completion, its unstreamed tail and the approved text."""
        key, instruction = claim.step_key, claim.inputs.prompt or ""
        draft, tail = await stream(
            task_request(claim.agent, claim.run_input, instruction, claim.inputs.handoffs)
        )
        spent = draft.cost_usd
        output = draft.text
        context = replace(claim.context(), agent_code=lord.code)
        for revision in (False, True):
            _within_cap(key, cap, spent, draft.cost_usd, "the lord's review")
            review = await complete_json(
                self._model,
                review_request(
                    lord, claim.run_input, instruction, claim.agent, output, revision=revision
                ),
                context,
            )
            spent += review.completion.cost_usd
            verdict, reasons = review.value["verdict"], list(review.value["reasons"])
            if verdict == "approve":
                decided(
                    DecisionKind.APPROVAL,
                    f"{lord.code} approved {claim.agent.code}'s "
                    + ("revision." if revision else "output."),
                    agent=claim.agent.code,
                    revision=revision,
                    spent_usd=float(spent),
                    cap_usd=float(cap),
                )
                break
            decided(
                DecisionKind.REJECTION,
                f"{lord.code} sent {claim.agent.code}'s "
                + ("revision" if revision else "output")
                + " back: "
                + ("; ".join(reasons) or "no reason given"),
                agent=claim.agent.code,
                revision=revision,
                reasons=reasons,
            )
            if revision:
                raise Conflict(
                    f"{lord.code} rejected the revision of {key!r}: {'; '.join(reasons)}"
                )
            _within_cap(key, cap, spent, draft.cost_usd, "a revision")
            revised = await self._model.complete(
                task_request(
                    claim.agent,
                    claim.run_input,
                    instruction,
                    claim.inputs.handoffs,
                    draft=output,
                    reasons=reasons,
                ),
                claim.context(),
            )
            spent += revised.cost_usd
            output = revised.text
        return draft, tail, output

    async def _record_now(self, workspace_id: UUID, decisions: Sequence[Decision]) -> None:
        """Decisions of an attempt that fails (its outcome records no `follow`)."""
        if decisions:
            async with self._uow.system("record the council's decisions") as tx:
                await tx.campaigns.record(workspace_id, decisions)

    async def follow(
        self,
        tx: Tx,
        graph: RunGraph,
        claim: Claim,
        completion: Completion,
        question: str | None,
    ) -> Sequence[NewStep]:
        decisions = self._decided.pop((claim.run_id, claim.step_key, claim.attempt), [])
        await tx.campaigns.record(claim.workspace_id, decisions)
        return ()


def _within_cap(key: str, cap: Decimal, spent: Decimal, call: Decimal, what: str) -> None:
    """A task's calls stay within its cap: another call (about as dear as the draft) must
    fit what is left of it."""
    if spent + call > cap:
        raise BudgetExceeded(
            f"Task {key!r} has spent USD {spent:.4f} of its USD {cap} cap: no room for {what}."
        )
