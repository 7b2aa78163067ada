"""Happy eyeballs (RFC 8305) as a plan both bodies drive: what to try, when, and who won.

The plan is pure: it never touches a socket or a clock. The body (``io.sockets`` for threads,
``aio.dial`` for asyncio) asks it which address to start now (``due``), how long it may wait
before asking again (``wait``), tells it what happened (``started``, ``failed``, ``won``) and
raises what it says (``failure``) when the dial is over without a winner. The rules:

- Addresses alternate between families, starting with the resolver's first (RFC 8305 §4,
  "First Address Family Count" 1): a host whose IPv6 is broken still gets IPv4 second.
- An attempt starts when none is in flight, when the previous one failed, or
  ``ATTEMPT_DELAY`` (250 ms, §5) after the previous one started; earlier ones keep going.
- The first to connect wins; the others are closed at once (``won`` names them).
- One deadline covers the whole dial (resolution included): when it passes, every attempt
  still in flight is abandoned and the error names each address and what became of it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from ..exceptions import ConnectError, ConnectTimeout, ResolveError

__all__ = ["ATTEMPT_DELAY", "DialAttempt", "DialPlan", "Target", "interleave", "targets_for"]

ATTEMPT_DELAY = 0.25  # RFC 8305 §5's recommended Connection Attempt Delay


class Target(NamedTuple):
    """One address to connect to: the IP as text (IPv6 may carry a ``%scope``), the port,
    and the family (4 or 6)."""

    ip: str
    port: int
    family: int


class DialAttempt(NamedTuple):
    """One connection attempt of a dial, as ``ConnectionInfo.dial_attempts`` and errors show it.

    ``address`` is (ip, port); ``started`` the seconds after the dial began (resolution
    included); ``outcome`` ``"connected"``, ``"abandoned"`` (another won, or the deadline
    passed) or the error the attempt ended with.
    """

    address: tuple[str, int]
    started: float
    outcome: str


def targets_for(host: str, addresses: Iterable[str], port: int) -> list[Target]:
    """Targets for the addresses a resolver gave ``host``, interleaved by family, duplicates
    dropped. Raises ResolveError naming ``host`` if there are none or one is not an IP."""
    found: list[Target] = []
    seen: set[str] = set()
    for text in addresses:
        try:
            parsed = ipaddress.ip_address(str(text).split("%", 1)[0])
        except ValueError:
            raise ResolveError(
                f"the resolver gave {host!r} the address {text!r}, which is not an IP address"
            ) from None
        if text not in seen:
            seen.add(text)
            found.append(Target(str(text), port, parsed.version))
    if not found:
        raise ResolveError(f"{host!r} resolved to no addresses")
    return interleave(found)


def interleave(targets: Sequence[Target]) -> list[Target]:
    """Alternate families, the first address's family first; order within a family kept."""
    if not targets:
        return []
    first = targets[0].family
    ours = [t for t in targets if t.family == first]
    others = [t for t in targets if t.family != first]
    mixed: list[Target] = []
    for i in range(max(len(ours), len(others))):
        mixed += ours[i : i + 1] + others[i : i + 1]
    return mixed


@dataclass(slots=True)
class _Attempt:
    target: Target
    started: float
    outcome: str = ""  # "" while in flight


@dataclass(slots=True)
class DialPlan:
    """The state of one dial. Times are the body's monotonic clock; ``deadline`` None means
    no limit. ``began`` is when the dial began (before resolution), for the attempts' record."""

    targets: list[Target]
    deadline: float | None
    began: float
    delay: float = ATTEMPT_DELAY
    attempts: list[_Attempt] = field(default_factory=list)
    winner: Target | None = None
    _next: int = 0
    _kick: bool = False  # an attempt failed since the last start: start the next at once

    def due(self, now: float) -> Target | None:
        """The address to start now, or None (not yet, none left, won, or past the deadline)."""
        if self.winner is not None or self._next >= len(self.targets) or self.expired(now):
            return None
        if self._kick or not self.in_flight():
            return self.targets[self._next]
        if now >= self.attempts[-1].started + self.delay:
            return self.targets[self._next]
        return None

    def started(self, target: Target, now: float) -> None:
        """The body began connecting to ``target`` (the one ``due`` gave)."""
        assert self.targets[self._next] == target
        self._next += 1
        self._kick = False
        self.attempts.append(_Attempt(target, now))

    def failed(self, target: Target, error: BaseException) -> None:
        """The attempt to ``target`` failed (refused, unreachable...): its socket is closed."""
        self._attempt(target).outcome = _describe(error)
        self._kick = True

    def won(self, target: Target) -> list[Target]:
        """``target`` connected: it is the connection. Returns the attempts to close now."""
        self.winner = target
        losers = [a.target for a in self.attempts if not a.outcome and a.target != target]
        self._attempt(target).outcome = "connected"
        self._abandon("abandoned")
        return losers

    def winner_started(self) -> float:
        """When the winning attempt started: ``connected - winner_started()`` is one TCP
        handshake, a round trip (``connect_time`` also holds the attempts before it)."""
        assert self.winner is not None
        return self._attempt(self.winner).started

    def in_flight(self) -> list[Target]:
        """The attempts started and not yet ended."""
        return [a.target for a in self.attempts if not a.outcome]

    def expired(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline

    def wait(self, now: float) -> float | None:
        """Seconds the body may wait for an attempt to end before asking ``due`` again
        (None: no limit, only an attempt ending matters)."""
        limits: list[float] = []
        if self.deadline is not None:
            limits.append(self.deadline - now)
        if self._next < len(self.targets) and self.attempts:
            limits.append(self.attempts[-1].started + self.delay - now)
        return max(0.0, min(limits)) if limits else None

    def failure(self, now: float, origin: object) -> ConnectError | ConnectTimeout | None:
        """The error that ends the dial now, or None while it may still succeed: every
        address failed (ConnectError), or the deadline passed (ConnectTimeout)."""
        if self.winner is not None:
            return None
        if self._next >= len(self.targets) and not self.in_flight():
            return ConnectError(f"cannot connect to {origin}: {self._summary()}")
        if self.expired(now):
            self._abandon("timed out")
            return ConnectTimeout(
                f"connecting to {origin} timed out after {now - self.began:.3f}s: {self._summary()}"
            )
        return None

    def record(self) -> tuple[DialAttempt, ...]:
        """Every attempt in the order started, as ``ConnectionInfo.dial_attempts`` shows it."""
        return tuple(
            DialAttempt((a.target.ip, a.target.port), a.started - self.began, a.outcome)
            for a in self.attempts
        )

    def _attempt(self, target: Target) -> _Attempt:
        for attempt in self.attempts:
            if attempt.target == target:
                return attempt
        raise ValueError(f"{target} was never started")

    def _abandon(self, outcome: str) -> None:
        for attempt in self.attempts:
            if not attempt.outcome:
                attempt.outcome = outcome

    def _summary(self) -> str:
        tried = [f"{_show(a.target)} {a.outcome}" for a in self.attempts]
        untried = [_show(t) for t in self.targets[self._next :]]
        if untried:
            tried.append(f"not tried: {', '.join(untried)}")
        return "; ".join(tried)


def _show(target: Target) -> str:
    return f"[{target.ip}]:{target.port}" if target.family == 6 else f"{target.ip}:{target.port}"


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return str(error) or type(error).__name__
