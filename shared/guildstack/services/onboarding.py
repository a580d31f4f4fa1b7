"""The 12-step onboarding as a run of kind `onboarding`: start it (or resume the failed one,
keeping what succeeded), follow its progress per step, and read the company codex it
leaves. `OnboardingSteps` is the kind's executor: each step answers in a fixed structure
(summary and findings), and its findings are queued into the step's memory collection
(codex knowledge, industry research, competitor intel, user preferences) in the
transaction that records the step."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from guildstack.domain.authorization import Action
from guildstack.domain.cache import CacheType
from guildstack.domain.errors import Conflict, InvalidInput
from guildstack.domain.identity import Principal
from guildstack.domain.jobs import JobMessage
from guildstack.domain.models import ChatMessage, Completion, ModelRequest
from guildstack.domain.onboarding import (
    BY_KEY,
    ONBOARDING_STEPS,
    STEP_SCHEMA,
    as_text,
    onboarding_nodes,
)
from guildstack.domain.paging import PageRequest
from guildstack.domain.run_graph import NewStep, RunGraph
from guildstack.domain.runs import Run, Workflow, step_messages
from guildstack.domain.vocabulary import RunKind, RunStatus, StepStatus
from guildstack.observability import metrics
from guildstack.ports.models import LanguageModel
from guildstack.ports.uow import Tx, UnitOfWork
from guildstack.services.access import authorized
from guildstack.services.cache import CacheService
from guildstack.services.engine import Claim, Streamer
from guildstack.services.structured import complete_json

MAX_COMPANY_CHARS = 4000
CODEX_CHARS = 6000
RETRYABLE = frozenset({StepStatus.FAILED, StepStatus.DEAD})


@dataclass(frozen=True)
class Progress:
    run: Run | None

    def as_json(self) -> dict[str, Any]:
        run = self.run
        steps = []
        for spec in ONBOARDING_STEPS:
            step = run.step(spec.key) if run else None
            output = _parsed(step.output) if step and step.output else None
            steps.append(
                {
                    "key": spec.key,
                    "title": spec.title,
                    "agent": spec.agent,
                    "collection": spec.collection.value,
                    "depends_on": list(spec.depends_on),
                    "status": step.status.value if step else "not_started",
                    "error": step.error if step else None,
                    "output": output,
                }
            )
        done = sum(1 for s in steps if s["status"] == StepStatus.SUCCEEDED.value)
        codex = (
            {s["key"]: s["output"] for s in steps}
            if run and run.status is RunStatus.SUCCEEDED
            else None
        )
        return {
            "run_id": str(run.id) if run else None,
            "company": run.input if run else None,
            "status": run.status.value if run else "not_started",
            "completed_steps": done,
            "total_steps": len(steps),
            "steps": steps,
            "codex": codex,
        }


def _parsed(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return {"summary": text, "findings": []}


async def latest_onboarding(tx: Tx, workspace_id: UUID) -> Run | None:
    page = await tx.runs.list_runs(workspace_id, PageRequest(limit=1), None, RunKind.ONBOARDING)
    if not page.items:
        return None
    return await tx.runs.get(workspace_id, page.items[0].id)


def _codex_of(run: Run) -> str | None:
    """The company codex (a completed onboarding's summaries) as context for campaign
    work."""
    parts = []
    for spec in ONBOARDING_STEPS:
        step = run.step(spec.key)
        if step and step.output:
            parts.append(f"{spec.title}: {_parsed(step.output).get('summary', '')}")
    return "\n".join(parts)[:CODEX_CHARS] or None


class Codex:
    """The company codex, read through the cache (`codex`, keyed by the completed
    onboarding it comes from: a later onboarding is a new key, nothing goes stale)."""

    def __init__(self, uow: UnitOfWork, cache: CacheService | None) -> None:
        self._uow = uow
        self._cache = cache

    async def text(self, tx: Tx, workspace_id: UUID) -> str | None:
        """Inside the caller's transaction (access already checked)."""
        page = await tx.runs.list_runs(
            workspace_id, PageRequest(limit=1), RunStatus.SUCCEEDED, RunKind.ONBOARDING
        )
        if not page.items:
            return None
        run_id = page.items[0].id
        found = None
        if self._cache is not None:
            found = await self._cache.lookup(CacheType.CODEX, workspace_id, str(run_id))
            if found.value is not None:
                return found.value or None
        text = _codex_of(await tx.runs.get(workspace_id, run_id))
        if self._cache is not None and found is not None:
            await self._cache.store(
                CacheType.CODEX, workspace_id, str(run_id), text or "", found.generation
            )
        return text

    async def warm(self, workspace_id: UUID) -> bool:
        """Pre-fill the workspace's codex (the hourly warm-up, as the system); whether it
        has one."""
        async with self._uow.system("warm the codex") as tx:
            return await self.text(tx, workspace_id) is not None


class OnboardingService:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def start(self, actor: Principal, workspace_id: UUID, company: str) -> tuple[Run, bool]:
        """A new onboarding run, or (when the last one failed) that run resumed: its failed
        steps run again, what succeeded is kept. 409 while one is in progress. Returns the
        run and whether it was resumed."""
        company = company.strip()
        if not company or len(company) > MAX_COMPANY_CHARS or "\x00" in company:
            raise InvalidInput(
                "company must be 1 to 4000 characters.",
                [{"loc": ["body", "company"], "msg": "bad length", "type": "value_error"}],
            )
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.STEER_CAMPAIGN)
            last = await latest_onboarding(tx, workspace_id)
            if last is not None and not last.status.finished:
                raise Conflict(f"The onboarding is in progress (run {last.id}).")
            if last is not None and last.status is RunStatus.FAILED:
                async with tx.runs.locked(workspace_id, last.id) as graph:
                    for key, step in graph.steps.items():
                        if step.status in RETRYABLE:
                            graph.retry(key, now=tx.now)
                metrics.add_metric(name="OnboardingsResumed", unit="Count", value=1)
                return await tx.runs.get(workspace_id, last.id), True
            workflow = Workflow(
                RunKind.ONBOARDING, f"Onboarding: {company}"[:200], company, onboarding_nodes()
            )
            graph = RunGraph.start(workspace_id, actor.user_id, workflow, now=tx.now)
            run = await tx.runs.add(graph)
        metrics.add_metric(name="OnboardingsStarted", unit="Count", value=1)
        return run, False

    async def progress(self, actor: Principal, workspace_id: UUID) -> Progress:
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)
            return Progress(await latest_onboarding(tx, workspace_id))


class OnboardingSteps:
    """The executor of `onboarding` runs (see the module's docstring)."""

    asks = False

    def __init__(self, model: LanguageModel) -> None:
        self._model = model

    def prepare(self, claim: Claim) -> None:
        return None

    async def execute(self, claim: Claim, stream: Streamer) -> tuple[Completion, str]:
        spec, agent = BY_KEY[claim.step_key], claim.agent
        prompt = step_messages(
            f"Onboard this company:\n{claim.run_input}", claim.inputs.prompt, claim.inputs.handoffs
        )
        request = ModelRequest(
            system=agent.system_prompt,
            messages=(ChatMessage("user", f"{prompt}\n\n# Step\n{spec.title}"),),
            tier=agent.model_tier,
            temperature=0.3,
            max_tokens=min(agent.max_tokens, 2048),
            json_schema=STEP_SCHEMA,
        )
        result = await complete_json(self._model, request, claim.context())
        return replace(result.completion, text=json.dumps(result.value)), ""

    async def follow(
        self,
        tx: Tx,
        graph: RunGraph,
        claim: Claim,
        completion: Completion,
        question: str | None,
    ) -> Sequence[NewStep]:
        spec = BY_KEY[claim.step_key]
        if claim.created_by is not None:
            document = await tx.documents.create(
                claim.workspace_id,
                f"Onboarding: {spec.title}",
                as_text(spec.title, json.loads(completion.text)),
                owner_id=claim.created_by,
                collection=spec.collection,
            )
            tx.send(JobMessage.document(claim.workspace_id, document.id))
        return ()
