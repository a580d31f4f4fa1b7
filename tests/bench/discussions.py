"""Team discussions: what the engine adds to a turn, and how much the votes' parallelism
saves on a whole discussion.

1. Engine overhead per turn (offline model): whole discussions of the five-persona team
   run through `StepEngine.handle` on the embedded PostgreSQL — each turn's claim, the
   persona's request built from the conversation, the call, and the outcome transaction
   that records the turn as a message and adds the next turns — divided by their turns,
   minus the offline model's own time.
2. A five-persona discussion of four rounds (quality assurance rejects the first three
   proposals; unanimity is the rule) whose every model call takes 200 ms: its wall time
   beside the sum of its calls. Messages are delivered as a worker's event source does:
   every message sent is handled at once, side by side, so a proposal's five votes run
   together. Queue transport is excluded (the messages are handed over in-process).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from guildstack.adapters.models.offline import OfflineProvider
from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.bootstrap import Container, build
from guildstack.config import Settings
from guildstack.domain.identity import Principal
from guildstack.domain.jobs import JobMessage
from guildstack.domain.models import Completion, ModelRequest, StreamItem
from guildstack.domain.vocabulary import ConversationMode
from guildstack.observability import logger
from tests.bench.model_call import _workspace
from tests.bench.support import bench_database

MODEL_SECONDS = 0.2
PERSONAS = [
    "project_manager",
    "technical_architect",
    "creative_strategist",
    "quality_assurance",
    "resource_coordinator",
]


@dataclass
class Inbox:
    """The step queue, in-process: what was sent, to be handled."""

    messages: list[JobMessage] = field(default_factory=list)

    async def send(self, messages: Sequence[JobMessage], *, delay_seconds: int = 0) -> None:
        self.messages.extend(messages)

    async def delay(self, receipt_handle: str, seconds: int) -> None:
        return None


class Timed(OfflineProvider):
    """The offline provider, each call taking `seconds` and timed; quality assurance
    rejects any proposal before the fourth."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls: list[float] = []
        self.proposals = 0

    async def complete(self, model: str, request: ModelRequest) -> Completion:
        started = time.perf_counter()
        await asyncio.sleep(self.seconds)
        completion = await super().complete(model, request)
        prompt = request.messages[-1].content if request.messages else ""
        if (
            request.json_schema is not None
            and "vote" in request.json_schema.get("properties", {})
            and "quality assurance" in request.system.lower()
            and "Plan 4" not in prompt
        ):
            completion = Completion(
                '{"vote": "reject", "reason": "not yet", "confidence": 0.9}',
                completion.usage, completion.provider, completion.model, completion.latency_ms,
            )  # fmt: skip
        elif request.json_schema is not None and "title" in request.json_schema.get(
            "properties", {}
        ):
            self.proposals += 1
            number = self.proposals
            completion = Completion(
                f'{{"title": "Plan {number}", "body": "Ship the beta to 100 readers, v{number}."}}',
                completion.usage, completion.provider, completion.model, completion.latency_ms,
            )  # fmt: skip
        self.calls.append(time.perf_counter() - started)
        return completion

    async def stream(self, model: str, request: ModelRequest) -> AsyncIterator[StreamItem]:
        completion = await self.complete(model, request)
        yield completion


async def _discussion(
    container: Container, inbox: Inbox, actor: Principal, workspace: uuid.UUID, **settings: Any
) -> tuple[float, int]:
    """Run one discussion to its end; its wall time (s) and turns."""
    conversation = await container.conversations.create(
        actor,
        workspace,
        mode=ConversationMode.DISCUSSION,
        goal="How do we launch the beta of our reading app?",
        agents=PERSONAS,
        settings={"summary_every": 50, **settings},
    )
    started = time.perf_counter()
    await container.discussions.start(actor, workspace, conversation.id)
    while inbox.messages:
        wave, inbox.messages = inbox.messages, []
        await asyncio.gather(*(container.step_engine.handle(m) for m in wave))
    elapsed = time.perf_counter() - started
    done = await container.conversations.get(actor, workspace, conversation.id)
    assert done.status.value == "completed" and done.result, done
    turns = int(done.result.get("turns", 0))
    return elapsed, turns


def _container(url: str, model: OfflineProvider, inbox: Inbox) -> tuple[Container, Any]:
    database = PostgresDatabase(url, max_size=8)
    settings = Settings(stage="test", database_url=SecretStr(url), steps_queue_url="in-process")
    container = build(
        settings, database=database, step_queue=inbox, model_providers={"offline": model}
    )
    return container, database


def _actor(user: uuid.UUID) -> Principal:
    return Principal(user, None, {"sub": str(user), "role": "authenticated"})


async def run(url: str, repeats: int) -> dict[str, Any]:
    user, workspace = await _workspace(url)
    actor = _actor(user)
    offline, inbox = Timed(0.0), Inbox()
    container, database = _container(url, offline, inbox)
    per_turn: list[float] = []
    try:
        await _discussion(container, inbox, actor, workspace)  # warm-up
        for _ in range(repeats):
            offline.calls.clear()
            elapsed, turns = await _discussion(container, inbox, actor, workspace)
            per_turn.append((elapsed - sum(offline.calls)) / turns * 1000)
    finally:
        await database.close()
    slow, inbox = Timed(MODEL_SECONDS), Inbox()
    container, database = _container(url, slow, inbox)
    try:
        await _discussion(container, inbox, actor, workspace)  # warm-up
        slow.calls.clear()
        slow.proposals = 0
        wall, turns = await _discussion(
            container, inbox, actor, workspace, consensus_rule="unanimous", max_rounds=3
        )
    finally:
        await database.close()
    return {
        "per_turn": per_turn,
        "wall": wall,
        "turns": turns,
        "calls": len(slow.calls),
        "sum_calls": sum(slow.calls),
    }


def print_tables(figures: dict[str, Any], repeats: int) -> None:
    per_turn = figures["per_turn"]
    print(f"### Team discussions ({repeats} offline discussions, five personas)\n")
    print("| measure | median | min | max |")
    print("|---|---:|---:|---:|")
    print(
        f"| engine overhead per turn (ms) | {statistics.median(per_turn):.1f} |"
        f" {min(per_turn):.1f} | {max(per_turn):.1f} |"
    )
    wall, total = figures["wall"], figures["sum_calls"]
    print(f"\nFour rounds of proposals and votes, every call {MODEL_SECONDS * 1000:.0f} ms:\n")
    print("| turns | model calls | sum of the calls (s) | wall time (s) | wall / sum |")
    print("|---:|---:|---:|---:|---:|")
    print(
        f"| {figures['turns']} | {figures['calls']} | {total:.2f} | {wall:.2f} |"
        f" {wall / total:.2f} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="offline discussions to time")
    args = parser.parse_args(argv)
    logger.setLevel("ERROR")
    with bench_database() as url:
        figures = asyncio.run(run(url, args.runs))
    print_tables(figures, args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
