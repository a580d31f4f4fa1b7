"""web.fetch against server-side request forgery: private, loopback and link-local targets
(literal, through DNS, IPv4-mapped), DNS rebinding, redirects into private ranges or off the
allowlist, huge bodies and slow answers; and a real page served by the test, as text."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from guildstack.adapters.web_fetch import GuardedFetcher, Resolver
from guildstack.domain.tools import ToolRefused, ToolSettings

pytestmark = pytest.mark.integration

PUBLIC = "93.184.215.14"
SETTINGS = ToolSettings(
    fetch_hosts=("docs.example.com", "*.example.org", "10.0.0.5", "169.254.169.254", "127.0.0.1")
)
ALLOWED = SETTINGS.host_allowed


def resolver(table: dict[str, list[list[str]]]) -> tuple[Resolver, list[str]]:
    """Answers each name from its list of answers in turn (the last repeats)."""
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        answers = table[host]
        return answers[min(asked.count(host), len(answers)) - 1]

    return resolve, asked


class Recorder:
    def __init__(self, reply: Callable[[httpx.Request], httpx.Response]) -> None:
        self.requests: list[httpx.Request] = []
        self._reply = reply

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._reply(request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def page(text: str = "<html><title>Docs</title><body><p>Hello</p></body></html>") -> Recorder:
    return Recorder(lambda r: httpx.Response(200, text=text, headers={"content-type": "text/html"}))


@pytest.mark.parametrize(
    ("url", "answers"),
    [
        ("http://10.0.0.5/", None),  # a private literal
        ("http://docs.example.com/", ["127.0.0.1"]),  # loopback through DNS
        ("http://docs.example.com/", [PUBLIC, "10.1.2.3"]),  # one private answer is enough
        ("http://169.254.169.254/latest/meta-data/", None),  # link-local (cloud metadata)
        ("http://docs.example.com/", ["::ffff:127.0.0.1"]),  # IPv4-mapped loopback
        ("http://docs.example.com/", ["fe80::1"]),  # IPv6 link-local
        ("http://docs.example.com/", ["100.64.0.1"]),  # shared address space
    ],
)
async def test_given_a_non_public_target_then_the_fetch_is_refused_before_connecting(
    url: str, answers: list[str] | None
) -> None:
    resolve, _ = resolver({"docs.example.com": [answers or []]})
    recorder = page()
    fetcher = GuardedFetcher(resolver=resolve, transport=recorder.transport())

    with pytest.raises(ToolRefused, match="non-public address"):
        await fetcher.fetch(url, ALLOWED)

    assert recorder.requests == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://evil.example.net/", "not in this workspace's fetch allowlist"),
        ("http://example.org/", "not in this workspace's fetch allowlist"),  # only subdomains
        ("file:///etc/passwd", "Only http and https"),
        ("ftp://docs.example.com/", "Only http and https"),
        ("http://user:pw@docs.example.com/", "credentials"),
    ],
)
async def test_given_a_url_outside_the_rules_then_it_is_refused(url: str, reason: str) -> None:
    resolve, asked = resolver({"docs.example.com": [[PUBLIC]]})
    recorder = page()
    fetcher = GuardedFetcher(resolver=resolve, transport=recorder.transport())

    with pytest.raises(ToolRefused, match=reason):
        await fetcher.fetch(url, ALLOWED)

    assert recorder.requests == [] and asked == []


async def test_given_dns_rebinding_then_the_connection_goes_to_the_address_that_was_checked() -> (
    None
):
    # The first answer is public; every later one is loopback.
    resolve, asked = resolver({"docs.example.com": [[PUBLIC], ["127.0.0.1"]]})
    recorder = page()
    fetcher = GuardedFetcher(resolver=resolve, transport=recorder.transport())

    fetched = await fetcher.fetch("https://docs.example.com/guide", ALLOWED)

    assert asked == ["docs.example.com"]  # resolved once, not again at connect time
    (request,) = recorder.requests
    assert request.url.host == PUBLIC and request.url.path == "/guide"
    assert request.headers["host"] == "docs.example.com"
    assert request.extensions["sni_hostname"] == "docs.example.com"
    assert fetched.text == "# Docs\nHello"


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/iam", "non-public address"),
        ("http://127.0.0.1:8080/admin", "non-public address"),
        ("http://internal.example.org/", "non-public address"),
        ("https://elsewhere.example.net/", "not in this workspace's fetch allowlist"),
    ],
)
async def test_given_a_redirect_to_a_forbidden_target_then_it_is_not_followed(
    location: str, reason: str
) -> None:
    resolve, _ = resolver({"docs.example.com": [[PUBLIC]], "internal.example.org": [["10.9.9.9"]]})
    recorder = Recorder(lambda r: httpx.Response(302, headers={"location": location}))
    fetcher = GuardedFetcher(resolver=resolve, transport=recorder.transport())

    with pytest.raises(ToolRefused, match=reason):
        await fetcher.fetch("http://docs.example.com/start", ALLOWED)

    assert len(recorder.requests) == 1


async def test_given_redirects_within_the_rules_then_they_are_followed_up_to_the_limit() -> None:
    resolve, _ = resolver({"docs.example.com": [[PUBLIC]], "a.example.org": [[PUBLIC]]})
    hops = iter(["http://a.example.org/1", "/2", "/3", "/4"])
    recorder = Recorder(lambda r: httpx.Response(301, headers={"location": next(hops)}))
    fetcher = GuardedFetcher(resolver=resolve, transport=recorder.transport(), max_redirects=3)

    with pytest.raises(ToolRefused, match="More than 3 redirects"):
        await fetcher.fetch("http://docs.example.com/", ALLOWED)

    assert [r.headers["host"] for r in recorder.requests] == [
        "docs.example.com",
        "a.example.org",
        "a.example.org",
        "a.example.org",
    ]


async def test_given_a_huge_body_then_reading_stops_at_the_limit() -> None:
    pulled: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for index in range(1000):  # 64 MB if read to the end
            pulled.append(index)
            yield b"x" * 65_536

    resolve, _ = resolver({"docs.example.com": [[PUBLIC]]})
    recorder = Recorder(
        lambda r: httpx.Response(200, content=chunks(), headers={"content-type": "text/plain"})
    )
    fetcher = GuardedFetcher(resolver=resolve, transport=recorder.transport(), max_bytes=100_000)

    fetched = await fetcher.fetch("http://docs.example.com/big", ALLOWED)

    assert fetched.truncated and len(fetched.text) == 100_000
    assert len(pulled) <= 3


async def test_given_a_declared_length_far_over_the_limit_then_nothing_is_read() -> None:
    resolve, _ = resolver({"docs.example.com": [[PUBLIC]]})
    recorder = Recorder(
        lambda r: httpx.Response(
            200,
            content=b"x",
            headers={"content-length": "9999999999", "content-type": "text/plain"},
        )
    )
    fetcher = GuardedFetcher(resolver=resolve, transport=recorder.transport(), max_bytes=1024)

    with pytest.raises(ToolRefused, match="too large"):
        await fetcher.fetch("http://docs.example.com/", ALLOWED)


async def test_given_a_binary_page_then_it_is_refused() -> None:
    resolve, _ = resolver({"docs.example.com": [[PUBLIC]]})
    recorder = Recorder(
        lambda r: httpx.Response(200, content=b"\x89PNG", headers={"content-type": "image/png"})
    )
    fetcher = GuardedFetcher(resolver=resolve, transport=recorder.transport())

    with pytest.raises(ToolRefused, match="not text"):
        await fetcher.fetch("http://docs.example.com/logo.png", ALLOWED)


@pytest.fixture
async def local_server() -> AsyncIterator[tuple[int, asyncio.Event]]:
    """A server on 127.0.0.1: `/slow` sends its headers and then nothing until the test
    ends; any other path a small HTML page."""
    finish = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        if request.startswith(b"GET /slow"):
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 10\r\n\r\nabc"
            )
            await writer.drain()
            await finish.wait()
        else:
            body = b"<html><head><title>Launch notes</title><style>p{}</style></head><body>"
            body += b"<h1>Beta</h1><p>The beta opens on <b>May 4</b>.</p>"
            body += b"<script>x()</script></body></html>"
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n"
                + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield port, finish
    finish.set()
    server.close()
    await server.wait_closed()


async def test_given_a_real_page_of_an_exempted_local_server_then_its_text_comes_back(
    local_server: tuple[int, asyncio.Event],
) -> None:
    port, _ = local_server
    fetcher = GuardedFetcher(allowed_networks=["127.0.0.1/32"])

    fetched = await fetcher.fetch(f"http://127.0.0.1:{port}/notes", ALLOWED)

    assert fetched.status == 200 and fetched.content_type == "text/html"
    assert fetched.text == "# Launch notes\nBeta\nThe beta opens on May 4."

    with pytest.raises(ToolRefused, match="non-public address"):  # not without the exemption
        await GuardedFetcher().fetch(f"http://127.0.0.1:{port}/notes", ALLOWED)


async def test_given_a_slow_answer_then_the_fetch_gives_up_at_its_time_limit(
    local_server: tuple[int, asyncio.Event],
) -> None:
    port, _ = local_server
    fetcher = GuardedFetcher(allowed_networks=["127.0.0.1/32"], timeout_seconds=0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()

    with pytest.raises(ToolRefused, match="within 0.3 s"):
        await fetcher.fetch(f"http://127.0.0.1:{port}/slow", ALLOWED)

    assert loop.time() - started < 5


@pytest.mark.parametrize("url", ["http://[::1/", "http://[not-an-address]/", "http://[/"])
async def test_given_a_url_that_does_not_parse_then_it_is_refused_not_crashed(url: str) -> None:
    # Found by the API fuzz: POST /tools/mcp-servers answered 500 ("Invalid IPv6 URL").
    fetcher = GuardedFetcher()

    with pytest.raises(ToolRefused, match="not a valid URL"):
        await fetcher.check(url)
    with pytest.raises(ToolRefused, match="not a valid URL"):
        await fetcher.fetch(url, lambda host: True)


@pytest.mark.parametrize(
    "url",
    [
        "http://\U0010fd72.example/",  # found by the API fuzz: a 500 from POST /tools/mcp-servers
        "http://exa\u200dmple..com/",
        "http://" + "a" * 64 + ".example/",
    ],
)
async def test_given_a_host_that_is_no_valid_name_then_it_is_refused_not_crashed(
    url: str,
) -> None:
    fetcher = GuardedFetcher()  # the system resolver, as deployed

    with pytest.raises(ToolRefused, match="not a valid host name"):
        await fetcher.check(url)
    with pytest.raises(ToolRefused, match="not a valid host name"):
        await fetcher.fetch(url, lambda host: True)
