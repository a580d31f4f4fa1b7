"""Runs, steps and the rules of a workflow: validation, readiness, run status, step prompts.

No I/O. The step engine (`services.runs`) applies these rules inside its transactions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from guildstack.domain.errors import InvalidWorkflow
from guildstack.domain.limits import MAX_NODES, MAX_PROMPT_CHARS, MAX_RUN_INPUT_CHARS
from guildstack.domain.vocabulary import (
    GateStatus,
    OnReject,
    RunKind,
    RunStatus,
    StepStatus,
)

__all__ = [
    "CLIENT_KINDS",
    "MAX_INPUT_CHARS",
    "MAX_NODES",
    "Approval",
    "Event",
    "GateStatus",
    "Handoff",
    "Node",
    "OnReject",
    "Question",
    "Run",
    "RunKind",
    "RunStatus",
    "Step",
    "StepStatus",
    "Workflow",
    "parse_question",
    "run_status_of",
    "step_messages",
]

MAX_INPUT_CHARS = MAX_RUN_INPUT_CHARS
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")

# Steps that will not change again unless someone retries them.
SETTLED = frozenset({StepStatus.SUCCEEDED, StepStatus.SKIPPED})
FAILED = frozenset({StepStatus.FAILED, StepStatus.DEAD})
# The kinds POST /runs takes; the others are started by their own areas.
CLIENT_KINDS = frozenset({RunKind.SINGLE, RunKind.PIPELINE, RunKind.PARALLEL, RunKind.DAG})


@dataclass(frozen=True)
class Node:
    """One step of a workflow as the client describes it."""

    key: str
    agent: str
    prompt: str | None = None
    depends_on: tuple[str, ...] = ()
    requires_approval: bool = False
    on_reject: OnReject = OnReject.FAIL


@dataclass(frozen=True)
class Workflow:
    kind: RunKind
    title: str
    input: str
    nodes: tuple[Node, ...]
    budget_usd: Decimal | None = None

    def validated(self, known_agents: Iterable[str]) -> Workflow:
        """This workflow with the dependencies its kind implies, or `InvalidWorkflow` naming
        every problem (empty, duplicate keys, unknown agents, dangling edges, cycles, size)."""
        problems: list[dict[str, Any]] = []

        def problem(loc: Sequence[str | int], msg: str, kind: str) -> None:
            problems.append({"loc": ["body", *map(str, loc)], "msg": msg, "type": kind})

        nodes = self.nodes
        if not nodes:
            problem(["nodes"], "a workflow needs at least one node", "empty_workflow")
        if len(nodes) > MAX_NODES:
            problem(["nodes"], f"at most {MAX_NODES} nodes", "too_many_nodes")
        if len(self.input) > MAX_INPUT_CHARS:
            problem(["input"], f"input is over {MAX_INPUT_CHARS} characters", "input_too_large")
        if problems:
            raise _invalid(problems)

        nodes = self._with_implied_dependencies(problem)
        keys = [node.key for node in nodes]
        seen: set[str] = set()
        known = set(known_agents)
        for i, node in enumerate(nodes):
            if not _KEY.match(node.key):
                problem(["nodes", i, "key"], f"bad key {node.key!r}", "bad_key")
            if node.key in seen:
                problem(["nodes", i, "key"], f"duplicate key {node.key!r}", "duplicate_key")
            seen.add(node.key)
            if node.agent not in known:
                problem(["nodes", i, "agent"], f"unknown agent {node.agent!r}", "unknown_agent")
            if node.prompt is not None and len(node.prompt) > MAX_PROMPT_CHARS:
                problem(["nodes", i, "prompt"], "prompt is too long", "prompt_too_large")
            for dep in node.depends_on:
                if dep == node.key:
                    problem(["nodes", i, "depends_on"], f"{dep!r} depends on itself", "cycle")
                elif dep not in keys:
                    problem(
                        ["nodes", i, "depends_on"],
                        f"{node.key!r} depends on unknown node {dep!r}",
                        "dangling_dependency",
                    )
        if not problems:
            cycle = _find_cycle(nodes)
            if cycle:
                problem(["nodes"], "dependency cycle: " + " → ".join(cycle), "cycle")
        if problems:
            raise _invalid(problems)
        return Workflow(self.kind, self.title, self.input, nodes, self.budget_usd)

    def _with_implied_dependencies(self, problem: Any) -> tuple[Node, ...]:
        nodes = self.nodes
        if self.kind not in CLIENT_KINDS:
            problem(["kind"], f"a {self.kind} run is not started through /runs", "kind_mismatch")
        if self.kind is RunKind.SINGLE and len(nodes) != 1:
            problem(["nodes"], "a single run has exactly one node", "kind_mismatch")
        if self.kind in (RunKind.SINGLE, RunKind.PARALLEL):
            for i, node in enumerate(nodes):
                if node.depends_on:
                    problem(
                        ["nodes", i, "depends_on"],
                        f"a {self.kind} run's nodes have no dependencies",
                        "kind_mismatch",
                    )
        if self.kind is RunKind.PIPELINE:
            chained = []
            for i, node in enumerate(nodes):
                implied = (nodes[i - 1].key,) if i else ()
                if node.depends_on and node.depends_on != implied:
                    problem(
                        ["nodes", i, "depends_on"],
                        "a pipeline's node depends on the one before it",
                        "kind_mismatch",
                    )
                chained.append(_replace_deps(node, implied))
            return tuple(chained)
        return nodes


def _replace_deps(node: Node, deps: tuple[str, ...]) -> Node:
    return Node(node.key, node.agent, node.prompt, deps, node.requires_approval, node.on_reject)


def _invalid(problems: list[dict[str, Any]]) -> InvalidWorkflow:
    summary = "; ".join(p["msg"] for p in problems[:5])
    return InvalidWorkflow(f"Invalid workflow: {summary}.", problems)


def _find_cycle(nodes: Sequence[Node]) -> list[str]:
    """One dependency cycle as a path of keys (first key repeated at the end), or []."""
    deps = {node.key: node.depends_on for node in nodes}
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(deps, white)
    for root in deps:
        if color[root] != white:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = []
        while stack:
            key, index = stack.pop()
            if index == 0:
                color[key] = grey
                path.append(key)
            children = deps[key]
            if index < len(children):
                stack.append((key, index + 1))
                child = children[index]
                if color[child] == grey:
                    return [*path[path.index(child) :], child]
                if color[child] == white:
                    stack.append((child, 0))
            else:
                color[key] = black
                path.pop()
    return []


@dataclass(frozen=True)
class Step:
    run_id: UUID
    key: str
    agent_code: str
    status: StepStatus
    depends_on: tuple[str, ...] = ()
    prompt: str | None = None
    requires_approval: bool = False
    on_reject: OnReject = OnReject.FAIL
    attempt: int = 0
    output: str | None = None
    error: str | None = None
    provider: str | None = None
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    lease_until: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True)
class Run:
    id: UUID
    workspace_id: UUID
    created_by: UUID | None
    kind: RunKind
    title: str
    input: str
    status: RunStatus
    created_at: datetime
    updated_at: datetime
    budget_usd: Decimal | None = None
    output: str | None = None
    error: str | None = None
    finished_at: datetime | None = None
    steps: tuple[Step, ...] = field(default=())

    def step(self, key: str) -> Step | None:
        return next((s for s in self.steps if s.key == key), None)


@dataclass(frozen=True)
class Handoff:
    """What a finished step passes to its dependents: markdown plus JSON metadata."""

    step_key: str
    agent_code: str
    content: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Approval:
    id: UUID
    workspace_id: UUID
    run_id: UUID
    step_key: str
    status: GateStatus
    created_at: datetime
    comment: str | None = None
    decided_by: UUID | None = None
    decided_at: datetime | None = None


@dataclass(frozen=True)
class Question:
    id: UUID
    workspace_id: UUID
    run_id: UUID
    step_key: str
    question: str
    status: GateStatus
    created_at: datetime
    answer: str | None = None
    answered_by: UUID | None = None
    answered_at: datetime | None = None


@dataclass(frozen=True)
class Event:
    seq: int
    type: str
    payload: Mapping[str, Any]
    created_at: datetime


def run_status_of(current: RunStatus, steps: Iterable[StepStatus]) -> RunStatus:
    """A run's status from its steps. Cancelled stays cancelled. While any step is queued or
    running the run is running (queued until its first step starts); once nothing is in
    flight, a failed or dead step fails it, else it waits for a person, or it is done."""
    if current is RunStatus.CANCELLED:
        return current
    statuses = list(steps)
    if StepStatus.RUNNING in statuses:
        return RunStatus.RUNNING
    if StepStatus.QUEUED in statuses:
        return RunStatus.QUEUED if current is RunStatus.QUEUED else RunStatus.RUNNING
    if any(s in FAILED for s in statuses):
        return RunStatus.FAILED
    if all(s in SETTLED for s in statuses):
        return RunStatus.SUCCEEDED
    if StepStatus.WAITING_INPUT in statuses:
        return RunStatus.WAITING_INPUT
    if StepStatus.WAITING_APPROVAL in statuses:
        return RunStatus.WAITING_APPROVAL
    return RunStatus.RUNNING


QUESTION_PREFIX = "QUESTION:"
ASKING_INSTRUCTIONS = (
    "You are one step of a larger workflow. If you cannot do your part without information "
    f"only the user has, reply with a single line starting with `{QUESTION_PREFIX}` followed "
    "by your question, and nothing else; you will be asked again with the answer."
)


def parse_question(text: str) -> str | None:
    """The question an agent asked instead of answering, if it did."""
    stripped = text.strip()
    if not stripped.upper().startswith(QUESTION_PREFIX):
        return None
    question = stripped[len(QUESTION_PREFIX) :].strip()
    return question[:4000] or None


def step_messages(
    run_input: str,
    step_prompt: str | None,
    handoffs: Sequence[Handoff],
    answers: Sequence[tuple[str, str]] = (),
    memories: str | None = None,
) -> str:
    """The user message of a step: the run's goal, its own task, what the agent remembers
    about it, every dependency's handoff and the answers the user gave to its questions."""
    parts = [f"# Goal of this run\n{run_input.strip()}"]
    if step_prompt:
        parts.append(f"# Your task\n{step_prompt.strip()}")
    if memories:
        parts.append(f"# What you remember that may help\n{memories.strip()}")
    for handoff in handoffs:
        parts.append(
            f"# Handoff from step `{handoff.step_key}` ({handoff.agent_code})\n"
            f"{handoff.content.strip()}"
        )
    for question, answer in answers:
        parts.append(f"# You asked the user\n{question}\n\n# The user answered\n{answer}")
    return "\n\n".join(parts)
