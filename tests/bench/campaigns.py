"""Campaign briefs: the council's parallel guilds against the same steps in sequence.

A brief of the offline baseline plan (research and matrix agents side by side, muse
agents on their findings, a guardian on the content, each task a draft and its lord's
review, then the Herald's brief) on the embedded PostgreSQL, every model call taking
200 ms. Parallel: messages are delivered as a worker's event source does (every message
sent is handled at once, side by side). In sequence: the same run, its messages handled
one at a time. Wall time from `generate_brief` (the plan call included) to the brief
landed; queue transport is excluded (messages are handed over in-process). The
CampaignsFunction's cold import is in the cold-import table (`tests.bench.cold_import`).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from guildstack.adapters.models.offline import OfflineProvider
from guildstack.bootstrap import Container
from guildstack.domain.campaigns import ObjectiveType
from guildstack.domain.identity import Principal
from guildstack.domain.models import Completion, ModelRequest, StreamItem
from guildstack.observability import logger
from tests.bench.discussions import Inbox, _actor, _container
from tests.bench.model_call import _workspace
from tests.bench.support import bench_database

MODEL_SECONDS = 0.2
TARGET = 3.0


class Slow(OfflineProvider):
    """The offline provider, each call taking `seconds`."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0

    async def complete(self, model: str, request: ModelRequest) -> Completion:
        await asyncio.sleep(self.seconds)
        self.calls += 1
        return await super().complete(model, request)

    async def stream(self, model: str, request: ModelRequest) -> AsyncIterator[StreamItem]:
        yield await self.complete(model, request)


async def _brief(
    container: Container, inbox: Inbox, actor: Principal, workspace: Any, *, parallel: bool
) -> tuple[float, int]:
    """One brief to its end: wall time (s) and steps."""
    campaign = await container.campaigns.create(
        actor,
        workspace,
        name="Spring launch",
        objective_type=ObjectiveType.AWARENESS,
        positioning={"statement": "The calmest notes app"},
        target_cohorts=["startup founders"],
        budget_usd=Decimal(50),
    )
    started = time.perf_counter()
    run = await container.council.generate_brief(actor, workspace, campaign.id)
    while inbox.messages:
        if parallel:
            wave, inbox.messages = inbox.messages, []
            await asyncio.gather(*(container.step_engine.handle(m) for m in wave))
        else:
            await container.step_engine.handle(inbox.messages.pop(0))
    elapsed = time.perf_counter() - started
    view = await container.campaigns.get(actor, workspace, campaign.id)
    assert view.campaign.brief is not None, "the brief did not land"
    done = await container.runs.get(actor, workspace, run.id)
    return elapsed, len(done.steps)


async def run(url: str, repeats: int) -> dict[str, Any]:
    user, workspace = await _workspace(url)
    actor = _actor(user)
    figures: dict[str, Any] = {"parallel": [], "sequence": []}
    for mode in ("parallel", "sequence"):
        slow, inbox = Slow(MODEL_SECONDS), Inbox()
        container, database = _container(url, slow, inbox)
        try:
            await _brief(container, inbox, actor, workspace, parallel=True)  # warm-up
            for _ in range(repeats):
                slow.calls = 0
                wall, steps = await _brief(
                    container, inbox, actor, workspace, parallel=mode == "parallel"
                )
                figures[mode].append(wall)
                figures["steps"], figures["calls"] = steps, slow.calls
        finally:
            await database.close()
    return figures


def print_tables(figures: dict[str, Any], repeats: int) -> None:
    parallel = statistics.median(figures["parallel"])
    sequence = statistics.median(figures["sequence"])
    speedup = sequence / parallel
    verdict = "meets" if speedup >= TARGET else "misses"
    call_ms = MODEL_SECONDS * 1000
    print(f"### Campaign brief ({repeats} briefs each way, every call {call_ms:.0f} ms)\n")
    print("| steps | model calls | in sequence (s) | parallel guilds (s) | speed-up | target |")
    print("|---:|---:|---:|---:|---:|---|")
    print(
        f"| {figures['steps']} | {figures['calls']} | {sequence:.2f} | {parallel:.2f} |"
        f" {speedup:.2f}x | {verdict} {TARGET:.0f}x |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="briefs to time each way")
    args = parser.parse_args(argv)
    logger.setLevel("ERROR")
    with bench_database() as url:
        figures = asyncio.run(run(url, args.runs))
    print_tables(figures, args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
