"""The one Powertools Logger, Metrics and Tracer every function uses.

Never log prompts, completions, tokens or secrets at INFO.

The Tracer is built on first use, not at import: Powertools' Tracer loads the X-Ray SDK
and botocore (about 0.8 s here), which would dominate an API function's cold import.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics

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
