"""Lambda SnapStart: what must not outlive a snapshot.

With SnapStart a published version is initialised once (the handler imported, the
composition root built) and every new execution environment resumes from a snapshot of
that memory. Two things in it must not be shared by the environments resumed from it:

- connections and clients (database pools, HTTP clients of Redis, SQS, Supabase Auth,
  model vendors): their sockets belong to the environment that opened them. Nothing opens
  one at import, but whatever exists is dropped before the snapshot and again after a
  restore (without closing: a restored socket is not the one the snapshot saw), and is made
  again on first use;
- the seed of `random` (jitter of retries and backoffs): every restored environment would
  draw the same sequence, so it is re-seeded from the system after a restore. (`uuid4`,
  `secrets` and `os.urandom` read the system's randomness on each call.)

The hooks come from `snapshot_restore_py`, which Lambda's Python runtimes include; it is
imported when the first container is built and only if present, so local runs and tests
work without it.
"""

from __future__ import annotations

import random
import weakref
from typing import Any, Protocol


class HoldsConnections(Protocol):
    def forget_connections(self) -> int:
        """Drop every connection and client held; how many resources were reset."""
        ...


_tracked: weakref.WeakSet[Any] = weakref.WeakSet()
_installed: bool | None = None  # None: not tried yet


def track(container: HoldsConnections) -> None:
    """Reset `container`'s connections around snapshots (hooks installed on first call)."""
    _tracked.add(container)
    install()


def install() -> bool:
    """Register the runtime hooks once; False where the runtime offers none (not Lambda)."""
    global _installed
    if _installed is None:
        try:
            from snapshot_restore_py import (  # type: ignore[import-not-found, unused-ignore]
                register_after_restore,
                register_before_snapshot,
            )
        except ImportError:
            _installed = False
        else:
            register_before_snapshot(before_snapshot)
            register_after_restore(after_restore)
            _installed = True
    return _installed


def before_snapshot() -> None:
    """Nothing that was opened during initialisation goes into the snapshot."""
    _forget_all()


def after_restore() -> None:
    """A restored environment opens its own connections and draws its own random numbers."""
    random.seed()
    _forget_all()


def _forget_all() -> int:
    return sum(container.forget_connections() for container in list(_tracked))
