"""The offline provider's JSON: valid against the schema it was given, and deterministic."""

from __future__ import annotations

import json
from typing import Any

import pytest

from guildstack.adapters.models.offline import OfflineProvider, example_for
from guildstack.domain.jsonschema import validate
from guildstack.domain.models import ChatMessage, ModelRequest

VOTE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "vote": {"type": "string", "enum": ["accept", "reject", "abstain"]},
        "reason": {"type": "string", "minLength": 10, "maxLength": 400},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["vote", "reason", "confidence"],
    "additionalProperties": False,
}

ROUTER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "routes": {
            "type": "array",
            "minItems": 1,
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {
                    "agent": {"type": "string", "enum": ["seo", "design", "copy", "ads"]},
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                },
                "required": ["agent", "confidence"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["routes"],
    "additionalProperties": False,
}

PLAN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "goal": {"type": "string", "minLength": 20},
        "phases": {
            "type": "array",
            "minItems": 2,
            "maxItems": 4,
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 12},
                    "tasks": {
                        "type": "array",
                        "minItems": 3,
                        "items": {
                            "type": "object",
                            "properties": {
                                "key": {"type": "string", "minLength": 3, "maxLength": 8},
                                "agent": {"enum": ["seo", "design", "copy"]},
                                "depends_on": {
                                    "type": "array",
                                    "items": {"type": "string"},
                                    "maxItems": 2,
                                },
                                "budget_share": {
                                    "type": "number",
                                    "minimum": 0.05,
                                    "maximum": 0.4,
                                },
                                "priority": {"type": "integer", "minimum": 2, "maximum": 5},
                                "blocking": {"type": "boolean"},
                                "note": {"type": ["string", "null"]},
                            },
                            "required": ["key", "agent", "depends_on", "budget_share"],
                            "additionalProperties": False,
                        },
                    },
                },
                "required": ["name", "tasks"],
            },
        },
        "review": {
            "oneOf": [
                {"type": "null"},
                {"type": "object", "properties": {"by": {"const": "nicole_core"}}},
            ]
        },
        "mode": {"anyOf": [{"type": "integer", "minimum": 10}, {"const": "auto"}]},
    },
    "required": ["goal", "phases", "review"],
    "additionalProperties": False,
}


def ask(text: str, schema: dict[str, Any]) -> ModelRequest:
    return ModelRequest(
        system="You plan.", messages=(ChatMessage("user", text),), json_schema=schema
    )


@pytest.mark.parametrize(
    "schema", [ROUTER_SCHEMA, VOTE_SCHEMA, PLAN_SCHEMA], ids=["router", "vote", "plan"]
)
async def test_given_a_realistic_schema_then_offline_output_is_valid_and_deterministic(
    schema: dict[str, Any],
) -> None:
    offline = OfflineProvider()

    first = await offline.complete("offline", ask("plan my launch", schema))
    again = await offline.complete("offline", ask("plan my launch", schema))

    value = json.loads(first.text)
    assert validate(value, schema) == []
    assert first.text == again.text
    assert set(value) == set(schema["properties"])  # optional members are shown too


async def test_given_the_plan_schema_then_offline_respects_counts_bounds_and_nesting() -> None:
    value = json.loads(OfflineProvider().answer(ask("plan", PLAN_SCHEMA)))

    phases = value["phases"]
    assert len(phases) == 2 and all(len(phase["tasks"]) == 3 for phase in phases)
    task = phases[0]["tasks"][0]
    assert 0.05 <= task["budget_share"] <= 0.4 and 2 <= task["priority"] <= 5
    assert 3 <= len(task["key"]) <= 8 and len(task["depends_on"]) == 1
    assert len(value["goal"]) >= 20 and value["mode"] >= 10


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "integer", "minimum": 7, "maximum": 9},
        {"type": "integer", "maximum": -4},
        {"type": "number", "minimum": 2},
        {"type": "number", "maximum": 0.1},
        {"type": "string", "maxLength": 3},
        {"type": "string", "minLength": 40},
        {"type": "array", "maxItems": 0},
        {"type": "array", "minItems": 4, "items": {"enum": [1, 2]}},
        {"type": ["null", "boolean"]},
        {"type": "object", "required": ["a", "b"], "properties": {"a": {"const": 1}}},
        {"type": "object", "required": ["x"], "additionalProperties": {"type": "integer"}},
        {"type": "string", "enum": [1, "one", None]},
        {"oneOf": [{"type": "number"}, {"type": "integer"}]},
        {"oneOf": [{"type": "integer"}, {"type": "number", "maximum": 0.1}]},
        {"anyOf": [{"type": "string", "maxLength": 0}, {"type": "null"}], "minLength": 1},
        {"allOf": [{"properties": {"a": {"type": "integer"}}}, {"required": ["b"]}]},
        {"properties": {"nested": {"properties": {"deep": {"type": "array"}}}}},
        {},
    ],
)
def test_given_each_keyword_then_offline_examples_pass_the_validator(
    schema: dict[str, Any],
) -> None:
    for seed in ("a", "b", "c"):
        assert validate(example_for(schema, seed), schema) == [], seed


def test_given_an_enum_then_offline_choices_vary_with_the_request_only() -> None:
    schema = {"type": "string", "enum": ["accept", "reject", "abstain"]}

    picks = {example_for(schema, f"request-{i}") for i in range(30)}

    assert picks == {"accept", "reject", "abstain"}
    assert example_for(schema, "same") == example_for(schema, "same")


def test_given_a_valid_default_then_it_is_the_offline_answer_and_an_invalid_one_is_not() -> None:
    chosen = {"enum": ["accept", "reject", "abstain"], "default": "accept"}
    invalid = {"enum": ["accept", "reject"], "default": "maybe"}

    assert {example_for(chosen, f"request-{i}") for i in range(30)} == {"accept"}
    assert {example_for(invalid, f"request-{i}") for i in range(30)} <= {"accept", "reject"}
