"""User-level retries: `Retry`, a pure policy, and the two small loops that follow it.

Distinct from the transparent lifecycle retry (a reused connection found dead, an HTTP/2
stream the server never processed), which tether does on its own because it is always safe.
These are the retries a user asks for: a 503 or 429 that says "try again later", a connect
failure. ``Retry`` decides (whether, and how long to sleep first); ``send_with_retries`` and
``asend_with_retries`` only sleep and send again. Off by default: ``Session(retries=None)``.
"""

from __future__ import annotations

import asyncio
import email.utils
import threading
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from ..exceptions import (
    ConnectError,
    ConnectTimeout,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    StreamReset,
    TLSError,
    TransportError,
    WriteError,
    WriteTimeout,
)
from ..models import IDEMPOTENT_METHODS, Request
from ..requestbody import MultipartStream
from ..response import AsyncResponse, Response

__all__ = [
    "Attempts",
    "Retry",
    "RetryCounter",
    "RetryVerdict",
    "as_retry",
    "asend_with_retries",
    "parse_retry_after",
    "send_with_retries",
]

Outcome = int | Literal["connect", "read"]
"""What an attempt ended with: a status, or the kind of error (see ``Retry.outcome_of``)."""

R = TypeVar("R", bound=Response)

# The loops wait through these names (tests replace them to record the waits, not sleep them).
sleep = time.sleep
asleep = asyncio.sleep


@dataclass(frozen=True)
class Attempts:
    """How many retries were spent so far, in all and of each kind (immutable)."""

    total: int = 0
    connect: int = 0
    read: int = 0
    status: int = 0

    def after(self, kind: str) -> Attempts:
        counts = {"connect": self.connect, "read": self.read, "status": self.status}
        counts[kind] += 1
        return Attempts(self.total + 1, **counts)


@dataclass(frozen=True)
class RetryVerdict:
    """``retry``: send again after ``sleep`` seconds; ``attempts``: the counts if it does."""

    retry: bool
    sleep: float = 0.0
    attempts: Attempts = field(default_factory=Attempts)


@dataclass(frozen=True)
class Retry:
    """When to send a request again, and how long to wait first (urllib3's ``Retry`` names).

    Args:
        total: retries in all (None: only the per-kind limits count).
        connect: retries after a failed connect (nothing reached the server, so any method).
        read: retries after the connection failed once the request may have reached the
            server (reset, read timeout, malformed response): ``allowed_methods`` only.
        status: retries of a response whose status is in ``status_forcelist``.
        backoff_factor: the n-th retry sleeps ``backoff_factor * 2 ** (n - 1)`` seconds,
        backoff_max: but never longer than this.
        status_forcelist: statuses that mean "try again" (429, 502, 503, 504).
        allowed_methods: methods retried after they may have reached the server (None: any).
            Requests with a one-shot body (an iterator, a file object) are never sent twice
            (``files=`` given as paths or bytes can be).
        respect_retry_after: a ``Retry-After`` (seconds or an HTTP-date) replaces the backoff.
        retry_after_max: a ``Retry-After`` longer than this is not waited for: the response
            is returned as it is (a server asking for an hour should not hang the caller).

    When the retries run out the last response is returned (check ``r.ok``), or the last
    error raised.
    """

    total: int | None = 3
    connect: int | None = None
    read: int | None = None
    status: int | None = None
    backoff_factor: float = 0.0
    backoff_max: float = 120.0
    status_forcelist: Collection[int] = frozenset({429, 502, 503, 504})
    allowed_methods: Collection[str] | None = IDEMPOTENT_METHODS
    respect_retry_after: bool = True
    retry_after_max: float = 300.0

    def __post_init__(self) -> None:
        for name in ("total", "connect", "read", "status"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError(f"Retry({name}=) is a count or None, not {value!r}")
            if value is not None and value < 0:
                raise ValueError(f"Retry({name}=) cannot be negative: {value}")
        if self.backoff_factor < 0 or self.backoff_max < 0 or self.retry_after_max < 0:
            raise ValueError("Retry's backoff_factor, backoff_max, retry_after_max must be >= 0")
        # Lists and lower-case names are what users pass: compare as sets of upper-case names.
        object.__setattr__(self, "status_forcelist", frozenset(self.status_forcelist))
        if self.allowed_methods is not None:
            methods = frozenset(m.upper() for m in self.allowed_methods)
            object.__setattr__(self, "allowed_methods", methods)

    @staticmethod
    def outcome_of(exc: BaseException) -> Outcome | None:
        """The kind of a failed attempt: "connect", "read", or None (not worth retrying)."""
        if isinstance(exc, TLSError):
            return None  # a certificate that fails verification fails again
        if isinstance(exc, ConnectError | ConnectTimeout):
            return "connect"
        retriable = (ReadError, ReadTimeout, WriteError, WriteTimeout, RemoteProtocolError)
        if isinstance(exc, (*retriable, StreamReset)):
            return "read"
        return None

    def verdict(
        self,
        request: Request,
        outcome: Outcome,
        attempts: Attempts,
        retry_after: str | None = None,
        now: float | None = None,
    ) -> RetryVerdict:
        """Whether to send ``request`` again after ``outcome``, and how long to sleep first.

        ``attempts`` are the retries already spent; ``retry_after`` is the response's header;
        ``now`` the wall clock (``time.time()``) for an HTTP-date.
        """
        no = RetryVerdict(False, 0.0, attempts)
        kind = "status" if isinstance(outcome, int) else outcome
        if isinstance(outcome, int) and outcome not in self.status_forcelist:
            return no
        if kind != "connect" and not self._may_resend(request):
            return no
        limit = {"connect": self.connect, "read": self.read, "status": self.status}[kind]
        spent = getattr(attempts, kind)
        if (self.total is not None and attempts.total >= self.total) or (
            limit is not None and spent >= limit
        ):
            return no
        after = attempts.after(kind)
        sleep = min(self.backoff_factor * 2 ** (after.total - 1), self.backoff_max)
        if retry_after is not None and self.respect_retry_after and kind == "status":
            asked = parse_retry_after(retry_after, time.time() if now is None else now)
            if asked is not None:
                if asked > self.retry_after_max:
                    return no
                sleep = asked
        return RetryVerdict(True, max(sleep, 0.0), after)

    def _may_resend(self, request: Request) -> bool:
        body = request.body
        again = body is None or isinstance(body, bytes)
        if not (again or (isinstance(body, MultipartStream) and body.replayable)):
            return False  # the iterator or file was read: there is nothing to send again
        methods = self.allowed_methods
        return methods is None or request.method in methods


def parse_retry_after(value: str, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds or an HTTP-date (RFC 9110
    §10.2.3); None when it is neither."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None  # an HTTP-date is always GMT; a zone-less one is not an HTTP-date
    return max(when.timestamp() - now, 0.0)


def as_retry(retries: Retry | int | None) -> Retry | None:
    """A session's ``retries=`` argument as a policy (an int is ``Retry(total=n)``)."""
    if retries is None or isinstance(retries, Retry):
        return retries
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise TypeError(f"retries must be a tether.Retry, a count >= 0 or None, not {retries!r}")
    return Retry(total=retries)


class RetryCounter:
    """How many user-level retries a session made (``stats().user_retries``); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def add(self) -> None:
        with self._lock:
            self.count += 1


def send_with_retries(
    policy: Retry | None, counter: RetryCounter, request: Request, send: Callable[[], R]
) -> R:
    """``send()``, again while ``policy`` says so, sleeping in between (the sync loop)."""
    if policy is None:
        return send()
    attempts = Attempts()
    while True:
        try:
            response = send()
        except TransportError as exc:
            outcome = policy.outcome_of(exc)
            if outcome is None:
                raise
            verdict = policy.verdict(request, outcome, attempts)
            if not verdict.retry:
                raise
        else:
            verdict = _after_response(policy, request, response, attempts)
            if not verdict.retry:
                return response
            response.close()  # a streamed one holds its connection
        attempts = verdict.attempts
        counter.add()
        sleep(verdict.sleep)


async def asend_with_retries(
    policy: Retry | None,
    counter: RetryCounter,
    request: Request,
    send: Callable[[], Awaitable[AsyncResponse]],
) -> AsyncResponse:
    """The same loop for asyncio: the same verdicts, ``asyncio.sleep`` between attempts."""
    if policy is None:
        return await send()
    attempts = Attempts()
    while True:
        try:
            response = await send()
        except TransportError as exc:
            outcome = policy.outcome_of(exc)
            if outcome is None:
                raise
            verdict = policy.verdict(request, outcome, attempts)
            if not verdict.retry:
                raise
        else:
            verdict = _after_response(policy, request, response, attempts)
            if not verdict.retry:
                return response
            await response.aclose()
        attempts = verdict.attempts
        counter.add()
        await asleep(verdict.sleep)


def _after_response(
    policy: Retry, request: Request, response: Response, attempts: Attempts
) -> RetryVerdict:
    if response.status not in policy.status_forcelist:  # the usual case: nothing to parse
        return RetryVerdict(False, 0.0, attempts)
    return policy.verdict(request, response.status, attempts, response.headers.get("retry-after"))
