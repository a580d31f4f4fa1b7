"""The real upstash-redis and upstash-ratelimit clients, unchanged, against the local bridge."""

from __future__ import annotations

import hashlib
import time
import uuid

import httpx
import pytest
from upstash_ratelimit import FixedWindow, Ratelimit, SlidingWindow
from upstash_ratelimit.asyncio import Ratelimit as AsyncRatelimit
from upstash_redis import Redis
from upstash_redis.asyncio import Redis as AsyncRedis
from upstash_redis.errors import UpstashError

from tests.fixtures.redis import UpstashEndpoint


@pytest.fixture
def sync_client(upstash: UpstashEndpoint) -> Redis:
    return Redis(url=upstash.url, token=upstash.token, allow_telemetry=False)


@pytest.fixture
def async_client(upstash: UpstashEndpoint) -> AsyncRedis:
    return AsyncRedis(url=upstash.url, token=upstash.token, allow_telemetry=False)


def key(name: str) -> str:
    return f"conformance:{name}:{uuid.uuid4().hex[:8]}"


def test_given_strings_when_set_and_get_then_round_trip(sync_client: Redis) -> None:
    k = key("str")
    stored: object = sync_client.set(k, "héllo wörld ✓")
    assert stored is True
    assert sync_client.get(k) == "héllo wörld ✓"
    assert sync_client.get(key("missing")) is None
    assert sync_client.delete(k) == 1
    assert sync_client.get(k) is None


def test_given_many_keys_when_mset_and_mget_then_order_and_nils_kept(sync_client: Redis) -> None:
    a, b, missing = key("a"), key("b"), key("none")
    assert sync_client.mset({a: "1", b: "2"}) is True
    assert sync_client.mget(a, missing, b) == ["1", None, "2"]


def test_given_a_counter_when_incremented_then_integers_come_back(sync_client: Redis) -> None:
    k = key("counter")
    assert sync_client.incr(k) == 1
    assert sync_client.incrby(k, 41) == 42
    assert sync_client.decr(k) == 41
    sync_client.set(k + ":text", "abc")
    with pytest.raises(UpstashError, match="not an integer"):
        sync_client.incr(k + ":text")


def test_given_expiry_when_set_then_ttl_reports_it(sync_client: Redis) -> None:
    k = key("ttl")
    sync_client.set(k, "v", ex=100)
    assert 95 <= sync_client.ttl(k) <= 100
    assert sync_client.persist(k) is True
    assert sync_client.ttl(k) == -1
    assert sync_client.expire(k, 5) is True
    assert 0 < sync_client.ttl(k) <= 5
    assert sync_client.ttl(key("absent")) == -2


def test_given_hashes_lists_and_sorted_sets_then_structures_survive(sync_client: Redis) -> None:
    h, lst, z = key("h"), key("l"), key("z")
    assert sync_client.hset(h, values={"a": "1", "b": "2"}) == 2
    assert sync_client.hgetall(h) == {"a": "1", "b": "2"}
    assert sync_client.rpush(lst, "x", "y", "z") == 3
    assert sync_client.lrange(lst, 0, -1) == ["x", "y", "z"]
    assert sync_client.zadd(z, {"low": 1, "high": 10}) == 2
    assert sync_client.zrange(z, 0, -1) == ["low", "high"]
    assert sync_client.zscore(z, "high") == 10.0


def test_given_a_pipeline_when_executed_then_each_result_is_returned(sync_client: Redis) -> None:
    k = key("pipe")
    pipe = sync_client.pipeline()
    pipe.set(k, "1")
    pipe.incr(k)
    pipe.get(k)
    assert pipe.exec() == [True, 2, "2"]


def test_given_multi_exec_when_executed_then_all_commands_apply_atomically(
    sync_client: Redis,
) -> None:
    k1, k2 = key("tx1"), key("tx2")
    tx = sync_client.multi()
    tx.set(k1, "a")
    tx.set(k2, "b")
    tx.incr(key("tx3"))
    assert tx.exec() == [True, True, 1]
    assert sync_client.mget(k1, k2) == ["a", "b"]


def test_given_a_lua_script_when_evaluated_then_its_result_returns(sync_client: Redis) -> None:
    k = key("lua")
    script = "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])"
    assert sync_client.eval(script, keys=[k], args=["from-lua"]) == "from-lua"


def test_given_an_upstash_style_script_when_loaded_then_evalsha_runs_it(
    sync_client: Redis,
) -> None:
    script = "#!lua flags=allow-key-locking\nreturn ARGV[1] .. '!'"
    sha = sync_client.script_load(script)
    assert sha == hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()
    assert sync_client.evalsha(sha, args=["hi"]) == "hi!"
    assert sync_client.eval(script, args=["yo"]) == "yo!"


def test_given_a_wrong_token_when_calling_then_the_client_raises(upstash: UpstashEndpoint) -> None:
    intruder = Redis(url=upstash.url, token="wrong", allow_telemetry=False, rest_retries=0)
    with pytest.raises(UpstashError, match="Unauthorized"):
        intruder.get("anything")


def test_given_no_encoding_when_calling_raw_then_plain_json_comes_back(
    upstash: UpstashEndpoint,
) -> None:
    k = key("raw")
    headers = {"Authorization": f"Bearer {upstash.token}"}
    assert httpx.post(upstash.url, json=["SET", k, "plain"], headers=headers).json() == {
        "result": "OK"
    }
    assert httpx.post(upstash.url, json=["GET", k], headers=headers).json() == {"result": "plain"}
    bad = httpx.post(upstash.url, json=["NOSUCHCOMMAND"], headers=headers)
    assert bad.status_code == 400 and bad.json()["error"].startswith("ERR")


async def test_given_the_async_client_then_commands_and_pipelines_work(
    async_client: AsyncRedis,
) -> None:
    k = key("async")
    stored: object = await async_client.set(k, "v")
    assert stored is True
    assert await async_client.get(k) == "v"
    pipe = async_client.pipeline()
    pipe.incr(k + ":n")
    pipe.incr(k + ":n")
    assert await pipe.exec() == [1, 2]
    tx = async_client.multi()
    tx.set(k, "w")
    tx.get(k)
    assert await tx.exec() == [True, "w"]
    await async_client.close()


def test_given_a_sliding_window_when_over_the_limit_then_refused_with_a_future_reset(
    sync_client: Redis,
) -> None:
    limiter = Ratelimit(
        redis=sync_client, limiter=SlidingWindow(max_requests=5, window=60), prefix=key("rl")
    )
    who = "user-1"
    results = [limiter.limit(who) for _ in range(6)]
    assert [r.allowed for r in results] == [True] * 5 + [False]
    assert results[-1].remaining == 0 and results[-1].reset > time.time()
    assert limiter.limit("someone-else").allowed


def test_given_a_fixed_window_then_limits_apply(sync_client: Redis) -> None:
    limiter = Ratelimit(
        redis=sync_client, limiter=FixedWindow(max_requests=2, window=60), prefix=key("fw")
    )
    assert [limiter.limit("u").allowed for _ in range(3)] == [True, True, False]


async def test_given_the_async_ratelimiter_when_over_the_limit_then_refused(
    async_client: AsyncRedis,
) -> None:
    limiter = AsyncRatelimit(
        redis=async_client, limiter=SlidingWindow(max_requests=3, window=60), prefix=key("arl")
    )
    allowed = [(await limiter.limit("u")).allowed for _ in range(4)]
    assert allowed == [True, True, True, False]
    await async_client.close()
