"""A circuit breaker per provider: stop calling one that keeps failing, probe it later."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"  # calls flow
    OPEN = "open"  # calls skip this provider until the cool-down ends
    HALF_OPEN = "half_open"  # one probe call is allowed through


class Admission(StrEnum):
    DENIED = "denied"
    ALLOWED = "allowed"
    PROBE = "probe"  # allowed as the one probe of a half-open breaker: settle or release it


@dataclass
class CircuitBreaker:
    """Opens after `threshold` consecutive failed calls; after `cooldown_seconds` lets one
    probe through: success closes it, failure opens it again. A probe that ends with neither
    (cancelled, or an error that says nothing about the provider) must be released; one
    never settled nor released expires after another cool-down, so the breaker cannot stay
    open for good. Time comes from `clock` (seconds)."""

    clock: Callable[[], float]
    threshold: int = 5
    cooldown_seconds: float = 30.0
    _failures: int = field(default=0, init=False)
    _opened_at: float | None = field(default=None, init=False)
    _probe_at: float | None = field(default=None, init=False)

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self.clock() - self._opened_at >= self.cooldown_seconds:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def admit(self) -> Admission:
        """Whether a call may go to the provider now (claims the probe when half-open)."""
        state = self.state
        if state is BreakerState.CLOSED:
            return Admission.ALLOWED
        if state is BreakerState.HALF_OPEN and not self._probing():
            self._probe_at = self.clock()
            return Admission.PROBE
        return Admission.DENIED

    def allow(self) -> bool:
        return self.admit() is not Admission.DENIED

    def retry_after(self) -> float:
        """Seconds until a call may be admitted again (0 when one may be now)."""
        now = self.clock()
        if self._opened_at is None:
            return 0.0
        until = self._opened_at + self.cooldown_seconds
        if self._probe_at is not None:
            until = max(until, self._probe_at + self.cooldown_seconds)
        return max(0.0, until - now)

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probe_at = None

    def record_failure(self) -> None:
        self._failures += 1
        if self._probe_at is not None or self._failures >= self.threshold:
            self._opened_at = self.clock()
            self._probe_at = None

    def release_probe(self) -> None:
        """The probe ended without a verdict on the provider: let another call probe."""
        self._probe_at = None

    def _probing(self) -> bool:
        if self._probe_at is None:
            return False
        if self.clock() - self._probe_at >= self.cooldown_seconds:
            self._probe_at = None  # claimed and never settled: presume it lost
            return False
        return True
