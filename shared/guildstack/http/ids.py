"""Ids in paths and headers only in the canonical form, 8-4-4-4-12 hex digits.

Python and pydantic also read a UUID as 32 bare hex digits, in braces, or as a `urn:uuid:`
URN: one resource would then have many URLs (and many keys for anything keyed by the raw
path: caches, logs, limits). Hex digits are case-insensitive on input, as RFC 9562 says.
"""

import re
import types
import typing
from typing import Any
from uuid import UUID

from fastapi import Request
from fastapi.dependencies.models import Dependant

from guildstack.domain.errors import InvalidInput

CANONICAL_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_UUID_PATH_PARAMS: dict[int, frozenset[str]] = {}


def canonical_uuid(raw: str) -> UUID | None:
    """The UUID `raw` spells in canonical form, else None."""
    return UUID(raw) if CANONICAL_UUID.match(raw) else None


async def canonical_path_ids(request: Request) -> None:
    """An app-wide dependency: 422 for a UUID path parameter not in canonical form (what
    FastAPI answers for one that is no UUID at all)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    names = _UUID_PATH_PARAMS.get(id(route))
    if names is None:
        names = _UUID_PATH_PARAMS[id(route)] = frozenset(_uuid_path_params(dependant))
    errors = [
        {
            "loc": ["path", name],
            "msg": "must be a UUID in canonical form (8-4-4-4-12 hex digits)",
            "type": "uuid_not_canonical",
        }
        for name in sorted(names)
        if not CANONICAL_UUID.match(str(request.path_params.get(name, "")))
    ]
    if errors:
        raise InvalidInput("; ".join(f"path.{e['loc'][1]}: {e['msg']}" for e in errors), errors)


def _uuid_path_params(dependant: Dependant) -> set[str]:
    names = {f.alias for f in dependant.path_params if _is_uuid(f.field_info.annotation)}
    for sub in dependant.dependencies:
        names |= _uuid_path_params(sub)
    return names


def _is_uuid(annotation: Any) -> bool:
    if annotation is UUID:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        return any(_is_uuid(arg) for arg in typing.get_args(annotation))
    return False
