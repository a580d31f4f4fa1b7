"""The keyword router: chat's fallback when the routing model cannot answer, and what runs
offline. Measured on a labeled set of real-sounding messages, plus focused rules."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from guildstack.agents.catalog import load_agents
from guildstack.config import DEFAULT_CATALOG_DIR
from guildstack.domain.agents import AgentSpec
from guildstack.domain.routing import (
    RoutedAgent,
    RoutingDecision,
    RoutingMethod,
    keyword_terms,
    merge_explicit,
    route_by_keywords,
)

ROUTING_SET = Path(__file__).resolve().parents[1] / "data" / "routing_set.json"
CATALOG = load_agents(DEFAULT_CATALOG_DIR / "agents.yaml")
CORE_GUILD = [a for a in CATALOG if a.guild == "core"]  # what chat may route to
SPECIALISTS = {a.code for a in CORE_GUILD} - {"nicole_core"}


def _messages() -> list[dict[str, Any]]:
    data: dict[str, Any] = json.loads(ROUTING_SET.read_text(encoding="utf-8"))
    messages: list[dict[str, Any]] = data["messages"]
    return messages


def _spec(code: str, keywords: tuple[str, ...] = (), description: str = "") -> AgentSpec:
    return AgentSpec(
        code,
        code.title(),
        "assistant",
        "core",
        description or f"Handles {code} requests in tests.",
        "You help.",
        keywords=keywords,
    )


def _specialists(decision: RoutingDecision) -> list[str]:
    return [agent.code for agent in decision.specialists]


# --- the labeled set ------------------------------------------------------------------------


class _Tally:
    def __init__(self) -> None:
        self.true_pos = self.false_pos = self.false_neg = 0

    def add(self, expected: set[str], routed: set[str]) -> None:
        self.true_pos += len(expected & routed)
        self.false_pos += len(routed - expected)
        self.false_neg += len(expected - routed)

    @property
    def precision(self) -> float:
        return self.true_pos / max(self.true_pos + self.false_pos, 1)

    @property
    def recall(self) -> float:
        return self.true_pos / max(self.true_pos + self.false_neg, 1)

    def line(self, label: str) -> str:
        return (
            f"{label:<26} precision {self.precision:.3f}  recall {self.recall:.3f}  "
            f"(tp {self.true_pos}, fp {self.false_pos}, fn {self.false_neg})"
        )


def test_the_routing_set_is_labeled_with_real_specialists_and_covers_each_of_them() -> None:
    messages = _messages()
    assert len(messages) >= 60
    coverage = Counter(code for m in messages for code in m["expected"])
    assert set(coverage) <= SPECIALISTS
    assert all(coverage[code] >= 5 for code in SPECIALISTS), coverage
    assert sum(1 for m in messages if not m["expected"]) >= 5  # the core assistant alone
    assert sum(1 for m in messages if len(m["expected"]) >= 2) >= 5


def test_keyword_routing_precision_and_recall_on_the_routing_set(
    capsys: pytest.CaptureFixture[str],
) -> None:
    overall, by_round = _Tally(), dict[int, _Tally]()
    for message in _messages():
        decision = route_by_keywords(message["text"], CORE_GUILD)
        expected, routed = set(message["expected"]), set(_specialists(decision))
        overall.add(expected, routed)
        by_round.setdefault(message["round"], _Tally()).add(expected, routed)

    last = max(by_round)
    with capsys.disabled():
        print("\nkeyword routing, micro-averaged over specialists (core excluded):")  # noqa: T201
        print(overall.line(f"all {len(_messages())} messages"))  # noqa: T201
        for number, tally in sorted(by_round.items()):
            label = f"round {number}" + (" (never tuned on)" if number == last else "")
            print(tally.line(label))  # noqa: T201

    assert overall.recall >= 0.8
    assert overall.precision >= 0.7


# --- the rules ------------------------------------------------------------------------------

SEO = _spec("seo", ("seo", "meta description", "ranking"))
BILLING = _spec("billing", ("invoice", "pricing"))
DEBUG = _spec("debug", ("debug", "error", "stack trace"))
UI = _spec("ui", ("pricing table", "react"))
CORE = _spec("nicole_core", ("plan",))
TEAM = [CORE, SEO, BILLING, DEBUG, UI]


@pytest.mark.parametrize(
    "message",
    [
        "Why is my ranking so bad?",
        "Please help me debug this and also send the invoice",
        "",
        "What should we cook tonight?",
    ],
)
def test_the_core_agent_is_always_last_with_full_confidence(message: str) -> None:
    decision = route_by_keywords(message, TEAM)

    assert decision.agents[-1] == RoutedAgent("nicole_core", 1.0)
    assert decision.codes.count("nicole_core") == 1
    assert decision.method is RoutingMethod.KEYWORDS
    assert decision.model is None


def test_given_candidates_without_the_core_agent_then_it_still_closes_the_decision() -> None:
    decision = route_by_keywords("seo please", [SEO], core="helper")

    assert decision.codes == ("seo", "helper")


@pytest.mark.parametrize("message", ["", "   ", "?!", "...and then"])
def test_given_a_message_without_matching_words_then_only_the_core_agent_answers(
    message: str,
) -> None:
    assert route_by_keywords(message, TEAM).codes == ("nicole_core",)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Two INVOICES are overdue", ["billing"]),
        ("I've been debugging since noon", ["debug"]),
        ("Debugged it, now the errors are back", ["debug"]),
        ("Here are the stack traces", ["debug"]),
        ("Write the meta descriptions for the blog", ["seo"]),
        ("Our rankings dropped after the SEO-audit", ["seo"]),
    ],
)
def test_plurals_and_word_forms_meet_their_keyword(message: str, expected: list[str]) -> None:
    assert _specialists(route_by_keywords(message, TEAM)) == expected


def test_word_forms_fold_to_the_same_terms() -> None:
    assert keyword_terms("invoices") == keyword_terms("invoice") == keyword_terms("invoiced")
    assert keyword_terms("debugging") == keyword_terms("debug") == keyword_terms("debugged")
    assert keyword_terms("queries") == keyword_terms("query")
    assert keyword_terms("optimisation") == keyword_terms("optimize")
    assert keyword_terms("KeyError") == keyword_terms("error")
    assert keyword_terms("Next.js, n+1 and C#") == ("next.js", "n+1", "and", "c#")


@pytest.mark.parametrize(
    "message",
    ["I'm moving to Seoul", "Is this errorless?", "A prerequisite for the class", "reactor"],
)
def test_keywords_match_whole_words_only(message: str) -> None:
    team = [*TEAM, _spec("reviews", ("pr",))]

    assert route_by_keywords(message, team).codes == ("nicole_core",)


def test_a_phrase_claims_its_words_from_a_single_word_keyword() -> None:
    decision = route_by_keywords("Build a pricing table in the page", TEAM)

    assert _specialists(decision) == ["ui"]  # "pricing" inside "pricing table" is not billing


def test_a_phrase_outranks_a_single_word() -> None:
    decision = route_by_keywords("Check the stack trace; the invoice job died", TEAM)

    debug, billing = decision.specialists
    assert (debug.code, billing.code) == ("debug", "billing")
    assert debug.confidence > billing.confidence


def test_specialists_are_sorted_by_confidence_capped_and_confidences_are_in_range() -> None:
    message = "React pricing table for the SEO page: debug the error, ranking, meta description"
    decision = route_by_keywords(message, TEAM, max_specialists=2)

    confidences = [agent.confidence for agent in decision.specialists]
    assert len(confidences) == 2
    assert confidences == sorted(confidences, reverse=True)
    assert all(0 < c <= 1 for c in confidences)
    assert _specialists(decision)[0] == "seo"  # three matches, two of them phrases


def test_given_max_specialists_zero_then_only_the_core_agent_answers() -> None:
    assert route_by_keywords("seo", TEAM, max_specialists=0).codes == ("nicole_core",)


def test_a_keyword_shared_by_two_agents_is_weaker_than_an_own_keyword() -> None:
    team = [_spec("a", ("review", "pull request")), _spec("b", ("review", "security"))]

    assert route_by_keywords("Please review this", team).codes == ("nicole_core",)
    assert route_by_keywords("Review this pull request", team).codes == ("a", "nicole_core")


def test_the_same_input_always_gives_the_same_decision() -> None:
    message = "The React build fails with an error and the invoice page ranking dropped"
    first = route_by_keywords(message, TEAM)

    for _ in range(5):
        again = route_by_keywords(message, TEAM)
        assert again.agents == first.agents
        assert again.method == first.method


def test_ties_keep_the_candidates_order() -> None:
    team = [_spec("first", ("widget",)), _spec("second", ("gadget",))]

    assert route_by_keywords("widget and gadget", team).codes == ("first", "second", "nicole_core")
    assert route_by_keywords("gadget and widget", team[::-1]).codes[:2] == ("second", "first")


def test_an_agent_without_keywords_is_matched_on_distinctive_description_words() -> None:
    tax = _spec("tax_helper", description="Helps with German tax returns, VAT and receipts.")

    assert route_by_keywords("Is my VAT return due?", [CORE, tax]).codes[0] == "tax_helper"
    # "helps" and "with" are stop words: a generic request does not reach it
    assert route_by_keywords("Can you help with this?", [CORE, tax]).codes == ("nicole_core",)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Quote for a logo redesign", {"design_agent", "business_agent"}),
        ("My React build fails with a TypeError", {"frontend_developer", "error_agent"}),
        ("Is this login form safe from SQL injection?", {"code_review_agent"}),
        ("What should I cook tonight?", set()),
    ],
)
def test_chat_over_the_real_catalog_routes_typical_requests(
    message: str, expected: set[str]
) -> None:
    assert set(_specialists(route_by_keywords(message, CORE_GUILD))) == expected


# --- explicit picks and the decision values --------------------------------------------------


def test_explicit_picks_keep_order_drop_unknown_and_repeated_codes_and_end_with_core() -> None:
    decision = merge_explicit(["ui", "ghost", "seo", "ui", "nicole_core"], TEAM)

    assert decision.codes == ("ui", "seo", "nicole_core")
    assert decision.method is RoutingMethod.EXPLICIT
    assert all(agent.confidence == 1.0 for agent in decision.agents)


def test_given_only_unknown_explicit_codes_then_the_core_agent_answers_alone() -> None:
    assert merge_explicit(["ghost", "LORD-001"], TEAM).codes == ("nicole_core",)


@pytest.mark.parametrize("confidence", [0.0, -0.1, 1.01])
def test_a_routed_agent_refuses_a_confidence_outside_zero_to_one(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        RoutedAgent("seo", confidence)


def test_agent_spec_of_turns_keywords_into_a_tuple_and_defaults_to_none() -> None:
    base = {
        "code": "x_agent",
        "name": "X",
        "role": "assistant",
        "guild": "core",
        "description": "Handles x.",
        "system_prompt": "You help.",
    }

    assert AgentSpec.of(**base, keywords=["x ray", "xylophone"]).keywords == ("x ray", "xylophone")
    assert AgentSpec.of(**base).keywords == ()
