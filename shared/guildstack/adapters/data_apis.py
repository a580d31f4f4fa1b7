"""External data APIs agents query as tools, one class per vendor behind the `DataApi` port:
Brave Search (web results), NewsAPI (articles) and SEMrush (related keywords). Each reads its
key from the settings (the deployment's secret), speaks the vendor's own wire format over
httpx and answers with compact text for the model; a vendor's refusal is a `ToolRefused`
naming the cause (bad key, quota, nothing found)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from guildstack.domain.tools import ToolRefused

if TYPE_CHECKING:
    import httpx

TIMEOUT_SECONDS = 10.0


class _HttpApi:
    def __init__(
        self, key: str | None, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._key = key
        self._transport = transport

    def _require_key(self, setting: str) -> str:
        if not self._key:
            raise ToolRefused(
                f"This deployment has no {setting}: the tool is unavailable until it is set."
            )
        return self._key

    async def _get(
        self, url: str, params: Mapping[str, Any], headers: Mapping[str, str]
    ) -> httpx.Response:
        import httpx

        try:
            async with httpx.AsyncClient(
                transport=self._transport, timeout=TIMEOUT_SECONDS, trust_env=False
            ) as client:
                return await client.get(url, params=dict(params), headers=dict(headers))
        except httpx.TimeoutException as exc:
            raise ToolRefused("The data service did not answer in time.") from exc
        except httpx.HTTPError as exc:
            raise ToolRefused(
                f"The data service could not be reached ({type(exc).__name__})."
            ) from exc


def _count(arguments: Mapping[str, Any], default: int, maximum: int) -> int:
    return max(1, min(int(arguments.get("count", default)), maximum))


class BraveSearch(_HttpApi):
    """Brave Search API, web results (`GET /res/v1/web/search`)."""

    name = "brave"
    setting = "BRAVE_SEARCH_API_KEY"
    url = "https://api.search.brave.com/res/v1/web/search"

    async def query(self, arguments: Mapping[str, Any]) -> str:
        key = self._require_key(self.setting)
        response = await self._get(
            self.url,
            {"q": arguments["query"], "count": _count(arguments, 5, 20)},
            {"X-Subscription-Token": key, "Accept": "application/json"},
        )
        if response.status_code in (401, 403):
            raise ToolRefused("Brave Search refused the key (BRAVE_SEARCH_API_KEY).")
        if response.status_code == 429:
            raise ToolRefused("Brave Search's own rate limit was hit; try again later.")
        if response.status_code >= 400:
            raise ToolRefused(f"Brave Search answered {response.status_code}.")
        results = response.json().get("web", {}).get("results", [])
        found = [
            {
                "title": r.get("title", ""),
                "url": r.get("url", ""),
                "snippet": r.get("description", ""),
            }
            for r in results
        ]
        return json.dumps(found, ensure_ascii=False)


class NewsApi(_HttpApi):
    """NewsAPI, articles matching a query (`GET /v2/everything`)."""

    name = "newsapi"
    setting = "NEWSAPI_API_KEY"
    url = "https://newsapi.org/v2/everything"

    async def query(self, arguments: Mapping[str, Any]) -> str:
        key = self._require_key(self.setting)
        params: dict[str, Any] = {
            "q": arguments["query"],
            "pageSize": _count(arguments, 5, 20),
            "sortBy": "publishedAt",
        }
        if arguments.get("language"):
            params["language"] = arguments["language"]
        response = await self._get(self.url, params, {"X-Api-Key": key})
        body = response.json()
        if body.get("status") != "ok":
            code = body.get("code", "error")
            if code in ("apiKeyInvalid", "apiKeyMissing", "apiKeyDisabled", "apiKeyExhausted"):
                raise ToolRefused(f"NewsAPI refused the key (NEWSAPI_API_KEY): {code}.")
            if code == "rateLimited":
                raise ToolRefused("NewsAPI's own rate limit was hit; try again later.")
            raise ToolRefused(f"NewsAPI answered {code}: {body.get('message', '')}"[:300])
        articles = [
            {
                "title": a.get("title"),
                "source": (a.get("source") or {}).get("name"),
                "published_at": a.get("publishedAt"),
                "url": a.get("url"),
                "description": a.get("description"),
            }
            for a in body.get("articles", [])
        ]
        return json.dumps(articles, ensure_ascii=False)


class SemrushKeywords(_HttpApi):
    """SEMrush Analytics API, keywords related to a phrase (`type=phrase_related`), answered
    as CSV with `;` between columns."""

    name = "semrush"
    setting = "SEMRUSH_API_KEY"
    url = "https://api.semrush.com/"
    columns = "Ph,Nq,Cp,Co,Rr"

    async def query(self, arguments: Mapping[str, Any]) -> str:
        key = self._require_key(self.setting)
        response = await self._get(
            self.url,
            {
                "type": "phrase_related",
                "key": key,
                "phrase": arguments["phrase"],
                "database": arguments.get("database", "us"),
                "display_limit": _count(arguments, 10, 50),
                "export_columns": self.columns,
            },
            {},
        )
        text = response.text.strip()
        if text.startswith("ERROR"):
            if "NOTHING FOUND" in text:
                return "[]"
            if "WRONG KEY" in text or "API UNITS" in text or "ACCESS" in text:
                raise ToolRefused(f"SEMrush refused the key (SEMRUSH_API_KEY): {text[:200]}")
            raise ToolRefused(f"SEMrush answered: {text[:200]}")
        if response.status_code >= 400:
            raise ToolRefused(f"SEMrush answered {response.status_code}.")
        rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
        keywords = [
            {
                "keyword": r.get("Keyword"),
                "volume": _number(r.get("Search Volume")),
                "cpc_usd": _number(r.get("CPC")),
                "competition": _number(r.get("Competition")),
                "related": _number(r.get("Related Relevance")),
            }
            for r in rows
        ]
        return json.dumps(keywords, ensure_ascii=False)


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None
