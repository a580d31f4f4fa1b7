"""Account kinds (admin, parent, child, standard): what each may do in chat and how the
assistant speaks to them. No I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from guildstack.domain.errors import RateLimited
from guildstack.domain.identity import AccountKind
from guildstack.domain.time import rfc3339

__all__ = ["RULES", "AccountRules", "check_limits", "is_image_prompt"]

CHILD_GUIDANCE = (
    "You are talking with a child. Answer simply, warmly and in age-appropriate words. Do not "
    "discuss mature, violent or frightening topics; never ask for personal details; for "
    "anything risky, medical or upsetting, suggest asking a parent or another trusted adult."
)


@dataclass(frozen=True)
class AccountRules:
    messages_per_day: int | None  # None: no limit
    images_per_week: int | None
    guidance: str | None = None  # added to the assistant's instructions


RULES: dict[AccountKind, AccountRules] = {
    AccountKind.ADMIN: AccountRules(None, None),
    AccountKind.PARENT: AccountRules(500, 30),
    AccountKind.STANDARD: AccountRules(300, 20),
    AccountKind.CHILD: AccountRules(50, 5, CHILD_GUIDANCE),
}

_IMAGE = re.compile(
    r"\b(draw|paint|sketch|generate|create|make|design|render|illustrate)\b.{0,60}?"
    r"\b(image|picture|photo|drawing|illustration|logo|icon|banner|poster|wallpaper|art)s?\b",
    re.IGNORECASE | re.DOTALL,
)


def is_image_prompt(text: str) -> bool:
    """Whether a message asks for an image to be generated."""
    return _IMAGE.search(text) is not None


def day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def week_start(now: datetime) -> datetime:
    """Monday 00:00 of `now`'s week."""
    return day_start(now) - timedelta(days=now.weekday())


def check_limits(
    kind: AccountKind,
    now: datetime,
    *,
    sent_today: int,
    images_this_week: int,
    image: bool,
) -> None:
    """`RateLimited` (429, naming the limit and when it resets) when one more message (or
    image prompt) would go over the account kind's limits."""
    rules = RULES[kind]
    if rules.messages_per_day is not None and sent_today >= rules.messages_per_day:
        reset = day_start(now) + timedelta(days=1)
        raise _limited(f"daily limit of {rules.messages_per_day} messages", kind, reset, now)
    if image and rules.images_per_week is not None and images_this_week >= rules.images_per_week:
        reset = week_start(now) + timedelta(days=7)
        raise _limited(f"weekly limit of {rules.images_per_week} images", kind, reset, now)


def _limited(what: str, kind: AccountKind, reset: datetime, now: datetime) -> RateLimited:
    when = rfc3339(reset)
    return RateLimited(
        f"The {what} for {kind.value} accounts is reached; it resets at {when}.",
        retry_after_seconds=max(1, int((reset - now).total_seconds())),
    )
