"""Which agents a chat message reaches: the keyword router and a client's explicit picks.

A fast model call normally routes a chat message. When it cannot (timeout, invalid output,
open circuit, the offline provider) `route_by_keywords` decides alone, so it must stand on
its own: it matches case-insensitively on word boundaries, folds plurals and common
suffixes on both sides ("invoices" meets "invoice", "debugging" meets "debug"), lets a
phrase outrank the single words inside it, and discounts words that several candidates
share. The core assistant is always part of a decision and always last, because it speaks
last and merges what the specialists said. No I/O.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

from guildstack.domain.agents import AgentSpec

__all__ = [
    "CORE_AGENT",
    "RoutedAgent",
    "RoutingDecision",
    "RoutingMethod",
    "keyword_terms",
    "merge_explicit",
    "route_by_keywords",
    "routing_json",
]

CORE_AGENT = "nicole_core"


class RoutingMethod(StrEnum):
    """Who chose the agents: the routing model, the keyword fallback, or the client."""

    MODEL = "model"
    KEYWORDS = "keywords"
    EXPLICIT = "explicit"


@dataclass(frozen=True)
class RoutedAgent:
    code: str
    confidence: float  # in (0, 1]; 1.0 for the core agent and for explicit picks

    def __post_init__(self) -> None:
        if not 0.0 < self.confidence <= 1.0:
            raise ValueError(f"confidence must be in (0, 1], got {self.confidence}")


@dataclass(frozen=True)
class RoutingDecision:
    """The agents a message goes to: specialists by falling confidence, then the core agent.

    `latency_ms` is the time the deciding method took; a caller that tried the model first
    and fell back replaces it with the total. `model` names the routing model, if one decided.
    """

    method: RoutingMethod
    agents: tuple[RoutedAgent, ...]
    latency_ms: float
    model: str | None = None

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(agent.code for agent in self.agents)

    @property
    def specialists(self) -> tuple[RoutedAgent, ...]:
        """Everyone but the core agent (which is last)."""
        return self.agents[:-1]


# --- text to terms ---------------------------------------------------------------------------

# A word: letters or digits, keeping inner ".'+#" so that "next.js", "n+1", "c#" and "it's"
# stay one token; any other character (spaces, hyphens, slashes, quotes) separates words.
_TOKEN = re.compile(r"[^\W_]+(?:[.'+#][^\W_]+)*[+#]*")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'"})
_VOWELS = frozenset("aeiouy")
# Doubled final consonants that "-ing"/"-ed" create ("debugging", "stopped"); l, s and z
# double in the base word too ("billing", "processed", "buzzed").
_UNDOUBLE = frozenset("bdfgkmnprt")
_SPELLING = (("colour", "color"), ("behaviour", "behavior"), ("favour", "favor"))
# British "-ise" forms meet American "-ize" ones ("optimise", "optimised", "optimisation").
_ISE = re.compile(r"is(e|ed|es|ing|ation|ations|er|ers)$")
_ERROR_NAMES = ("error", "exception")


def _stem(word: str) -> str:
    """A light suffix folder: enough to let word forms meet, not a linguistic stemmer.

    It only has to map the forms a keyword and a message use to the same string; the
    result need not be a real word ("invoice" and "invoices" both become "invoic").
    """
    if word.endswith("'s"):
        word = word[:-2]
    word = word.strip("'")
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith(_ERROR_NAMES) and word not in _ERROR_NAMES:
        return "error"  # "TypeError", "KeyError", "NullPointerException": an error, by name
    for british, american in _SPELLING:
        word = word.replace(british, american)
    word = _ISE.sub(r"iz\1", word)
    # plurals
    if word.endswith("ies") and len(word) > 4:
        word = word[:-2]  # "queries" -> "queri", like "query" below
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith(("xes", "ches", "shes")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    # derivations
    if word.endswith("ally") and len(word) > 6:
        word = word[:-2]  # "visually" -> "visual"; other "-ly" words keep theirs ("supply")
    if word.endswith("ization"):
        word = word[: -len("ation")] + "e"  # "optimization" -> "optimize"
    elif word.endswith(("tion", "sion")) and len(word) >= 7:
        word = word[: -len("ion")]  # "injection" -> "inject", "validation" -> "validat"
    for suffix, shortest_stem in (("ment", 4), ("ing", 3), ("ed", 3), ("er", 4)):
        stem = word[: -len(suffix)]
        if not word.endswith(suffix) or len(stem) < shortest_stem:
            continue
        if not _VOWELS & set(stem) or (suffix == "ed" and stem.endswith("e")):
            break  # "string", "thing", "need", "speed": not suffixed forms
        word = stem
        if suffix in ("ing", "ed") and stem[-1] == stem[-2] and stem[-1] in _UNDOUBLE:
            word = stem[:-1]
        break
    if len(word) > 3 and word.endswith("e") and not word.endswith("ee"):
        word = word[:-1]
    if len(word) > 3 and word.endswith("y"):
        word = word[:-1] + "i"
    return word


def keyword_terms(text: str) -> tuple[str, ...]:
    """The folded word sequence that matching compares (lower case, stemmed)."""
    folded = text.translate(_APOSTROPHES).casefold()
    return tuple(_stem(token) for token in _TOKEN.findall(folded))


# Words that say nothing about which specialist a message needs; only used to pick the
# distinctive words of a description when an agent has no keywords.
_STOP_WORDS = frozenset(
    """
    a about above after again against all also always an and any anything are around as ask
    at be because been before being below best better between both but by can could
    default did do does doing done down during each either else every everyday everything
    few for from further general get gets give go good got had has have having he her here
    hers him his how however i if in including into is it its itself just keep know like
    make makes many may me might more most much must my need needs new no nor not now of
    off often on once one only or other others our out over own per please provide quick
    rather really request requests same say see she should so some something such than that
    the their them then there these they thing things this those through to too under until
    up upon us use used uses using very via want was way we well were what when where which
    while who whom whose why will with within without would yes yet you your yours
    agent agents assistant handle handles help helps question questions specialist task
    tasks work works
    """.split()
)

# A phrase weighs more than a single word: each extra word adds this much, up to the cap.
_PHRASE_STEP = 0.6
_PHRASE_CAP = 2.5
# A specialist joins when its evidence reaches one full single-word match. (Dropping those
# far behind the best-matched one was tried: it cost more two-specialist messages than it
# saved context words such as "invoice" in a question about tests.)
_MIN_SCORE = 1.0


@dataclass(frozen=True)
class _Match:
    agent: int
    start: int
    length: int
    weight: float

    @property
    def positions(self) -> range:
        return range(self.start, self.start + self.length)


def _description_terms(spec: AgentSpec) -> tuple[tuple[str, ...], ...]:
    """An agent without keywords is matched on the distinctive words of its description."""
    folded = spec.description.translate(_APOSTROPHES).casefold()
    words = [w for w in _TOKEN.findall(folded) if w not in _STOP_WORDS and not w.isdigit()]
    terms = dict.fromkeys(_stem(w) for w in words if len(w) >= 3)
    return tuple((term,) for term in terms)


@lru_cache(maxsize=512)  # specs are frozen; chat routes over the same few agents all day
def _agent_terms(spec: AgentSpec) -> tuple[tuple[str, ...], ...]:
    if spec.keywords:
        terms = (keyword_terms(keyword) for keyword in spec.keywords)
        return tuple(dict.fromkeys(t for t in terms if t))
    return _description_terms(spec)


def _occurrences(
    terms: tuple[str, ...], words: tuple[str, ...], starts: dict[str, list[int]]
) -> list[int]:
    size = len(terms)
    return [i for i in starts.get(terms[0], ()) if words[i : i + size] == terms]


def _scores(words: tuple[str, ...], specialists: Sequence[AgentSpec]) -> list[float]:
    """Evidence per specialist, in the order given.

    Longer matches claim their words first: a word inside an accepted phrase no longer
    counts for a shorter keyword (of any agent), so "pricing table" is not also "pricing".
    A keyword that several specialists list is split between them.
    """
    vocabularies = [_agent_terms(spec) for spec in specialists]
    sharing: dict[tuple[str, ...], int] = {}
    for vocabulary in vocabularies:
        for terms in vocabulary:
            sharing[terms] = sharing.get(terms, 0) + 1

    starts: dict[str, list[int]] = {}  # a pasted log can be long: look up, do not scan
    for position, word in enumerate(words):
        starts.setdefault(word, []).append(position)
    candidates: list[_Match] = []
    for index, vocabulary in enumerate(vocabularies):
        for terms in vocabulary:
            weight = min(1.0 + _PHRASE_STEP * (len(terms) - 1), _PHRASE_CAP)
            weight /= math.sqrt(sharing[terms])
            candidates.extend(
                _Match(index, start, len(terms), weight)
                for start in _occurrences(terms, words, starts)
            )
    candidates.sort(key=lambda m: (-m.length, m.start, m.agent))

    # word position -> (length, agent) of every accepted match covering it
    claimed: dict[int, list[tuple[int, int]]] = {}
    scores = [0.0] * len(specialists)
    seen_terms: set[tuple[int, tuple[str, ...]]] = set()
    for match in candidates:
        owners = [owner for p in match.positions for owner in claimed.get(p, ())]
        if any(length > match.length and agent != match.agent for length, agent in owners):
            continue  # inside another agent's longer phrase
        if all(any(a == match.agent for _, a in claimed.get(p, ())) for p in match.positions):
            continue  # inside this agent's own accepted matches: no double counting
        terms = words[match.start : match.start + match.length]
        if (match.agent, terms) in seen_terms:
            continue  # a keyword counts once however often it is repeated
        seen_terms.add((match.agent, terms))
        for position in match.positions:
            claimed.setdefault(position, []).append((match.length, match.agent))
        scores[match.agent] += match.weight
    return scores


def _confidence(score: float) -> float:
    # One plain word gives 0.5, a phrase about 0.6, three words 0.75; never 0 nor above 1.
    return round(score / (score + 1.0), 3)


def route_by_keywords(
    message: str,
    candidates: Sequence[AgentSpec],
    *,
    core: str = CORE_AGENT,
    max_specialists: int = 3,
) -> RoutingDecision:
    """Pick the specialists whose keywords the message uses; the core agent always closes.

    `candidates` are the agents chat may reach (the core guild and the workspace's custom
    agents); the core agent among them is ignored for matching. Ties keep candidate order,
    so the same input always gives the same decision.
    """
    started = time.perf_counter()
    by_code: dict[str, AgentSpec] = {}
    for spec in candidates:
        if spec.code != core:
            by_code.setdefault(spec.code, spec)  # the first spec of a code counts
    specialists = list(by_code.values())
    words = keyword_terms(message)
    scores = _scores(words, specialists) if words and specialists else []

    ranked = sorted(
        (i for i, score in enumerate(scores) if score >= _MIN_SCORE),
        key=lambda i: (-scores[i], i),
    )
    routed = tuple(
        RoutedAgent(specialists[i].code, _confidence(scores[i]))
        for i in ranked[: max(max_specialists, 0)]
    )
    return RoutingDecision(
        method=RoutingMethod.KEYWORDS,
        agents=(*routed, RoutedAgent(core, 1.0)),
        latency_ms=(time.perf_counter() - started) * 1000,
    )


def routing_json(decision: RoutingDecision) -> dict[str, Any]:
    """A decision as stored with a message and sent in a chat stream's `meta`."""
    return {
        "method": decision.method.value,
        "agents": [{"code": a.code, "confidence": a.confidence} for a in decision.agents],
        "latency_ms": decision.latency_ms,
        "model": decision.model,
    }


def merge_explicit(
    codes: Iterable[str], candidates: Sequence[AgentSpec], core: str = CORE_AGENT
) -> RoutingDecision:
    """The agents a client named, in its order: unknown and repeated codes are dropped
    (a client cannot reach an agent it could not route to), and the core agent closes."""
    known = {spec.code for spec in candidates}
    picked = dict.fromkeys(code for code in codes if code in known and code != core)
    return RoutingDecision(
        method=RoutingMethod.EXPLICIT,
        agents=(*(RoutedAgent(code, 1.0) for code in picked), RoutedAgent(core, 1.0)),
        latency_ms=0.0,
    )
