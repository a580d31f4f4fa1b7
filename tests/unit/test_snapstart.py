"""SnapStart's restore hooks: registered with the runtime's library when it exists (and
local runs work without it); connections dropped and randomness re-seeded after a restore."""

from __future__ import annotations

import random
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from guildstack import snapstart
from guildstack.bootstrap import build
from guildstack.config import Settings


class Resource:
    def __init__(self) -> None:
        self.forgotten = 0

    def forget_connections(self) -> None:
        self.forgotten += 1


@pytest.fixture
def fresh_hooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[Callable[[], Any]]]]:
    """A stand-in for `snapshot_restore_py` recording what is registered."""
    registered: dict[str, list[Callable[[], Any]]] = {"before": [], "after": []}
    library = types.ModuleType("snapshot_restore_py")
    library.register_before_snapshot = registered["before"].append  # type: ignore[attr-defined]
    library.register_after_restore = registered["after"].append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", library)
    monkeypatch.setattr(snapstart, "_installed", None)
    yield registered


def test_given_the_runtime_library_then_both_hooks_are_registered_once(
    fresh_hooks: dict[str, list[Callable[[], Any]]],
) -> None:
    build(Settings(stage="test"))
    build(Settings(stage="test"))

    assert fresh_hooks == {
        "before": [snapstart.before_snapshot],
        "after": [snapstart.after_restore],
    }


def test_given_no_runtime_library_then_nothing_is_registered_and_builds_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # import fails
    monkeypatch.setattr(snapstart, "_installed", None)

    assert snapstart.install() is False
    assert build(Settings(stage="test")).settings.stage == "test"


def test_given_a_restore_then_every_containers_connections_are_dropped() -> None:
    settings = Settings(
        stage="test",
        database_url=SecretStr("postgresql://nobody@127.0.0.1:1/none"),
        upstash_redis_rest_url="http://127.0.0.1:1",
        upstash_redis_rest_token=SecretStr("t"),
    )
    container = build(settings, model_providers={"a": Resource(), "b": Resource()})
    database, upstash = container.database, container.upstash
    database._pool = object()  # type: ignore[assignment]  # as if opened before the snapshot
    assert upstash is not None
    upstash._client = object()  # type: ignore[assignment]
    queue = Resource()
    container.__dict__["step_queue"] = queue

    snapstart.after_restore()

    assert not database.opened and upstash._client is None
    providers: dict[str, Any] = container.model_providers
    assert [p.forgotten for p in providers.values()] == [1, 1] and queue.forgotten == 1


def test_given_a_restore_then_random_is_reseeded() -> None:
    random.seed(1234)
    seeded = [random.random() for _ in range(3)]
    random.seed(1234)

    snapstart.after_restore()

    assert [random.random() for _ in range(3)] != seeded
