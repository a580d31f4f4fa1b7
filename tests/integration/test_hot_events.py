"""Events reach the hot feed after their transaction commits, exactly as Postgres holds them
(number, type, payload, time), for runs driven by the real engine and for conversations;
nothing is published for a transaction that rolls back; a stream reader that follows a run
through the feed sees every event once, in order."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from upstash_redis.asyncio import Redis as AsyncRedis

from guildstack.adapters.event_feed import UpstashEventFeed
from guildstack.adapters.upstash import UpstashClientFactory
from guildstack.domain.conversations import ConversationEvent
from guildstack.domain.runs import Event, Node, RunKind, Workflow
from guildstack.domain.vocabulary import ConversationEventType
from guildstack.ports.event_feed import conversation_log, run_log
from tests.fixtures.engine import Rig
from tests.fixtures.redis import UpstashEndpoint

CHAIN = Workflow(
    RunKind.DAG,
    "chain",
    "Plan a launch for a note-taking app.",
    (
        Node("A", "business_agent", "Frame the launch."),
        Node("B", "seo_agent", "Pick the keywords.", ("A",)),
    ),
)


def feed_settings(upstash: UpstashEndpoint, prefix: str) -> dict[str, Any]:
    return {
        "upstash_redis_rest_url": upstash.url,
        "upstash_redis_rest_token": upstash.token,
        "rate_limit_prefix": prefix,
    }


async def held(upstash: UpstashEndpoint, log: str) -> list[Event]:
    """Everything the feed holds for `log`, read with the adapter's own decoding."""
    redis = AsyncRedis(url=upstash.url, token=upstash.token, allow_telemetry=False)
    entries = await redis.xrange(f"gs:ev:{log}", "-", "+")
    if not entries:
        return []
    first = int(str(entries[0][0]).split("-")[0])
    factory = UpstashClientFactory(upstash.url, upstash.token)
    feed = UpstashEventFeed(factory, factory)
    found = await feed.wait(log, first - 1, 0)
    assert found is not None and len(found) == len(entries), "the feed holds no gap"
    return found


async def test_given_a_run_then_the_feed_holds_its_events_as_postgres_numbered_them(
    rig_factory: Any, upstash: UpstashEndpoint
) -> None:
    rig: Rig = await rig_factory(with_settings=feed_settings(upstash, f"gs:t:{uuid.uuid4().hex}"))
    run = await rig.api.runs.start(rig.actor, rig.workspace_id, CHAIN)
    await rig.finished(run.id)

    logged = (await rig.api.runs.events(rig.actor, rig.workspace_id, run.id, limit=5000)).items
    hot = await held(upstash, run_log(run.id))

    assert hot, "the engine's events were published"
    assert hot == logged[-len(hot) :], "the same events, numbers, payloads and times"
    assert hot[-1].type == "run.finished"
    assert {e.type for e in hot} >= {"step.started", "step.token", "step.succeeded"}


async def test_given_a_message_then_the_feed_holds_its_announcement_as_postgres_does(
    rig_factory: Any, upstash: UpstashEndpoint
) -> None:
    rig: Rig = await rig_factory(
        with_settings=feed_settings(upstash, f"gs:t:{uuid.uuid4().hex}"), pollers=False
    )
    conversations = rig.api.conversations
    conversation = await conversations.create(rig.actor, rig.workspace_id, title="Launch")
    for text in ("Hello", "Which keywords?"):
        await conversations.post(rig.actor, rig.workspace_id, conversation.id, text)

    logged = (
        await conversations.events(rig.actor, rig.workspace_id, conversation.id, limit=500)
    ).items
    hot = await held(upstash, conversation_log(conversation.id))

    assert [e.type for e in hot] == ["message.new", "message.new"]
    assert hot == logged[-2:]
    assert [e.payload["seq"] for e in hot] == [1, 2], "each names its message's number"


async def test_given_a_transaction_that_rolls_back_then_nothing_is_published(
    rig_factory: Any, upstash: UpstashEndpoint
) -> None:
    rig: Rig = await rig_factory(
        with_settings=feed_settings(upstash, f"gs:t:{uuid.uuid4().hex}"), pollers=False
    )
    conversations = rig.api.conversations
    conversation = await conversations.create(rig.actor, rig.workspace_id, title="Launch")
    await conversations.post(rig.actor, rig.workspace_id, conversation.id, "Kept")

    class Abandoned(Exception):
        pass

    try:
        async with rig.api.uow(rig.actor) as tx:
            await tx.conversations.append(
                rig.workspace_id,
                conversation.id,
                [],
                [ConversationEvent(ConversationEventType.STATUS_CHANGED, {"status": "active"})],
            )
            raise Abandoned
    except Abandoned:
        pass

    hot = await held(upstash, conversation_log(conversation.id))
    assert [e.seq for e in hot] == [1]


async def test_given_a_reader_following_a_run_then_it_sees_every_event_once_in_order(
    rig_factory: Any, upstash: UpstashEndpoint
) -> None:
    rig: Rig = await rig_factory(with_settings=feed_settings(upstash, f"gs:t:{uuid.uuid4().hex}"))
    run = await rig.api.runs.start(rig.actor, rig.workspace_id, CHAIN)
    cursor = rig.api.runs.follow(rig.actor, rig.workspace_id, run.id)
    seen: list[Event] = []
    async with asyncio.timeout(60):
        while not seen or seen[-1].type != "run.finished":
            seen += await cursor.next(15)

    logged = (await rig.api.runs.events(rig.actor, rig.workspace_id, run.id, limit=5000)).items
    assert seen == logged
