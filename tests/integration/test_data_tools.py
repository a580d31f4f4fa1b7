"""External data tools: Brave Search, NewsAPI and SEMrush in their real wire formats (served
by httpx's mock transport), clear errors for missing or refused keys, and each API's quota
per workspace kept in real Redis (through the Upstash bridge)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import httpx
import pytest

from guildstack.adapters.data_apis import BraveSearch, NewsApi, SemrushKeywords
from guildstack.adapters.upstash import UpstashClientFactory, UpstashRateLimiter
from guildstack.domain.tools import ToolCall, ToolRefused, ToolSettings
from guildstack.ports.tools import ToolContext
from guildstack.services.tools import QUOTAS, Toolbox, data_specs, data_tool
from tests.fakes.uow import InMemoryUnitOfWork
from tests.fixtures.redis import UpstashEndpoint

pytestmark = pytest.mark.integration


class Recorder:
    def __init__(self, reply: Callable[[httpx.Request], httpx.Response]) -> None:
        self.requests: list[httpx.Request] = []
        self._reply = reply

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._reply(request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def replying(status: int, body: Any = None, text: str | None = None) -> Recorder:
    if text is not None:
        return Recorder(lambda r: httpx.Response(status, text=text))
    return Recorder(lambda r: httpx.Response(status, json=body))


BRAVE_BODY = {
    "type": "search",
    "query": {"original": "darjeeling tea"},
    "web": {
        "type": "search",
        "results": [
            {
                "title": "Darjeeling tea - Wikipedia",
                "url": "https://en.wikipedia.org/wiki/Darjeeling_tea",
                "description": "Darjeeling tea is a tea made from <strong>Camellia</strong>...",
                "age": "2 days ago",
                "language": "en",
            }
        ],
    },
}
NEWS_BODY = {
    "status": "ok",
    "totalResults": 1,
    "articles": [
        {
            "source": {"id": None, "name": "Tea Times"},
            "author": "A. Writer",
            "title": "First flush prices rise",
            "description": "Spring harvest in Darjeeling.",
            "url": "https://teatimes.example/first-flush",
            "urlToImage": None,
            "publishedAt": "2026-04-02T08:00:00Z",
            "content": "Prices of the first flush... [+1200 chars]",
        }
    ],
}
SEMRUSH_CSV = (
    "Keyword;Search Volume;CPC;Competition;Related Relevance\r\n"
    "darjeeling tea;33100;1.12;0.95;1.00\r\n"
    "darjeeling first flush;880;0.87;1.00;0.75\r\n"
)


async def test_given_brave_then_the_query_goes_out_keyed_and_results_come_back() -> None:
    recorder = replying(200, BRAVE_BODY)
    brave = BraveSearch("brave-key", transport=recorder.transport())

    text = await brave.query({"query": "darjeeling tea", "count": 3})

    (request,) = recorder.requests
    assert request.url.host == "api.search.brave.com" and request.url.path == "/res/v1/web/search"
    assert request.url.params["q"] == "darjeeling tea" and request.url.params["count"] == "3"
    assert request.headers["x-subscription-token"] == "brave-key"
    assert json.loads(text) == [
        {
            "title": "Darjeeling tea - Wikipedia",
            "url": "https://en.wikipedia.org/wiki/Darjeeling_tea",
            "snippet": "Darjeeling tea is a tea made from <strong>Camellia</strong>...",
        }
    ]


async def test_given_newsapi_then_articles_come_back_and_its_error_envelope_is_named() -> None:
    recorder = replying(200, NEWS_BODY)
    news = NewsApi("news-key", transport=recorder.transport())

    articles = json.loads(await news.query({"query": "darjeeling", "language": "en"}))

    (request,) = recorder.requests
    assert request.url.path == "/v2/everything" and request.headers["x-api-key"] == "news-key"
    assert request.url.params["language"] == "en"
    assert (
        articles[0]["source"] == "Tea Times" and articles[0]["title"] == "First flush prices rise"
    )

    invalid = {"status": "error", "code": "apiKeyInvalid", "message": "Your API key is invalid."}
    refused = NewsApi("bad", transport=replying(401, invalid).transport())
    with pytest.raises(ToolRefused, match="NEWSAPI_API_KEY.*apiKeyInvalid"):
        await refused.query({"query": "x"})
    too_many = {"status": "error", "code": "rateLimited", "message": "Too many requests"}
    limited = NewsApi("k", transport=replying(429, too_many).transport())
    with pytest.raises(ToolRefused, match="rate limit"):
        await limited.query({"query": "x"})


async def test_given_semrush_then_its_csv_is_read_and_its_errors_named() -> None:
    recorder = replying(200, text=SEMRUSH_CSV)
    semrush = SemrushKeywords("sem-key", transport=recorder.transport())

    keywords = json.loads(await semrush.query({"phrase": "darjeeling tea", "count": 2}))

    (request,) = recorder.requests
    params = request.url.params
    assert (params["type"], params["key"], params["phrase"], params["database"]) == (
        "phrase_related",
        "sem-key",
        "darjeeling tea",
        "us",
    )
    assert keywords[0] == {
        "keyword": "darjeeling tea",
        "volume": 33100.0,
        "cpc_usd": 1.12,
        "competition": 0.95,
        "related": 1.0,
    }
    nothing = SemrushKeywords(
        "k", transport=replying(200, text="ERROR 50 :: NOTHING FOUND").transport()
    )
    assert await nothing.query({"phrase": "zzzz"}) == "[]"
    wrong = SemrushKeywords(
        "k", transport=replying(200, text="ERROR 120 :: WRONG KEY - ID PAIR").transport()
    )
    with pytest.raises(ToolRefused, match="SEMRUSH_API_KEY"):
        await wrong.query({"phrase": "x"})


@pytest.mark.parametrize(
    ("api", "setting"),
    [
        (BraveSearch(None), "BRAVE_SEARCH_API_KEY"),
        (NewsApi(None), "NEWSAPI_API_KEY"),
        (SemrushKeywords(None), "SEMRUSH_API_KEY"),
    ],
)
async def test_given_no_key_then_the_tool_says_which_setting_is_missing(
    api: BraveSearch | NewsApi | SemrushKeywords, setting: str
) -> None:
    with pytest.raises(ToolRefused, match=setting):
        await api.query({"query": "x", "phrase": "x"})


class CountingApi:
    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0

    async def query(self, arguments: Mapping[str, Any]) -> str:
        self.calls += 1
        return "[]"


def context(workspace_id: uuid.UUID) -> ToolContext:
    return ToolContext(
        workspace_id=workspace_id,
        run_id=uuid.uuid4(),
        step_key="a",
        agent_code="seo_agent",
        actor=None,
        settings=ToolSettings(),
    )


@pytest.mark.parametrize("name", ["semrush", "brave"])
async def test_given_a_quota_then_redis_keeps_it_per_workspace(
    upstash: UpstashEndpoint, name: str
) -> None:
    quota = QUOTAS[name]
    limiter = UpstashRateLimiter(
        UpstashClientFactory(upstash.url, upstash.token),
        limit=quota.limit,
        window_seconds=quota.window_seconds,
        prefix=f"quota-test:{uuid.uuid4().hex[:8]}",
    )
    api = CountingApi(name)
    spec = data_specs()[name]
    tool = data_tool(spec, api, quota, limiter)
    toolbox = Toolbox([tool], uow=InMemoryUnitOfWork())
    ours, theirs = uuid.uuid4(), uuid.uuid4()
    call = ToolCall("c", spec.name, {"query": "tea", "phrase": "tea"})

    outputs = [await toolbox.run(tool, call, context(ours)) for _ in range(quota.limit + 1)]
    other = await toolbox.run(tool, call, context(theirs))

    assert [o.is_error for o in outputs] == [False] * quota.limit + [True]
    assert f"quota for {spec.name} ({quota.label}) is spent" in outputs[-1].content
    assert outputs[-1].cost_usd == Decimal(0)  # a refused call costs nothing
    assert not other.is_error  # another workspace has its own quota
    assert api.calls == quota.limit + 1


async def test_given_no_redis_then_a_quota_tool_refuses_clearly() -> None:
    spec = data_specs()["newsapi"]
    tool = data_tool(spec, CountingApi("newsapi"), QUOTAS["newsapi"], None)

    with pytest.raises(ToolRefused, match="needs Redis"):
        await tool.run({"query": "x"}, context(uuid.uuid4()))
