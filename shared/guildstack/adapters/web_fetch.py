"""`GuardedFetcher`: web.fetch's HTTP GET, guarded against server-side request forgery.

Every hop (the first request and each redirect) is checked before it is made: http or https
only, no credentials in the URL, a host the workspace allows, and a name that resolves only
to public addresses (private, loopback, link-local, shared, reserved and multicast ranges
are refused, IPv4-mapped IPv6 included). The connection then goes to the address that was
checked (the name is not resolved again, so a DNS answer that changes between the check and
the connection — rebinding — reaches nothing new); TLS still verifies the name. Bodies are
read up to a size limit, the whole fetch within a time limit, and HTML comes back as text.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from html.parser import HTMLParser
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from guildstack.domain.tools import ToolRefused
from guildstack.ports.tools import FetchedPage

if TYPE_CHECKING:
    import httpx

Resolver = Callable[[str, int], Awaitable[list[str]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml+xml")


def _valid_name(host: str) -> bool:
    """Whether `host` is a DNS name the resolver can be asked about: IDNA-encodable, with
    labels of 1 to 63 characters (the resolver would raise on anything else)."""
    try:
        encoded = host.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return bool(encoded) and all(0 < len(label) <= 63 for label in encoded.split("."))


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedFetcher:
    def __init__(
        self,
        *,
        max_bytes: int = 512_000,
        timeout_seconds: float = 10.0,
        max_redirects: int = 3,
        resolver: Resolver = system_resolver,
        allowed_networks: Sequence[str] = (),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._max_bytes = max_bytes
        self._timeout = timeout_seconds
        self._max_redirects = max_redirects
        self._resolve = resolver
        # Ranges exempted from the refusal (local development and tests only; the settings
        # refuse them on deployed stages).
        self._exempt: tuple[Network, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in allowed_networks
        )
        self._transport = transport

    async def fetch(self, url: str, allowed: Callable[[str], bool]) -> FetchedPage:
        try:
            async with asyncio.timeout(self._timeout):
                return await self._fetch(url, allowed)
        except TimeoutError as exc:
            raise ToolRefused(f"The page did not arrive within {self._timeout:g} s.") from exc

    async def check(self, url: str) -> None:
        """`ToolRefused` unless `url` is http(s) and its host resolves to public addresses
        only (an MCP server's URL, checked when it is registered and before each use)."""
        await self._checked(url, lambda host: True)

    async def _fetch(self, url: str, allowed: Callable[[str], bool]) -> FetchedPage:
        import httpx

        async with httpx.AsyncClient(
            transport=self._transport,
            follow_redirects=False,
            timeout=self._timeout,
            trust_env=False,
        ) as client:
            for _ in range(self._max_redirects + 1):
                host, port, address = await self._checked(url, allowed)
                target = httpx.URL(url).copy_with(host=address)
                request = client.build_request(
                    "GET",
                    target,
                    headers={"Host": _host_header(host, port, url), "Accept": "text/*, */*;q=0.5"},
                    extensions={"sni_hostname": host},
                )
                response = await client.send(request, stream=True)
                try:
                    if response.is_redirect and "location" in response.headers:
                        try:
                            url = urljoin(url, response.headers["location"])
                        except ValueError as exc:
                            raise ToolRefused(
                                "The page redirects to a URL that is not valid."
                            ) from exc
                        continue
                    body, truncated = await self._read(response)
                finally:
                    await response.aclose()
                content_type = response.headers.get("content-type", "").split(";")[0].strip()
                return FetchedPage(
                    url, response.status_code, content_type, _text(body, content_type), truncated
                )
        raise ToolRefused(f"More than {self._max_redirects} redirects.")

    async def _checked(self, url: str, allowed: Callable[[str], bool]) -> tuple[str, int, str]:
        """The URL's host, port and the one address to connect to, or `ToolRefused`."""
        try:
            parts = urlsplit(url)
            hostname = parts.hostname
        except ValueError as exc:
            raise ToolRefused(f"{url!r} is not a valid URL.") from exc
        if parts.scheme not in ("http", "https"):
            raise ToolRefused("Only http and https URLs can be fetched.")
        if parts.username or parts.password:
            raise ToolRefused("URLs with credentials are refused.")
        host = (hostname or "").lower()
        if not host:
            raise ToolRefused("The URL has no host.")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise ToolRefused("The URL's port is invalid.") from exc
        if not allowed(host):
            raise ToolRefused(f"The host {host!r} is not in this workspace's fetch allowlist.")
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is None and not _valid_name(host):
            raise ToolRefused(f"{host!r} is not a valid host name.")
        try:
            addresses = [str(literal)] if literal else await self._resolve(host, port)
        except OSError as exc:
            raise ToolRefused(f"The host {host!r} does not resolve.") from exc
        if not addresses:
            raise ToolRefused(f"The host {host!r} does not resolve.")
        for address in addresses:
            if not self._public(ipaddress.ip_address(address)):
                raise ToolRefused(
                    f"The host {host!r} resolves to a non-public address ({address})."
                )
        return host, port, addresses[0]

    def _public(self, address: IPAddress) -> bool:
        if any(address in network for network in self._exempt):
            return True
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return self._public(address.ipv4_mapped)
        return address.is_global and not address.is_multicast

    async def _read(self, response: httpx.Response) -> tuple[bytes, bool]:
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_bytes * 20:
            raise ToolRefused(f"The page is too large ({declared} bytes).")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= self._max_bytes:
                return b"".join(chunks)[: self._max_bytes], True
        return b"".join(chunks), False


def _host_header(host: str, port: int, url: str) -> str:
    default = 443 if url.startswith("https:") else 80
    shown = f"[{host}]" if ":" in host else host
    return shown if port == default else f"{shown}:{port}"


def _text(body: bytes, content_type: str) -> str:
    if content_type and not content_type.startswith(TEXT_TYPES):
        raise ToolRefused(f"The page is not text ({content_type}).")
    text = body.decode("utf-8", errors="replace")
    if content_type in ("text/html", "application/xhtml+xml") or text.lstrip()[:1] == "<":
        return html_text(text)
    return text


class _Text(HTMLParser):
    SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head"})
    BLOCK = frozenset({"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in self.SKIP:
            self._skipping += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in self.SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skipping:
            self.parts.append(data)


def html_text(html: str) -> str:
    """The readable text of an HTML page: no scripts or styles, one line per block."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    body = "\n".join(line for line in lines if line)
    title = " ".join(parser.title.split())
    return f"# {title}\n{body}" if title else body
