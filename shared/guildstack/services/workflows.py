"""Workflow templates: list them, start one on an input. A plain template becomes a run of
its kind (the caller needs the role any run needs); the onboarding's and the brief's are
started by their areas, with those areas' rules (the brief's input is the campaign's id)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from uuid import UUID

from guildstack.domain.authorization import Action
from guildstack.domain.errors import InvalidInput
from guildstack.domain.identity import Principal
from guildstack.domain.runs import Run
from guildstack.domain.vocabulary import RunKind
from guildstack.domain.workflows import WorkflowTemplate
from guildstack.ports.uow import UnitOfWork
from guildstack.services.access import authorized
from guildstack.services.council import CouncilService
from guildstack.services.onboarding import OnboardingService
from guildstack.services.runs import RunService


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(message, [{"loc": ["body", field], "msg": message, "type": "value_error"}])


class WorkflowTemplates:
    def __init__(
        self,
        uow: UnitOfWork,
        templates: Sequence[WorkflowTemplate],
        runs: RunService,
        onboarding: OnboardingService,
        council: CouncilService,
    ) -> None:
        self._uow = uow
        self._templates = {t.name: t for t in templates}
        self._runs = runs
        self._onboarding = onboarding
        self._council = council

    def all(self) -> list[WorkflowTemplate]:
        return list(self._templates.values())

    async def check_member(self, actor: Principal, workspace_id: UUID) -> None:
        """Templates are listed to the workspace's members (404 for anyone else)."""
        async with self._uow(actor) as tx:
            await authorized(tx, workspace_id, Action.VIEW)

    async def start(
        self,
        actor: Principal,
        workspace_id: UUID,
        name: str,
        input_: str,
        *,
        budget_usd: Decimal | None = None,
    ) -> Run:
        template = self._templates.get(name)
        if template is None:
            known = ", ".join(sorted(self._templates))
            raise _invalid("template", f"unknown template {name!r}; known: {known}")
        if template.kind is RunKind.ONBOARDING:
            run, _ = await self._onboarding.start(actor, workspace_id, input_)
            return run
        if template.kind is RunKind.CAMPAIGN_BRIEF:
            try:
                campaign_id = UUID(input_.strip())
            except ValueError:
                raise _invalid("input", "the brief's input is the campaign's id") from None
            return await self._council.generate_brief(actor, workspace_id, campaign_id)
        workflow = template.workflow(input_)
        if budget_usd is not None:
            workflow = replace(workflow, budget_usd=budget_usd)
        return await self._runs.start(actor, workspace_id, workflow)
