"""Named, versioned workflow templates: a plain run's nodes ready to start on an input, or
an area's own kind of run (the onboarding, a campaign's brief). No I/O."""

from __future__ import annotations

from dataclasses import dataclass

from guildstack.domain.runs import Node, Workflow
from guildstack.domain.vocabulary import RunKind


@dataclass(frozen=True)
class WorkflowTemplate:
    name: str
    version: int
    title: str
    description: str
    kind: RunKind
    nodes: tuple[Node, ...]

    def workflow(self, input_: str, title: str | None = None) -> Workflow:
        """The run of a plain template on `input_` (`{input}` in prompts replaced)."""
        nodes = tuple(
            Node(
                n.key,
                n.agent,
                n.prompt.replace("{input}", input_) if n.prompt else None,
                n.depends_on,
                n.requires_approval,
                n.on_reject,
            )
            for n in self.nodes
        )
        return Workflow(self.kind, title or f"{self.title} (v{self.version})", input_, nodes)
