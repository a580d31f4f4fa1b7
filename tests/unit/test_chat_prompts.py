"""What a chat turn asks the models: trimmed history, memories, findings, guidance."""

from __future__ import annotations

from guildstack.agents.chat_prompts import Turn, core_request, specialist_request, trimmed
from guildstack.domain.agents import AgentSpec
from guildstack.domain.models import Tier

CORE = AgentSpec("nicole_core", "Nicole", "assistant", "core", "General help.", "You are Nicole.")
SEO = AgentSpec("seo_agent", "SEO", "analyst", "core", "Search.", "You know SEO.", Tier.FAST)


def test_given_a_long_history_then_the_newest_turns_that_fit_are_kept_from_a_user_turn() -> None:
    history = [
        Turn("user", "a" * 50),
        Turn("assistant", "b" * 50),
        Turn("user", "c" * 50),
        Turn("assistant", "d" * 50),
    ]

    kept = trimmed(history, budget=120)

    assert [t.content[0] for t in kept] == ["c", "d"]
    assert trimmed(history, budget=75) == []  # only an assistant turn would fit


def test_given_findings_memories_and_guidance_then_the_core_request_carries_them() -> None:
    history = [Turn("user", "Hi"), Turn("assistant", "Hello!")]

    request = core_request(
        CORE,
        "Which keywords?",
        history,
        "- [core] Runs a bakery",
        {"seo_agent": "Target 'sourdough Lisbon'."},
        "Speak simply.",
    )

    assert request.system.endswith("Speak simply.")
    assert [m.role for m in request.messages] == ["user", "assistant", "user"]
    last = request.messages[-1].content
    assert "Runs a bakery" in last and "sourdough Lisbon" in last
    assert last.endswith("# The user's message\nWhich keywords?")


def test_given_nothing_to_add_then_the_message_is_sent_as_is() -> None:
    request = core_request(CORE, "Hello", [], None, {}, None)
    assert [m.content for m in request.messages] == [
        "Hello"
    ] and request.system == "You are Nicole."


def test_given_a_specialist_then_its_brief_has_the_message_and_its_own_prompt() -> None:
    request = specialist_request(SEO, "Rank my site", [Turn("user", "I sell bread")], None)

    assert request.system == "You know SEO." and request.tier is Tier.FAST
    assert "Rank my site" in request.messages[0].content
    assert "User: I sell bread" in request.messages[0].content
