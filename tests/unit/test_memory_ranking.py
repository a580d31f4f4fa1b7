"""The hybrid ranking and the vectors it accepts: an undefined similarity never scores."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime

import pytest

from guildstack.domain.memory import (
    Candidate,
    Collection,
    Memory,
    MemoryScope,
    VectorProblem,
    rank,
    unit_vector,
)

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _memory(content: str) -> Memory:
    return Memory(
        id=uuid.uuid4(), workspace_id=uuid.uuid4(), scope=MemoryScope.USER, owner_id=uuid.uuid4(),
        collection=Collection.CORE, content=content, metadata={}, embedding_model="m",
        confidence=1.0, feedback_score=0, access_count=0, created_at=NOW,
    )  # fmt: skip


@pytest.mark.parametrize("similarity", [math.nan, math.inf, -math.inf])
def test_given_an_undefined_similarity_then_it_counts_as_no_similarity(similarity: float) -> None:
    planted = Candidate(_memory("planted"), similarity, 0.0)
    relevant = Candidate(_memory("relevant"), 0.6, 0.0)

    hits = rank([planted, relevant], NOW, 2)

    assert [h.memory.content for h in hits] == ["relevant", "planted"]
    assert hits[1].parts.semantic == 0.0
    assert all(math.isfinite(h.score) for h in hits)


def test_given_a_nan_text_rank_then_the_score_stays_finite() -> None:
    (hit,) = rank([Candidate(_memory("x"), 0.5, math.nan)], NOW, 1)
    assert hit.parts.text == 0.0 and math.isfinite(hit.score)


def test_given_a_vector_then_it_is_scaled_to_length_one() -> None:
    assert unit_vector([3.0, 4.0]) == pytest.approx([0.6, 0.8])
    huge = unit_vector([1e308, 1e308])  # squaring would overflow
    assert huge == pytest.approx([math.sqrt(0.5)] * 2)


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([0.0, 0.0, 0.0], "zero_vector"),
        ([-0.0, 0.0], "zero_vector"),
        ([math.nan, 1.0], "not_finite"),
        ([math.inf, 1.0], "not_finite"),
    ],
)
def test_given_a_vector_without_a_direction_then_the_problem_is_named(
    values: list[float], kind: str
) -> None:
    with pytest.raises(VectorProblem) as caught:
        unit_vector(values)
    assert caught.value.kind == kind
