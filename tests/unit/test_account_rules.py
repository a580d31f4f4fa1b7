"""Account kinds' chat limits and the image-prompt test."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from guildstack.domain.accounts import RULES, check_limits, is_image_prompt
from guildstack.domain.errors import RateLimited
from guildstack.domain.identity import AccountKind

NOW = datetime(2026, 12, 2, 15, 30, tzinfo=UTC)  # a Wednesday


def test_given_a_child_at_its_daily_limit_then_429_naming_the_limit_and_midnight() -> None:
    limit = RULES[AccountKind.CHILD].messages_per_day
    assert limit is not None
    check_limits(AccountKind.CHILD, NOW, sent_today=limit - 1, images_this_week=0, image=False)
    with pytest.raises(RateLimited) as raised:
        check_limits(AccountKind.CHILD, NOW, sent_today=limit, images_this_week=0, image=False)
    assert "daily limit of 50 messages" in raised.value.detail
    assert "2026-12-03T00:00:00Z" in raised.value.detail
    assert raised.value.retry_after_seconds == 8 * 3600 + 30 * 60


def test_given_the_weekly_image_limit_then_only_image_prompts_are_refused_until_monday() -> None:
    limit = RULES[AccountKind.STANDARD].images_per_week
    assert limit is not None
    check_limits(AccountKind.STANDARD, NOW, sent_today=1, images_this_week=limit, image=False)
    with pytest.raises(RateLimited) as raised:
        check_limits(AccountKind.STANDARD, NOW, sent_today=1, images_this_week=limit, image=True)
    assert "weekly limit of 20 images" in raised.value.detail
    assert "2026-12-07T00:00:00Z" in raised.value.detail


def test_given_an_admin_then_no_limits() -> None:
    check_limits(AccountKind.ADMIN, NOW, sent_today=10**6, images_this_week=10**6, image=True)


@pytest.mark.parametrize(
    ("text", "image"),
    [
        ("Please draw a picture of a dragon", True),
        ("Generate a logo for my bakery", True),
        ("Can you create an image of a sunset over Lisbon?", True),
        ("What is a good name for my bakery?", False),
        ("Review this pull request", False),
    ],
)
def test_given_messages_then_image_prompts_are_recognised(text: str, image: bool) -> None:
    assert is_image_prompt(text) is image
