"""Memories, the personal assistant's hybrid ranking, and document chunking. No I/O."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from guildstack.domain.jobs import DocumentStatus
from guildstack.domain.limits import (
    MAX_DOCUMENT_CHARS,
    MAX_DOCUMENT_TITLE_CHARS,
    MAX_MEMORY_CHARS,
    MAX_QUERY_CHARS,
    MAX_SEARCH_RESULTS,
)
from guildstack.domain.vocabulary import Collection, MemoryScope

__all__ = [
    "SHARED_COLLECTIONS",
    "document_scope",
    "MAX_CONTENT_CHARS",
    "MAX_DOCUMENT_CHARS",
    "MAX_QUERY_CHARS",
    "MAX_SEARCH_LIMIT",
    "MAX_TITLE_CHARS",
    "WEIGHTS",
    "Collection",
    "Document",
    "Memory",
    "MemoryScope",
    "ScoreParts",
    "SearchHit",
    "VectorProblem",
    "chunk_text",
    "rank",
    "unit_vector",
]

MAX_CONTENT_CHARS = MAX_MEMORY_CHARS
MAX_SEARCH_LIMIT = MAX_SEARCH_RESULTS
MAX_TITLE_CHARS = MAX_DOCUMENT_TITLE_CHARS
# The personal assistant's weights: semantic 50 %, user feedback 25 %, recency 15 %,
# access frequency 10 %.
# What onboarding and campaign briefs learn about the company is the workspace's knowledge,
# shared by every member; a person's chats, uploads and preferences stay their own.
SHARED_COLLECTIONS = frozenset(
    {
        Collection.CODEX_KNOWLEDGE,
        Collection.CAMPAIGN_BRIEFS,
        Collection.COMPETITOR_INTEL,
        Collection.INDUSTRY_RESEARCH,
    }
)


def document_scope(collection: Collection) -> MemoryScope:
    """The scope of the memories a document in `collection` becomes."""
    return MemoryScope.WORKSPACE if collection in SHARED_COLLECTIONS else MemoryScope.USER


WEIGHTS = {"semantic": 0.50, "feedback": 0.25, "recency": 0.15, "frequency": 0.10}
RECENCY_HALF_LIFE_DAYS = 30.0
FREQUENCY_SATURATION = 100  # this many accesses count fully


@dataclass(frozen=True)
class Memory:
    id: UUID
    workspace_id: UUID
    scope: MemoryScope
    owner_id: UUID | None
    collection: Collection
    content: str
    metadata: Mapping[str, Any]
    embedding_model: str
    confidence: float
    feedback_score: int
    access_count: int
    created_at: datetime
    last_accessed_at: datetime | None = None
    document_id: UUID | None = None


@dataclass(frozen=True)
class Candidate:
    """A memory the store found by meaning or by words, with both signals measured."""

    memory: Memory
    similarity: float  # cosine similarity to the query, -1..1
    text_rank: float  # full-text rank (0 when the words did not match)


@dataclass(frozen=True)
class ScoreParts:
    semantic: float
    feedback: float
    recency: float
    frequency: float
    text: float


@dataclass(frozen=True)
class SearchHit:
    memory: Memory
    score: float
    parts: ScoreParts


@dataclass(frozen=True)
class Document:
    id: UUID
    workspace_id: UUID
    owner_id: UUID
    title: str
    status: DocumentStatus
    chunk_count: int
    created_at: datetime
    error: str | None = None
    # Where its chunks are remembered: `documents` for uploads; `core` for a chat exchange
    # the assistant should remember (ingested by the same leased jobs).
    collection: Collection = Collection.DOCUMENTS


class VectorProblem(ValueError):
    """A vector no similarity can be measured against; `kind` names why."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def unit_vector(values: Sequence[float]) -> list[float]:
    """`values` scaled to length 1 (cosine similarity ignores length, so nothing is lost,
    and no stored component can overflow the database's 4-byte floats).

    A vector with a non-finite value, or with no direction at all (every value zero), has
    no defined similarity to anything: its cosine is NaN, which must never reach a score.
    """
    if not all(math.isfinite(v) for v in values):
        raise VectorProblem("not_finite", "embedding has a value that is not a finite number")
    largest = max((abs(v) for v in values), default=0.0)
    if largest == 0.0:
        raise VectorProblem("zero_vector", "embedding has no direction (every value is zero)")
    # Scaled by the largest value first, so squaring cannot overflow.
    scaled = [v / largest for v in values]
    norm = math.sqrt(math.fsum(v * v for v in scaled))
    return [v / norm for v in scaled]


def _finite(value: float) -> float:
    """A signal the store could not measure (NaN, infinite) counts as nothing."""
    return value if math.isfinite(value) else 0.0


def rank(candidates: Sequence[Candidate], now: datetime, limit: int) -> list[SearchHit]:
    """Score each candidate as the personal assistant's design weighs it; keep the best
    `limit`. An undefined similarity (NaN: a vector without direction) scores 0, never 1:
    `min(1.0, nan)` is 1.0, which would rank such a memory first for every query."""
    hits = []
    for c in candidates:
        m = c.memory
        age_days = max(0.0, (now - (m.last_accessed_at or m.created_at)).total_seconds() / 86400)
        similarity, text_rank = _finite(c.similarity), max(0.0, _finite(c.text_rank))
        parts = ScoreParts(
            semantic=max(0.0, min(1.0, similarity)),
            feedback=(math.tanh(m.feedback_score / 3) + 1) / 2,
            recency=0.5 ** (age_days / RECENCY_HALF_LIFE_DAYS),
            frequency=min(1.0, math.log1p(m.access_count) / math.log1p(FREQUENCY_SATURATION)),
            text=text_rank / (1 + text_rank),
        )
        score = (
            WEIGHTS["semantic"] * parts.semantic
            + WEIGHTS["feedback"] * parts.feedback
            + WEIGHTS["recency"] * parts.recency
            + WEIGHTS["frequency"] * parts.frequency
        )
        hits.append(SearchHit(m, round(score, 6), parts))
    hits.sort(key=lambda h: (-h.score, -h.parts.text, str(h.memory.id)))
    return hits[:limit]


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n{2,}")


def chunk_text(text: str, *, size: int = 800, overlap: int = 150) -> list[str]:
    """Chunks of about `size` characters (the embedder reads ~256 tokens), cut at sentence
    ends where possible, each repeating the last `overlap` characters of the one before."""
    text = text.strip()
    if not text:
        return []
    pieces = [p.strip() for p in _SENTENCE_END.split(text) if p.strip()]
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        while len(piece) > size:  # a sentence longer than a chunk is cut by characters
            head, piece = piece[:size], piece[size - overlap :]
            if current:
                chunks.append(current)
                current = ""
            chunks.append(head)
        if current and len(current) + 1 + len(piece) > size:
            chunks.append(current)
            tail = current[-overlap:]
            tail = tail[tail.find(" ") + 1 :] if " " in tail else tail  # start on a word
            current = f"{tail} {piece}" if overlap else piece
        else:
            current = f"{current} {piece}" if current else piece
    if current:
        chunks.append(current)
    return chunks
