"""Workflow validation and the run-status rule (domain, no I/O)."""

from __future__ import annotations

import pytest

from guildstack.domain.errors import InvalidWorkflow
from guildstack.domain.runs import (
    MAX_INPUT_CHARS,
    Handoff,
    Node,
    RunKind,
    RunStatus,
    StepStatus,
    Workflow,
    parse_question,
    run_status_of,
    step_messages,
)

AGENTS = {"a", "b", "c"}


def flow(kind: RunKind, *nodes: Node, text: str = "goal") -> Workflow:
    return Workflow(kind, "t", text, nodes)


def problems(workflow: Workflow) -> list[str]:
    with pytest.raises(InvalidWorkflow) as caught:
        workflow.validated(AGENTS)
    return [p["type"] for p in caught.value.errors]


def test_given_a_diamond_dag_then_it_validates_unchanged() -> None:
    nodes = (
        Node("A", "a"),
        Node("B", "b", depends_on=("A",)),
        Node("C", "c", depends_on=("A",)),
        Node("D", "a", depends_on=("B", "C")),
    )
    assert flow(RunKind.DAG, *nodes).validated(AGENTS).nodes == nodes


def test_given_a_pipeline_then_each_node_depends_on_the_one_before() -> None:
    valid = flow(RunKind.PIPELINE, Node("x", "a"), Node("y", "b"), Node("z", "c")).validated(AGENTS)
    assert [n.depends_on for n in valid.nodes] == [(), ("x",), ("y",)]


@pytest.mark.parametrize(
    ("workflow", "expected"),
    [
        (flow(RunKind.DAG), "empty_workflow"),
        (flow(RunKind.DAG, Node("A", "a"), Node("A", "b")), "duplicate_key"),
        (flow(RunKind.DAG, Node("A", "nobody")), "unknown_agent"),
        (flow(RunKind.DAG, Node("A", "a", depends_on=("Z",))), "dangling_dependency"),
        (flow(RunKind.DAG, Node("A", "a", depends_on=("A",))), "cycle"),
        (
            flow(
                RunKind.DAG,
                Node("A", "a", depends_on=("C",)),
                Node("B", "b", depends_on=("A",)),
                Node("C", "c", depends_on=("B",)),
            ),
            "cycle",
        ),
        (flow(RunKind.DAG, Node("A", "a"), text="x" * (MAX_INPUT_CHARS + 1)), "input_too_large"),
        (flow(RunKind.SINGLE, Node("A", "a"), Node("B", "b")), "kind_mismatch"),
        (
            flow(RunKind.PARALLEL, Node("A", "a"), Node("B", "b", depends_on=("A",))),
            "kind_mismatch",
        ),
        (flow(RunKind.DAG, Node("9bad", "a")), "bad_key"),
        (flow(RunKind.CHAT, Node("A", "a")), "kind_mismatch"),
    ],
)
def test_given_an_invalid_workflow_then_the_problem_is_named(
    workflow: Workflow, expected: str
) -> None:
    assert expected in problems(workflow)


def test_given_a_cycle_then_the_message_shows_its_path() -> None:
    workflow = flow(
        RunKind.DAG, Node("A", "a", depends_on=("B",)), Node("B", "b", depends_on=("A",))
    )
    with pytest.raises(InvalidWorkflow, match="A → B → A|B → A → B"):
        workflow.validated(AGENTS)


S = StepStatus


@pytest.mark.parametrize(
    ("current", "steps", "expected"),
    [
        (RunStatus.QUEUED, [S.QUEUED, S.PENDING], RunStatus.QUEUED),
        (RunStatus.QUEUED, [S.RUNNING, S.QUEUED], RunStatus.RUNNING),
        (RunStatus.FAILED, [S.QUEUED, S.PENDING], RunStatus.RUNNING),
        (RunStatus.RUNNING, [S.DEAD, S.RUNNING], RunStatus.RUNNING),
        (RunStatus.RUNNING, [S.DEAD, S.SUCCEEDED, S.PENDING], RunStatus.FAILED),
        (RunStatus.RUNNING, [S.SUCCEEDED, S.SKIPPED], RunStatus.SUCCEEDED),
        (RunStatus.RUNNING, [S.SUCCEEDED, S.WAITING_APPROVAL], RunStatus.WAITING_APPROVAL),
        (RunStatus.RUNNING, [S.WAITING_INPUT, S.WAITING_APPROVAL], RunStatus.WAITING_INPUT),
        (RunStatus.CANCELLED, [S.RUNNING], RunStatus.CANCELLED),
    ],
)
def test_run_status_follows_its_steps(
    current: RunStatus, steps: list[StepStatus], expected: RunStatus
) -> None:
    assert run_status_of(current, steps) is expected


def test_given_a_question_line_then_it_is_the_question() -> None:
    assert parse_question("QUESTION: Which market first?") == "Which market first?"
    assert parse_question("  question:  Budget?  ") == "Budget?"
    assert parse_question("Here is the plan. QUESTION: none") is None
    assert parse_question("QUESTION:") is None


def test_step_messages_carry_goal_task_handoffs_and_answers() -> None:
    text = step_messages(
        "Launch",
        "Merge the plans.",
        [Handoff("B", "design_agent", "Design notes"), Handoff("C", "seo_agent", "Keywords")],
        [("Which market?", "Germany")],
    )
    for part in ("Launch", "Merge the plans.", "Design notes", "Keywords", "Germany"):
        assert part in text
    assert text.index("Design notes") < text.index("Keywords")
