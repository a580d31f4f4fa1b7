"""The JSON-schema validator: each keyword of the subset, paths, and wording."""

from __future__ import annotations

from typing import Any

import pytest

from guildstack.domain.jsonschema import path_join, validate, validate_at


@pytest.mark.parametrize(
    ("kind", "valid", "invalid"),
    [
        ("object", [{}, {"a": 1}], [[], "{}", None]),
        ("array", [[], [1, "a"]], [{}, "[]", None]),
        ("string", ["", "x"], [1, None, ["x"]]),
        ("integer", [0, -3, 2.0], [1.5, True, "1", None]),
        ("number", [0, 1.5, -2], [True, False, "1.5", None]),
        ("boolean", [True, False], [0, 1, "true", None]),
        ("null", [None], [0, "", False, {}]),
    ],
)
def test_given_a_type_then_its_values_pass_and_others_fail(
    kind: str, valid: list[Any], invalid: list[Any]
) -> None:
    for value in valid:
        assert validate(value, {"type": kind}) == [], value
    for value in invalid:
        problems = validate(value, {"type": kind})
        assert len(problems) == 1 and problems[0].startswith("$: must be "), value


def test_given_a_type_list_then_any_listed_type_passes() -> None:
    schema = {"type": ["string", "null"]}

    assert validate("x", schema) == validate(None, schema) == []
    assert validate(3, schema) == ["$: must be a string or null, got an integer (3)"]


def test_given_the_wrong_type_then_only_the_type_is_reported() -> None:
    schema = {"type": "string", "minLength": 5, "enum": ["hello"]}

    assert validate(12, schema) == ["$: must be a string, got an integer (12)"]


def test_given_properties_then_each_present_one_is_checked_with_its_path() -> None:
    schema = {"properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}

    assert validate({"name": "Ada"}, schema) == []
    assert validate({"name": 1, "age": "x"}, schema) == [
        "$.name: must be a string, got an integer (1)",
        '$.age: must be an integer, got a string ("x")',
    ]


def test_given_required_then_missing_names_are_reported() -> None:
    schema = {"type": "object", "required": ["vote", "reason"]}

    assert validate({"vote": "accept", "reason": "ok"}, schema) == []
    assert validate({"vote": "accept"}, schema) == ["$.reason: is required but missing"]


def test_given_additional_properties_false_then_unknown_names_are_reported() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {}, "b": {}},
        "additionalProperties": False,
    }

    assert validate({"a": 1}, schema) == []
    assert validate({"a": 1, "c": 2, "two words": 3}, schema) == [
        "$.c: is not an allowed property (allowed: a, b)",
        '$["two words"]: is not an allowed property (allowed: a, b)',
    ]


def test_given_additional_properties_as_a_schema_then_extra_values_must_match_it() -> None:
    schema = {"type": "object", "additionalProperties": {"type": "number"}}

    assert validate({"x": 1, "y": 2.5}, schema) == []
    assert validate({"x": "1"}, schema) == ['$.x: must be a number, got a string ("1")']


def test_given_an_enum_then_only_its_values_pass_with_json_equality() -> None:
    schema = {"enum": ["accept", "reject", 1, None]}

    for value in ("accept", "reject", 1, 1.0, None):
        assert validate(value, schema) == [], value
    assert validate("maybe", schema) == [
        '$: must be one of "accept", "reject", 1, null; got "maybe"'
    ]
    assert validate(True, schema) != []  # true is not 1 in JSON


def test_given_a_const_then_only_an_equal_value_passes() -> None:
    schema = {"const": {"kind": "plan", "steps": [1, 2]}}

    assert validate({"steps": [1.0, 2], "kind": "plan"}, schema) == []
    assert validate({"kind": "plan", "steps": [2, 1]}, schema) == [
        '$: must be {"kind": "plan", "steps": [1, 2]}, got {"kind": "plan", "steps": [2, 1]}'
    ]
    assert validate(False, {"const": 0}) != []


def test_given_items_then_every_item_is_checked_with_its_index() -> None:
    schema = {"type": "array", "items": {"type": "string"}}

    assert validate(["a", "b"], schema) == []
    assert validate(["a", 2, "c", None], schema) == [
        "$[1]: must be a string, got an integer (2)",
        "$[3]: must be a string, got null",
    ]


def test_given_min_and_max_items_then_the_count_is_bounded() -> None:
    schema = {"type": "array", "minItems": 1, "maxItems": 2}

    assert validate([1], schema) == validate([1, 2], schema) == []
    assert validate([], schema) == ["$: must have at least 1 item, has 0"]
    assert validate([1, 2, 3], schema) == ["$: must have at most 2 items, has 3"]


def test_given_min_and_max_length_then_characters_are_counted() -> None:
    schema = {"type": "string", "minLength": 2, "maxLength": 3}

    assert validate("ab", schema) == validate("abc", schema) == []
    assert validate("éé", schema) == []  # code points, not bytes
    assert validate("a", schema) == ["$: must be at least 2 characters long, is 1"]
    assert validate("abcd", schema) == ["$: must be at most 3 characters long, is 4"]


def test_given_minimum_and_maximum_then_numbers_are_bounded_inclusively() -> None:
    schema = {"type": "number", "minimum": 0, "maximum": 1}

    for value in (0, 0.5, 1, 1.0):
        assert validate(value, schema) == [], value
    assert validate(-0.1, schema) == ["$: must be at least 0, got -0.1"]
    assert validate(1.5, schema) == ["$: must be at most 1, got 1.5"]


def test_given_bounds_without_a_type_then_they_apply_to_matching_values_only() -> None:
    schema = {"minimum": 3, "minLength": 3, "minItems": 3}

    assert validate("abc", schema) == validate(5, schema) == validate(True, schema) == []
    assert validate("ab", schema) == ["$: must be at least 3 characters long, is 2"]
    assert validate(2, schema) == ["$: must be at least 3, got 2"]


def test_given_any_of_then_one_matching_alternative_is_enough() -> None:
    schema = {"anyOf": [{"type": "string", "maxLength": 2}, {"type": "integer"}]}

    assert validate("ab", schema) == validate(7, schema) == []
    assert validate("abc", schema) == [
        "$: matches none of the allowed alternatives (#1: must be at most 2 characters long, "
        'is 3; #2: must be an integer, got a string ("abc"))'
    ]


def test_given_one_of_then_exactly_one_alternative_must_match() -> None:
    schema = {"oneOf": [{"type": "integer"}, {"type": "number", "maximum": 10}]}

    assert validate(2.5, schema) == [] and validate(20, schema) == []
    assert validate(5, schema) == ["$: must match exactly one alternative, matches #1, #2"]
    assert validate("x", schema)[0].startswith("$: matches none of the allowed alternatives")


def test_given_boolean_schemas_then_true_allows_anything_and_false_nothing() -> None:
    assert validate({"anything": [1]}, True) == []
    assert validate({"a": 1}, {"properties": {"a": False}}) == ["$.a: no value is allowed here"]


def test_given_unknown_keywords_then_they_are_ignored() -> None:
    assert validate("abc", {"type": "string", "pattern": "^z", "format": "email"}) == []


def test_given_nested_objects_and_arrays_then_paths_lead_to_the_problem() -> None:
    schema = {
        "type": "object",
        "properties": {
            "tasks": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"depends_on": {"type": "array", "items": {"type": "string"}}},
                    "required": ["title"],
                },
            }
        },
    }

    problems = validate({"tasks": [{"title": "a"}, {"depends_on": ["a", 3]}]}, schema)

    assert problems == [
        "$.tasks[1].title: is required but missing",
        "$.tasks[1].depends_on[1]: must be a string, got an integer (3)",
    ]


def test_given_long_values_then_problems_show_them_shortened() -> None:
    problems = validate("x" * 500, {"enum": ["short"]})

    assert len(problems) == 1 and len(problems[0]) < 120 and problems[0].endswith("…")


def test_given_a_base_path_then_problems_start_from_it() -> None:
    assert validate_at(1, {"type": "string"}, "$.plan") == [
        "$.plan: must be a string, got an integer (1)"
    ]
    assert path_join("$", "a") == "$.a" and path_join("$", 0) == "$[0]"
    assert path_join("$", "a.b") == '$["a.b"]'


def test_given_the_same_instance_then_the_same_problems_in_the_same_order() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "required": ["c", "d"],
        "additionalProperties": False,
    }
    instance = {"b": 1, "a": 2, "e": 3}

    assert validate(instance, schema) == validate(dict(instance), schema)
    assert validate(instance, schema) == [
        "$.c: is required but missing",
        "$.d: is required but missing",
        "$.a: must be a string, got an integer (2)",
        "$.b: must be a string, got an integer (1)",
        "$.e: is not an allowed property (allowed: a, b)",
    ]
