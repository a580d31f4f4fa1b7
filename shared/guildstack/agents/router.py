"""`AgentRouter`: which specialists a chat message needs, decided by a fast model call with
a JSON schema; keyword routing decides instead when the model cannot (a timeout, invalid
output, no provider answering or every circuit open, or the offline provider, whose JSON
is a placeholder). Every decision says how it was made, by which model and how long it took.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from guildstack.domain.agents import AgentSpec
from guildstack.domain.errors import InvalidModelOutput, ProviderUnavailable
from guildstack.domain.models import OFFLINE, CallContext, ChatMessage, ModelRequest, TaskType
from guildstack.domain.routing import (
    CORE_AGENT,
    RoutedAgent,
    RoutingDecision,
    RoutingMethod,
    merge_explicit,
    route_by_keywords,
)
from guildstack.observability import logger, metrics
from guildstack.ports.models import LanguageModel
from guildstack.services.structured import complete_json

MAX_SPECIALISTS = 3
ROUTING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "agents": {
            "type": "array",
            "maxItems": 6,
            "items": {
                "type": "object",
                "properties": {
                    "code": {"type": "string", "minLength": 1, "maxLength": 64},
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                },
                "required": ["code", "confidence"],
            },
        }
    },
    "required": ["agents"],
}
_INSTRUCTIONS = (
    "You route one message of a chat to the specialists who should help answer it. The core "
    "assistant always answers; list only specialists whose expertise the message clearly "
    "needs (often none), each with your confidence from 0 to 1. Use only the codes listed."
)


class AgentRouter:
    def __init__(
        self,
        model: LanguageModel,
        *,
        timeout_seconds: float = 2.0,
        core: str = CORE_AGENT,
        clock: Callable[[], float] = time.perf_counter,
        model_routing: bool = True,
    ) -> None:
        self._model = model
        # False when only the offline provider is configured: its answer would be thrown
        # away for keywords anyway, so it is not asked (nor metered).
        self._model_routing = model_routing
        self._timeout = timeout_seconds
        self._core = core
        self._clock = clock

    async def route(
        self,
        message: str,
        candidates: Sequence[AgentSpec],
        context: CallContext,
        *,
        explicit: Sequence[str] = (),
    ) -> RoutingDecision:
        """The agents for `message`: the client's picks when it names some, else the
        routing model's, else keywords'. `BudgetExceeded` passes through (a turn the
        budget cannot pay for is refused before any provider request)."""
        started = self._clock()
        if explicit:
            return merge_explicit(explicit, candidates, self._core)
        specialists = [c for c in candidates if c.code != self._core]
        if not specialists:
            return self._fallback(message, candidates, started, "no specialists")
        if not self._model_routing:
            return self._fallback(message, candidates, started, "offline provider")
        try:
            async with asyncio.timeout(self._timeout):
                result = await complete_json(
                    self._model, self._request(message, specialists), context
                )
        except TimeoutError:
            return self._fallback(message, candidates, started, "timeout")
        except (InvalidModelOutput, ProviderUnavailable) as exc:
            return self._fallback(message, candidates, started, type(exc).__name__)
        completion = result.completion
        if completion.provider == OFFLINE:
            return self._fallback(message, candidates, started, "offline provider")
        known = {c.code for c in specialists}
        picked = _picked(result.value, known)
        metrics.add_metric(name="RoutedByModel", unit="Count", value=1)
        return RoutingDecision(
            RoutingMethod.MODEL,
            (*picked, RoutedAgent(self._core, 1.0)),
            round((self._clock() - started) * 1000, 3),
            f"{completion.provider}/{completion.model}",
        )

    def _request(self, message: str, specialists: Sequence[AgentSpec]) -> ModelRequest:
        roster = "\n".join(f"- {s.code}: {s.description}" for s in specialists)
        return ModelRequest(
            system=f"{_INSTRUCTIONS}\n\nSpecialists:\n{roster}",
            messages=(ChatMessage("user", message[:4000]),),
            task_type=TaskType.ROUTING,
            temperature=0,
            max_tokens=300,
            json_schema=ROUTING_SCHEMA,
        )

    def _fallback(
        self, message: str, candidates: Sequence[AgentSpec], started: float, why: str
    ) -> RoutingDecision:
        logger.info("routing by keywords", extra={"why": why})
        metrics.add_metric(name="RoutedByKeywords", unit="Count", value=1)
        decision = route_by_keywords(message, candidates, core=self._core)
        return RoutingDecision(
            decision.method,
            decision.agents,
            round((self._clock() - started) * 1000, 3),
            None,
        )


def _picked(value: Any, known: set[str]) -> tuple[RoutedAgent, ...]:
    """The model's picks that are real specialists, best first, at most three; unknown codes
    (and repeats) are dropped, confidences clamped into (0, 1]."""
    best: dict[str, float] = {}
    for item in value.get("agents", []) if isinstance(value, dict) else []:
        code, confidence = item.get("code"), item.get("confidence")
        if code in known and isinstance(confidence, int | float) and confidence > 0:
            best[code] = max(best.get(code, 0.0), min(float(confidence), 1.0))
    ranked = sorted(best.items(), key=lambda pair: (-pair[1], pair[0]))[:MAX_SPECIALISTS]
    return tuple(RoutedAgent(code, round(conf, 3)) for code, conf in ranked)
