"""OpenAI embeddings (`text-embedding-3-small`, shortened to the column's dimensions)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from guildstack.adapters.models.errors import vendor_errors
from guildstack.domain.errors import ProviderUnavailable


class OpenAIEmbedder:
    def __init__(
        self,
        api_key: str,
        *,
        model: str = "text-embedding-3-small",
        dimensions: int = 384,
        timeout_seconds: float = 30.0,
        max_retries: int = 2,
        http_client: Any = None,
    ) -> None:
        self.dimensions = dimensions
        self.model_id = f"openai/{model}@{dimensions}"
        self._model = model
        self._api_key = api_key
        self._timeout = timeout_seconds
        self._http_client = http_client
        self._max_retries = max_retries
        self._client: Any = None

    def forget_connections(self) -> None:
        """Drop the SDK client and its connections (made again on first use)."""
        self._client = None

    def _sdk(self) -> Any:
        if self._client is None:
            from openai import AsyncOpenAI

            kwargs: dict[str, Any] = {"api_key": self._api_key, "timeout": self._timeout}
            if self._http_client is not None:
                kwargs["http_client"] = self._http_client
            self._client = AsyncOpenAI(max_retries=self._max_retries, **kwargs)
        return self._client

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        with vendor_errors(_unavailable):
            response = await self._sdk().embeddings.create(
                model=self._model, input=list(texts), dimensions=self.dimensions
            )
        ordered = sorted(response.data, key=lambda item: item.index)
        return [list(item.embedding) for item in ordered]


def _unavailable(exc: Exception) -> ProviderUnavailable:
    return ProviderUnavailable(f"The embedding provider failed ({type(exc).__name__}).")
