"""A small JSON-schema validator for the schemas we ask models to answer in. No I/O.

Providers constrain their output to a schema only partly (some ignore `minimum` or
`maxItems`, OpenAI-compatible servers often know no schema at all), so a model's reply is
checked here before anything relies on it, and the problems are worded so that the model
itself can read them and correct its answer.

The subset covers what our schemas use: `type` (one name or a list), `properties`,
`required`, `additionalProperties` (`false` or a schema), `enum`, `const`, `items`,
`minItems`, `maxItems`, `minLength`, `maxLength`, `minimum`, `maximum`, `anyOf` and
`oneOf`, plus the boolean schemas `true` and `false`. Any other keyword is ignored, as JSON
Schema ignores keywords it does not know, so a schema relying on one (`pattern`, `allOf`,
`$ref`, ...) is checked only as far as the subset goes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["TYPE_NAMES", "is_type", "path_join", "validate", "validate_at"]

TYPE_NAMES = ("object", "array", "string", "integer", "number", "boolean", "null")

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHOWN_CHARS = 60


def validate(instance: Any, schema: Mapping[str, Any] | bool) -> list[str]:
    """The ways `instance` (parsed JSON) breaks `schema`, each as `<json path>: <problem>`;
    an empty list when it is valid. Problems come in schema order, so the same instance
    always gives the same list."""
    return validate_at(instance, schema, "$")


def validate_at(instance: Any, schema: Mapping[str, Any] | bool, path: str) -> list[str]:
    """As `validate`, with paths starting at `path` (for a value inside a larger one)."""
    problems: list[str] = []
    _check(instance, schema, path, problems)
    return problems


def is_type(instance: Any, name: str) -> bool:
    """Whether `instance` is of JSON type `name`. Booleans are not numbers here, and a
    number with no fractional part (1.0) is an integer, as JSON Schema counts them."""
    if name == "object":
        return isinstance(instance, dict)
    if name == "array":
        return isinstance(instance, list)
    if name == "string":
        return isinstance(instance, str)
    if name == "boolean":
        return isinstance(instance, bool)
    if name == "null":
        return instance is None
    if isinstance(instance, bool):
        return False
    if name == "integer":
        return isinstance(instance, int) or (
            isinstance(instance, float) and math.isfinite(instance) and instance.is_integer()
        )
    if name == "number":
        return isinstance(instance, int | float)
    return False


def path_join(path: str, key: str | int) -> str:
    """`$.name`, `$["odd key"]` or `$[3]`: the path of a member or an item."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENTIFIER.match(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _check(instance: Any, schema: Mapping[str, Any] | bool, path: str, out: list[str]) -> None:
    if schema is True:
        return
    if schema is False:
        out.append(f"{path}: no value is allowed here")
        return
    if "type" in schema and not _check_type(instance, schema["type"], path, out):
        # The other keywords describe a value of the right type: more problems would be noise.
        return
    if "const" in schema and not _same(instance, schema["const"]):
        out.append(f"{path}: must be {_show(schema['const'])}, got {_show(instance)}")
    if "enum" in schema and not any(_same(instance, option) for option in schema["enum"]):
        options = ", ".join(_show(option) for option in schema["enum"])
        out.append(f"{path}: must be one of {options}; got {_show(instance)}")
    if isinstance(instance, dict):
        _check_object(instance, schema, path, out)
    elif isinstance(instance, list):
        _check_array(instance, schema, path, out)
    elif isinstance(instance, str):
        _check_string(instance, schema, path, out)
    elif is_type(instance, "number"):
        _check_number(instance, schema, path, out)
    if "anyOf" in schema:
        _check_any_of(instance, schema["anyOf"], path, out)
    if "oneOf" in schema:
        _check_one_of(instance, schema["oneOf"], path, out)


def _check_type(instance: Any, expected: str | list[str], path: str, out: list[str]) -> bool:
    names = [expected] if isinstance(expected, str) else list(expected)
    if any(is_type(instance, name) for name in names):
        return True
    wanted = " or ".join(_article(name) for name in names)
    out.append(f"{path}: must be {wanted}, got {_describe(instance)}")
    return False


def _check_object(
    instance: dict[str, Any], schema: Mapping[str, Any], path: str, out: list[str]
) -> None:
    properties: Mapping[str, Any] = schema.get("properties", {})
    for name in schema.get("required", ()):
        if name not in instance:
            out.append(f"{path_join(path, name)}: is required but missing")
    for name, subschema in properties.items():
        if name in instance:
            _check(instance[name], subschema, path_join(path, name), out)
    extra = schema.get("additionalProperties", True)
    if extra is True:
        return
    for name, value in instance.items():
        if name in properties:
            continue
        if extra is False:
            allowed = ", ".join(properties) or "none"
            out.append(f"{path_join(path, name)}: is not an allowed property (allowed: {allowed})")
        else:
            _check(value, extra, path_join(path, name), out)


def _check_array(instance: list[Any], schema: Mapping[str, Any], path: str, out: list[str]) -> None:
    count = len(instance)
    if "minItems" in schema and count < schema["minItems"]:
        out.append(f"{path}: must have at least {_items(schema['minItems'])}, has {count}")
    if "maxItems" in schema and count > schema["maxItems"]:
        out.append(f"{path}: must have at most {_items(schema['maxItems'])}, has {count}")
    items = schema.get("items")
    if isinstance(items, Mapping | bool):
        for index, item in enumerate(instance):
            _check(item, items, path_join(path, index), out)


def _check_string(instance: str, schema: Mapping[str, Any], path: str, out: list[str]) -> None:
    length = len(instance)  # code points, as JSON Schema counts them
    if "minLength" in schema and length < schema["minLength"]:
        out.append(f"{path}: must be at least {schema['minLength']} characters long, is {length}")
    if "maxLength" in schema and length > schema["maxLength"]:
        out.append(f"{path}: must be at most {schema['maxLength']} characters long, is {length}")


def _check_number(
    instance: int | float, schema: Mapping[str, Any], path: str, out: list[str]
) -> None:
    if "minimum" in schema and instance < schema["minimum"]:
        out.append(f"{path}: must be at least {schema['minimum']}, got {_show(instance)}")
    if "maximum" in schema and instance > schema["maximum"]:
        out.append(f"{path}: must be at most {schema['maximum']}, got {_show(instance)}")


def _check_any_of(instance: Any, options: list[Any], path: str, out: list[str]) -> None:
    failures = [validate_at(instance, option, path) for option in options]
    if all(failures):
        out.append(_none_matched(path, failures))


def _check_one_of(instance: Any, options: list[Any], path: str, out: list[str]) -> None:
    failures = [validate_at(instance, option, path) for option in options]
    matched = [index for index, problems in enumerate(failures) if not problems]
    if not matched:
        out.append(_none_matched(path, failures))
    elif len(matched) > 1:
        which = ", ".join(f"#{index + 1}" for index in matched)
        out.append(f"{path}: must match exactly one alternative, matches {which}")


def _none_matched(path: str, failures: list[list[str]]) -> str:
    """Each alternative's first problem, without repeating the path they share."""
    parts = []
    for index, problems in enumerate(failures):
        first = problems[0].removeprefix(f"{path}: ")
        more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
        parts.append(f"#{index + 1}: {first}{more}")
    return f"{path}: matches none of the allowed alternatives ({'; '.join(parts)})"


def _same(a: Any, b: Any) -> bool:
    """JSON equality: `true` is not `1`, `1` is `1.0`, containers compare member by member."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if is_type(a, "number") and is_type(b, "number"):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


def _describe(instance: Any) -> str:
    if instance is None:
        return "null"
    for name in ("boolean", "integer", "number", "string", "array", "object"):
        if is_type(instance, name):
            return f"{_article(name)} ({_show(instance)})"
    return type(instance).__name__


def _items(count: int) -> str:
    return "1 item" if count == 1 else f"{count} items"


def _article(name: str) -> str:
    if name == "null":
        return "null"
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def _show(value: Any) -> str:
    """A value as JSON, shortened: problems go back into a prompt and into error details."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"
