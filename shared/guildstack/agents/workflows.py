"""Workflow templates (`infra/catalog/workflows.yaml`): parsed and validated with pydantic,
mapped to domain. Loaded on first use, never at import."""

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from guildstack.domain.onboarding import onboarding_nodes
from guildstack.domain.runs import CLIENT_KINDS, Node
from guildstack.domain.vocabulary import RunKind
from guildstack.domain.workflows import WorkflowTemplate

Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,39}$")]
Key = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")]


class TemplateNode(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: Key
    agent: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    prompt: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = None
    depends_on: list[Key] = Field(default_factory=list)


class CatalogWorkflow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    version: Annotated[int, Field(ge=1)]
    title: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    description: Annotated[str, StringConstraints(min_length=20, max_length=600)]
    started_by: Literal["onboarding", "campaign_brief"] | None = None
    kind: RunKind | None = None
    nodes: list[TemplateNode] = Field(default_factory=list)

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if self.started_by is None:
            if self.kind not in CLIENT_KINDS or not self.nodes:
                raise ValueError("a plain template needs a client kind and nodes")
        elif self.kind is not None or self.nodes:
            raise ValueError("a template started by an area takes that area's steps")
        return self


class WorkflowFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    workflows: list[CatalogWorkflow]

    @model_validator(mode="after")
    def _unique(self) -> Self:
        names = [w.name for w in self.workflows]
        if len(names) != len(set(names)):
            raise ValueError("workflow names must be unique")
        return self


@lru_cache(maxsize=4)
def load_workflows(path: Path) -> tuple[WorkflowTemplate, ...]:
    import yaml  # lazily: only the first read pays for it

    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    parsed = WorkflowFile.model_validate(raw)
    templates = []
    for w in parsed.workflows:
        if w.started_by == "onboarding":
            kind, nodes = RunKind.ONBOARDING, onboarding_nodes()
        elif w.started_by == "campaign_brief":
            kind, nodes = RunKind.CAMPAIGN_BRIEF, ()
        else:
            kind = w.kind or RunKind.DAG
            nodes = tuple(Node(n.key, n.agent, n.prompt, tuple(n.depends_on)) for n in w.nodes)
        templates.append(
            WorkflowTemplate(w.name, w.version, w.title, " ".join(w.description.split()), kind,
                             nodes)
        )  # fmt: skip
    return tuple(templates)
