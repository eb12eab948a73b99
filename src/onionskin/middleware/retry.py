"""`RetryMiddleware`: call a failing model or tool again, after an exponential, jittered wait.

Only what `retry_on` accepts is retried; the default is `is_transient` (a model's HTTP
408, 409, 425, 429, 500, 502, 503 or 504, timeouts, dropped connections, rate limits).
`StopProcessing`, `asyncio.CancelledError` and other bare `BaseException`s are never
retried, whatever `retry_on` says. An error carrying `retry_after` (`ModelHTTPError` from
a provider's Retry-After header, `RateLimitExceededError`) is retried after exactly that
many seconds, unless it asks for more than `max_retry_after`: then it is re-raised at once.
After the last attempt the last error is re-raised unchanged.

At the tool level a retry calls `next(call)` again, so only tools that are safe to repeat
belong under this middleware. Place it outside `TimeoutMiddleware` for a timeout per
attempt, inside it for one deadline over all attempts.

Built on tenacity directly rather than on stamina: `AsyncRetrying(sleep=clock.sleep)` lets
the injected `Clock` do the waiting, while stamina cannot take a custom sleep, so tests would
really wait. The wait is computed here because tenacity's jittered waits draw from the
global `random` module (not injectable) and know nothing of Retry-After.
`set_testing()` turns waits off and caps attempts, process-wide, like stamina's.

The first attempt is a plain `await` (issue: the guard stack's cost per call); tenacity is
entered only after it failed, and replays that failure as its own first attempt, so the
waits, the jitter drawn and the log lines are those of a tenacity loop from the start.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeAlias, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from onionskin.core.calls import ModelRequest, ToolCall
from onionskin.core.clock import SYSTEM_CLOCK, Clock
from onionskin.core.errors import ConfigError
from onionskin.middleware._config import require_int, require_positive
from onionskin.middleware._transient import ErrorFilter, error_predicate, is_transient, retry_after

T = TypeVar("T")
R = TypeVar("R")
C = TypeVar("C", ModelRequest, ToolCall)

logger = logging.getLogger("onionskin.guards")


_Mode: TypeAlias = tuple[bool, int]
_test_mode: _Mode = (False, 1)
"""Whether test mode is on, and its cap on attempts."""


class _RestoreTesting:
    """What `set_testing()` returns: use it as a context manager to restore the old mode."""

    def __init__(self, previous: _Mode) -> None:
        self._previous = previous

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        global _test_mode
        _test_mode = self._previous


def set_testing(enabled: bool = True, *, attempts: int = 1) -> _RestoreTesting:
    """Turn the retries' test mode on or off, for the whole process.

    In test mode retries never wait (the clock is not even asked to sleep) and make at most
    `attempts` attempts (the configured count still applies when it is lower).
    Takes effect at once; used as `with set_testing():`, the previous mode comes back
    when the block exits.

    Raises:
        ConfigError: when `attempts` is not an int >= 1.
    """
    global _test_mode
    require_int("set_testing", "attempts", attempts)
    previous = _test_mode
    _test_mode = (bool(enabled), attempts)
    return _RestoreTesting(previous)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryConfig:
    """How often to retry, on what, and how long to wait in between."""

    max_retries: int = 3
    """Retries after the first attempt (0: never retry)."""
    retry_on: ErrorFilter = is_transient
    """Errors to retry: a predicate, an exception class or a tuple of them."""
    wait_initial: float = 0.5
    """Seconds before the first retry, without jitter."""
    wait_exp_base: float = 2.0
    """Each retry waits this many times longer than the one before."""
    wait_max: float = 30.0
    """The longest backoff wait, jitter included."""
    wait_jitter: float = 1.0
    """Up to this many random seconds added to each backoff wait (spreads retry storms)."""
    max_retry_after: float = 60.0
    """The longest Retry-After to honour; an error asking for more is re-raised at once."""

    def __post_init__(self) -> None:
        owner = "RetryConfig"
        require_int(owner, "max_retries", self.max_retries, minimum=0)
        error_predicate(owner, "retry_on", self.retry_on)
        require_positive(owner, "wait_initial", self.wait_initial)
        require_positive(owner, "wait_exp_base", self.wait_exp_base)
        if self.wait_exp_base < 1:
            raise ConfigError(f"{owner}.wait_exp_base must be >= 1, got {self.wait_exp_base!r}")
        require_positive(owner, "wait_max", self.wait_max)
        if self.wait_max < self.wait_initial:
            raise ConfigError(f"{owner}.wait_max must be >= wait_initial, got {self.wait_max!r}")
        require_positive(owner, "wait_jitter", self.wait_jitter, allow_zero=True)
        require_positive(owner, "max_retry_after", self.max_retry_after, allow_zero=True)


async def _no_sleep(seconds: float) -> None:
    """Test mode's sleep: returns at once, without asking the clock."""


def _target(call: ModelRequest | ToolCall) -> str:
    """What a retry log line names: `model 'name'` or `tool 'name'`."""
    if isinstance(call, ModelRequest):
        return f"model {call.model.name!r}"
    return f"tool {call.tool_name!r}"


class RetryMiddleware:
    """Retries model and tool calls that fail with a transient (or chosen) error."""

    def __init__(self, config: RetryConfig | None = None, *, clock: Clock = SYSTEM_CLOCK) -> None:
        """Build the middleware; `clock` waits and draws the jitter."""
        if config is not None and not isinstance(config, RetryConfig):
            raise ConfigError(f"config must be a RetryConfig, got {config!r}")
        self.config = config or RetryConfig()
        self.clock = clock
        self._retryable = error_predicate("RetryConfig", "retry_on", self.config.retry_on)

    def _should_retry(self, error: BaseException) -> bool:
        if not self._retryable(error):
            return False
        after = retry_after(error)
        return after is None or after <= self.config.max_retry_after

    def _wait(self, state: RetryCallState) -> float:
        """Retry-After when the error names it, else exponential backoff plus jitter."""
        after = retry_after(state.outcome.exception() if state.outcome else None)
        if after is not None:
            return after
        config = self.config
        try:
            backoff = config.wait_initial * config.wait_exp_base ** (state.attempt_number - 1)
        except OverflowError:
            backoff = config.wait_max
        return min(config.wait_max, backoff + self.clock.random() * config.wait_jitter)

    async def _retry(
        self, target: str, next: Callable[[T], Awaitable[R]], call: T, first: Exception, mode: _Mode
    ) -> R:
        """The slow path: the first attempt failed with `first`; tenacity takes over."""
        testing, cap = mode
        attempts = min(self.config.max_retries + 1, cap) if testing else self.config.max_retries + 1
        replay = [first]

        def log_retry(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            logger.warning("retrying %s in %.2f s after %r", target, state.upcoming_sleep, error)

        async def attempt() -> R:
            # Attempt 1 replays the failure, so tenacity decides, waits and logs as if it had made
            # it. It awaits only coroutine functions (`next` may be a lambda): hence this one.
            if replay:
                raise replay.pop()
            return await next(call)

        # One AsyncRetrying per retried call: tenacity keeps its iteration state on the object.
        retrying = AsyncRetrying(
            sleep=_no_sleep if testing else self.clock.sleep,
            stop=stop_after_attempt(attempts),
            wait=self._wait,
            retry=retry_if_exception(self._should_retry),
            before_sleep=log_retry,
            reraise=True,
        )
        return await retrying(attempt)

    async def wrap_tool_call(self, call: C, next: Callable[[C], Awaitable[R]]) -> R:
        """Call the model or tool, again after a wait while it fails with a retryable error."""
        # One method serves both kinds: a success costs this one coroutine and nothing else.
        testing = _test_mode  # the mode when the call starts governs all its attempts
        try:
            return await next(call)
        except Exception as error:  # BaseExceptions are never retried: they pass as they are
            failed = error
        # Outside the except block, so later errors get no implicit `__context__`.
        return await self._retry(_target(call), next, call, failed, testing)

    wrap_model_call = wrap_tool_call
