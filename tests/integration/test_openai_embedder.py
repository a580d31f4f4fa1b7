"""The OpenAI embedder with the real `openai` SDK over its wire format (httpx2 transport)."""

from __future__ import annotations

import json

import pytest

from guildstack.adapters.embeddings.openai import OpenAIEmbedder
from guildstack.domain.errors import ProviderUnavailable
from tests.fakes import wire
from tests.fakes.wire import ScriptedTransport


async def test_given_texts_then_one_vector_each_in_input_order_at_the_columns_size() -> None:
    vectors = [[0.1] * 384, [0.2] * 384]
    transport = ScriptedTransport([wire.openai_embeddings(vectors)])
    embedder = OpenAIEmbedder("sk-test", http_client=transport.client())

    result = await embedder.embed(["first", "second"])

    assert result == vectors
    sent = json.loads(transport.requests[0].content)
    assert (sent["model"], sent["input"], sent["dimensions"]) == (
        "text-embedding-3-small",
        ["first", "second"],
        384,
    )
    assert transport.requests[0].url.path.endswith("/embeddings")
    assert embedder.model_id == "openai/text-embedding-3-small@384"


async def test_given_nothing_to_embed_then_no_request() -> None:
    transport = ScriptedTransport([wire.status(500)])
    assert await OpenAIEmbedder("sk-test", http_client=transport.client()).embed([]) == []
    assert transport.requests == []


async def test_given_the_provider_fails_then_provider_unavailable() -> None:
    transport = ScriptedTransport([wire.status(500)])
    embedder = OpenAIEmbedder("sk-test", max_retries=0, http_client=transport.client())
    with pytest.raises(ProviderUnavailable):
        await embedder.embed(["x"])
