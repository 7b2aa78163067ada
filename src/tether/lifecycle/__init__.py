"""The brain: every reuse rule and the pool's decisions, as pure objects. No I/O, no lock.

``rules`` holds the lifecycle rules (expiry, retry verdicts, the learned idle timeout, close
reasons); ``poolstate`` the pool's bookkeeping that the threaded and asyncio bodies drive;
``route`` what a pool's connections are (direct, a proxy's tunnel, forwarded to a proxy).
"""

from .rules import (
    CloseReason,
    IdleTimeoutLearner,
    LearnerTable,
    Limits,
    closed_before_request,
    expiry,
    should_retry,
)

__all__ = [
    "CloseReason",
    "IdleTimeoutLearner",
    "LearnerTable",
    "Limits",
    "closed_before_request",
    "expiry",
    "should_retry",
]
