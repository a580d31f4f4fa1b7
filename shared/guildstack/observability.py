"""The one Powertools Logger, Metrics and Tracer every function uses.

Never log prompts, completions, tokens or secrets at INFO.

The Tracer is built on first use, not at import: Powertools' Tracer loads the X-Ray SDK
and botocore (about 0.8 s here), which would dominate an API function's cold import.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

SERVICE = "guildstack"
NAMESPACE = "Guildstack"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


@lru_cache(maxsize=1)
def get_tracer() -> Tracer:
    """The process's Tracer, created on first use."""
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE)


def call_metrics(
    dimensions: Mapping[str, str],
    *,
    ok: bool,
    tokens: int = 0,
    cost_usd: Decimal = Decimal(0),
    latency_ms: float = 0.0,
) -> None:
    """One model call's metrics as one EMF record with its own (bounded) `agent`, `model`
    and `guild` dimensions plus `outcome` (`ok` or `error`): calls, tokens, cost in
    micro-dollars, latency. Written at once, apart from the invocation's other metrics,
    whose dimensions are the same for the whole invocation."""
    record = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    for name, value in dimensions.items():
        record.add_dimension(name=name, value=value)
    record.add_dimension(name="outcome", value="ok" if ok else "error")
    record.add_metric(name="ModelCalls", unit="Count", value=1)
    if ok:
        record.add_metric(name="ModelTokens", unit="Count", value=tokens)
        record.add_metric(name="ModelCostMicroUsd", unit="Count", value=float(cost_usd * 1_000_000))
        record.add_metric(name="ModelLatency", unit="Milliseconds", value=latency_ms)
    record.flush_metrics()


def cache_metric(cache_type: str, *, hit: bool) -> None:
    """A cache read's outcome (`CacheHits` or `CacheMisses`) with its `cache_type`."""
    record = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    record.add_dimension(name="cache_type", value=cache_type)
    record.add_metric(name="CacheHits" if hit else "CacheMisses", unit="Count", value=1)
    record.flush_metrics()
