"""`output_schema`: a JSON schema rewritten into the subset Anthropic's structured output
accepts, losing no constraint silently (the dropped ones go into the description)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from guildstack.adapters.models.anthropic import output_schema
from guildstack.adapters.models.offline import example_for
from guildstack.domain.jsonschema import validate
from tests.unit.test_offline_json import PLAN_SCHEMA, ROUTER_SCHEMA, VOTE_SCHEMA


def test_given_objects_at_any_depth_then_each_closes_additional_properties() -> None:
    schema = {
        "type": "object",
        "properties": {
            "open": {"type": "object", "additionalProperties": True},
            "map": {"type": "object", "additionalProperties": {"type": "integer"}},
            "list": {"type": "array", "items": {"properties": {"a": {"type": "string"}}}},
            "either": {"anyOf": [{"type": "object"}, {"type": "null"}]},
        },
    }

    converted = output_schema(schema)

    props = converted["properties"]
    assert converted["additionalProperties"] is False
    assert props["open"] == props["map"] == {"type": "object", "additionalProperties": False}
    assert props["list"]["items"] == {
        "properties": {"a": {"type": "string"}},
        "type": "object",
        "additionalProperties": False,
    }
    assert props["either"]["anyOf"][0] == {"type": "object", "additionalProperties": False}


@pytest.mark.parametrize(
    ("schema", "kept", "constraints"),
    [
        ({"type": "number", "minimum": 0, "maximum": 1}, {}, '{"maximum": 1, "minimum": 0}'),
        ({"type": "integer", "multipleOf": 5}, {}, '{"multipleOf": 5}'),
        (
            {"type": "string", "minLength": 3, "maxLength": 9},
            {},
            '{"maxLength": 9, "minLength": 3}',
        ),
        ({"type": "string", "pattern": "^[a-z]+$"}, {}, '{"pattern": "^[a-z]+$"}'),
        ({"type": "string", "format": "regex"}, {}, '{"format": "regex"}'),
        ({"type": "string", "format": "date-time"}, {"format": "date-time"}, None),
        ({"type": "array", "minItems": 1}, {"minItems": 1}, None),
        ({"type": "array", "minItems": 2, "maxItems": 4}, {}, '{"maxItems": 4, "minItems": 2}'),
    ],
)
def test_given_a_constraint_the_api_rejects_then_it_moves_into_the_description(
    schema: dict[str, Any], kept: dict[str, Any], constraints: str | None
) -> None:
    converted = output_schema(schema)

    expected = {"type": schema["type"], **kept}
    if constraints is not None:
        expected["description"] = f"Constraints: {constraints}"
    assert converted == expected


def test_given_a_description_then_constraints_are_appended_to_it() -> None:
    converted = output_schema({"type": "number", "description": "How sure.", "maximum": 1})

    assert converted["description"] == 'How sure.\n\nConstraints: {"maximum": 1}'


def test_given_one_of_then_any_of_and_both_then_both_kept_apart() -> None:
    one = output_schema({"oneOf": [{"type": "string"}, {"type": "null"}]})
    both = output_schema({"anyOf": [{"type": "string"}], "oneOf": [{"const": "a"}]})

    assert one == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert both == {"anyOf": [{"type": "string"}], "allOf": [{"anyOf": [{"const": "a"}]}]}


def test_given_a_type_list_then_one_alternative_per_type_with_its_own_keywords() -> None:
    schema = {
        "type": ["string", "integer", "null"],
        "description": "A note or a count.",
        "maxLength": 20,
        "minimum": 0,
    }

    assert output_schema(schema) == {
        "description": "A note or a count.",
        "anyOf": [
            {"type": "string", "description": 'Constraints: {"maxLength": 20}'},
            {"type": "integer", "description": 'Constraints: {"minimum": 0}'},
            {"type": "null"},
        ],
    }
    assert output_schema({"type": ["boolean"]}) == {"type": "boolean"}


def test_given_enum_or_const_then_the_values_stand_without_a_type() -> None:
    assert output_schema({"type": "string", "enum": ["a", "b"]}) == {"enum": ["a", "b"]}
    assert output_schema({"type": ["string", "null"], "const": "x"}) == {"const": "x"}


def test_given_another_types_keyword_then_it_is_left_out_as_moot() -> None:
    assert output_schema({"type": "number", "minLength": 3, "items": {}}) == {"type": "number"}


def test_given_definitions_and_references_then_both_are_kept_and_converted() -> None:
    schema = {
        "type": "object",
        "properties": {"task": {"$ref": "#/$defs/task"}},
        "$defs": {"task": {"type": "object", "properties": {"n": {"type": "integer"}}}},
    }

    converted = output_schema(schema)

    assert converted["properties"]["task"] == {"$ref": "#/$defs/task"}
    assert converted["$defs"]["task"]["additionalProperties"] is False


@pytest.mark.parametrize(
    "schema", [ROUTER_SCHEMA, VOTE_SCHEMA, PLAN_SCHEMA], ids=["router", "vote", "plan"]
)
def test_given_realistic_schemas_then_valid_answers_stay_valid_and_input_is_untouched(
    schema: dict[str, Any],
) -> None:
    before = copy.deepcopy(schema)

    converted = output_schema(schema)

    assert schema == before
    # Only loosened (bar closing objects): whatever fits the original fits what is sent.
    assert validate(example_for(schema, "seed"), converted) == []
