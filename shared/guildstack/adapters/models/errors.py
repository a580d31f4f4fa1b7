"""Vendor failures → domain errors, the same way for every SDK (they share a shape)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from guildstack.domain.errors import GuildstackError, InvalidRequest, ProviderFailed

# Worth another attempt: the request was fine, the provider was not (now).
RETRYABLE_STATUSES = frozenset({408, 409, 429})
# The request itself is wrong: no retry, no failover, the caller must change it.
REJECTED_STATUSES = frozenset({400, 413, 422})


def status_failure(
    provider: str, status: int, headers: Mapping[str, str], message: str
) -> ProviderFailed | InvalidRequest:
    if status in REJECTED_STATUSES:
        return InvalidRequest(f"{provider} rejected the request ({status}): {message[:300]}")
    retryable = status in RETRYABLE_STATUSES or status >= 500
    # 401/403/404/402 are not worth retrying here but another provider may well answer.
    return ProviderFailed(
        f"{provider} answered {status}",
        provider=provider,
        retryable=retryable,
        status=status,
        retry_after_seconds=retry_after(headers),
    )


def transport_failure(provider: str, what: str) -> ProviderFailed:
    return ProviderFailed(f"{provider}: {what}", provider=provider, retryable=True)


def malformed(provider: str) -> ProviderFailed:
    return ProviderFailed(
        f"{provider} sent a response that could not be read", provider=provider, retryable=True
    )


def retry_after(headers: Mapping[str, str]) -> float | None:
    for name in ("retry-after-ms", "retry-after"):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw)
        except ValueError:
            continue  # an HTTP date: rare from model APIs; our own backoff applies
        return value / 1000 if name == "retry-after-ms" else value
    return None


@contextmanager
def vendor_errors(translate: Callable[[Exception], GuildstackError]) -> Iterator[None]:
    """Around SDK calls: domain errors pass, anything the SDK raises leaves translated."""
    try:
        yield
    except GuildstackError:
        raise
    except Exception as exc:
        raise translate(exc) from exc
