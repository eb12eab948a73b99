"""Retries: backoff on the injected clock, Retry-After, what is retried, and test mode."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import tenacity

from onionskin import (
    BudgetExceededError,
    CircuitOpenError,
    ConfigError,
    GuardTimeoutError,
    InvalidInputError,
    Message,
    ModelHTTPError,
    ModelRequest,
    ModelResponse,
    RateLimitExceededError,
    StopProcessing,
    ToolCall,
    ToolResult,
    ToolReturnPart,
)
from onionskin.middleware._transient import is_transient
from onionskin.middleware.guard_pipeline import MiddlewarePipeline
from onionskin.middleware.retry import RetryConfig, RetryMiddleware, set_testing
from onionskin.runtime.models.scripted import ScriptItem
from onionskin.testing import FakeClock, ScriptedModel, tool_call
from tests.conftest import OrchestratorFactory

CALL = ToolCall(tool_name="fetch", kwargs={"url": "https://example.test"}, session_id="s1")


def failing(
    *errors: BaseException,
) -> tuple[Callable[[ToolCall], Awaitable[ToolResult]], list[int]]:
    """A `next` that raises `errors` in turn, then answers; also returns its call count."""
    calls = [0]

    async def next(call: ToolCall) -> ToolResult:
        calls[0] += 1
        if calls[0] <= len(errors):
            raise errors[calls[0] - 1]
        return ToolResult(tool_name=call.tool_name, value="page")

    return next, calls


@pytest.fixture(autouse=True)
def real_mode() -> Iterator[None]:
    """Every test starts outside test mode, and leaves the mode as it found it."""
    with set_testing(False):
        yield


async def test_backoff_grows_exponentially_within_the_jitter_bounds() -> None:
    clock = FakeClock(seed=7)
    config = RetryConfig(max_retries=4, wait_initial=1, wait_exp_base=2, wait_jitter=0.5)
    retry = RetryMiddleware(config, clock=clock)
    next, calls = failing(*(ConnectionError(f"down {i}") for i in range(4)))

    result = await retry.wrap_tool_call(CALL, next)

    assert result.value == "page"
    assert calls[0] == 5
    assert len(clock.sleeps) == 4
    for attempt, wait in enumerate(clock.sleeps):
        assert 2**attempt <= wait <= 2**attempt + 0.5
    assert any(wait != 2**attempt for attempt, wait in enumerate(clock.sleeps))  # jittered


async def test_backoff_is_capped_at_wait_max() -> None:
    clock = FakeClock()
    config = RetryConfig(max_retries=4, wait_initial=1, wait_max=3, wait_jitter=0)
    retry = RetryMiddleware(config, clock=clock)
    next, _ = failing(*(TimeoutError() for _ in range(4)))

    await retry.wrap_tool_call(CALL, next)

    assert clock.sleeps == [1, 2, 3, 3]


async def test_a_backoff_too_big_for_a_float_waits_wait_max() -> None:
    clock = FakeClock()
    config = RetryConfig(max_retries=3, wait_initial=1, wait_exp_base=1e200, wait_max=5)
    retry = RetryMiddleware(config, clock=clock)
    next, _ = failing(*(TimeoutError() for _ in range(3)))

    await retry.wrap_tool_call(CALL, next)

    assert clock.sleeps[1:] == [5, 5]  # 1e200 ** 2 overflows: capped, not crashed


@pytest.mark.parametrize(
    "error",
    [
        ModelHTTPError("overloaded", status_code=503, retry_after=7.5),
        RateLimitExceededError("tenant:acme", 7.5),
    ],
)
async def test_retry_after_is_the_wait(error: Exception) -> None:
    clock = FakeClock()
    retry = RetryMiddleware(RetryConfig(max_retry_after=10), clock=clock)
    next, calls = failing(error)

    assert (await retry.wrap_tool_call(CALL, next)).value == "page"
    assert clock.sleeps == [7.5]
    assert calls[0] == 2


async def test_retry_after_longer_than_the_cap_gives_up_at_once() -> None:
    clock = FakeClock()
    retry = RetryMiddleware(RetryConfig(max_retry_after=60), clock=clock)
    error = ModelHTTPError("slow down", status_code=429, retry_after=120)
    next, calls = failing(error)

    with pytest.raises(ModelHTTPError) as raised:
        await retry.wrap_tool_call(CALL, next)
    assert raised.value is error
    assert calls[0] == 1
    assert clock.sleeps == []


async def test_the_last_error_is_re_raised_unchanged() -> None:
    clock = FakeClock()
    retry = RetryMiddleware(RetryConfig(max_retries=2), clock=clock)
    errors = [ConnectionError("first"), ConnectionError("second"), ConnectionError("third")]
    next, calls = failing(*errors, ConnectionError("never raised"))

    with pytest.raises(ConnectionError) as raised:
        await retry.wrap_tool_call(CALL, next)
    assert raised.value is errors[-1]
    assert raised.value.__cause__ is None
    assert calls[0] == 3
    assert len(clock.sleeps) == 2


@pytest.mark.parametrize(
    "error",
    [
        CircuitOpenError("tool:fetch", 30),
        BudgetExceededError("acme"),
        InvalidInputError("bad url", errors=(("url", "not a URL"),)),
        ModelHTTPError("bad request", status_code=400),
        ValueError("a bug"),
    ],
)
async def test_non_transient_errors_are_not_retried_by_default(error: Exception) -> None:
    clock = FakeClock()
    next, calls = failing(error)

    with pytest.raises(type(error)) as raised:
        await RetryMiddleware(clock=clock).wrap_tool_call(CALL, next)
    assert raised.value is error
    assert calls[0] == 1
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        *((ModelHTTPError("x", status_code=s), True) for s in (408, 409, 425, 429, 500, 503)),
        (ModelHTTPError("x", status_code=502), True),
        (ModelHTTPError("x", status_code=504), True),
        (ModelHTTPError("overloaded", status_code=529), True),
        (ModelHTTPError("x", status_code=404), False),
        (ModelHTTPError("x", status_code=None), False),
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (GuardTimeoutError("tool 'fetch'", 1.0), True),
        (RateLimitExceededError("k", 1.0), True),
        (CircuitOpenError("k", 1.0), False),
        (BudgetExceededError(), False),
        (InvalidInputError("bad"), False),
        (asyncio.CancelledError(), False),
        (StopProcessing("done"), False),
        (KeyError("x"), False),
    ],
)
def test_is_transient(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


async def test_retry_on_names_exactly_what_is_retried() -> None:
    retry = RetryMiddleware(RetryConfig(retry_on=(KeyError,)), clock=FakeClock())
    next, calls = failing(KeyError("cache miss"))
    assert (await retry.wrap_tool_call(CALL, next)).value == "page"
    assert calls[0] == 2

    next, calls = failing(ConnectionError("transient, but not asked for"))
    with pytest.raises(ConnectionError):
        await retry.wrap_tool_call(CALL, next)
    assert calls[0] == 1


async def test_retry_on_accepts_a_predicate_and_a_single_class() -> None:
    clock = FakeClock()
    by_message = RetryMiddleware(
        RetryConfig(retry_on=lambda error: "again" in str(error)), clock=clock
    )
    next, calls = failing(ValueError("try again"), ValueError("again"))
    assert (await by_message.wrap_tool_call(CALL, next)).value == "page"
    assert calls[0] == 3

    single = RetryMiddleware(RetryConfig(retry_on=LookupError), clock=clock)
    next, calls = failing(IndexError("subclass"))
    assert (await single.wrap_tool_call(CALL, next)).value == "page"
    assert calls[0] == 2


@pytest.mark.parametrize("signal", [StopProcessing("stop"), asyncio.CancelledError()])
async def test_stop_and_cancellation_are_never_retried(signal: BaseException) -> None:
    retry = RetryMiddleware(RetryConfig(retry_on=(BaseException,)), clock=FakeClock())
    next, calls = failing(signal)

    with pytest.raises(type(signal)) as raised:
        await retry.wrap_tool_call(CALL, next)
    assert raised.value is signal
    assert calls[0] == 1


async def test_test_mode_never_sleeps_and_caps_attempts() -> None:
    clock = FakeClock()
    retry = RetryMiddleware(RetryConfig(max_retries=5), clock=clock)
    with set_testing(True, attempts=2):
        next, calls = failing(*(ConnectionError() for _ in range(9)))
        with pytest.raises(ConnectionError):
            await retry.wrap_tool_call(CALL, next)
        assert calls[0] == 2
        assert clock.sleeps == []

        capped = RetryMiddleware(RetryConfig(max_retries=1), clock=clock)
        with set_testing(True, attempts=10):  # nests: a bigger cap keeps the config's count
            next, calls = failing(*(ConnectionError() for _ in range(9)))
            with pytest.raises(ConnectionError):
                await capped.wrap_tool_call(CALL, next)
            assert calls[0] == 2

        next, calls = failing(*(ConnectionError() for _ in range(9)))
        with pytest.raises(ConnectionError):
            await retry.wrap_tool_call(CALL, next)
        assert calls[0] == 2  # the outer block's setting came back
    assert clock.sleeps == []

    next, calls = failing(ConnectionError())
    await retry.wrap_tool_call(CALL, next)  # out of test mode: waits again
    assert len(clock.sleeps) == 1


async def test_set_testing_works_as_a_plain_call() -> None:
    clock = FakeClock()
    retry = RetryMiddleware(RetryConfig(max_retries=3), clock=clock)
    set_testing(True)
    try:
        next, calls = failing(ConnectionError())
        with pytest.raises(ConnectionError):
            await retry.wrap_tool_call(CALL, next)
        assert calls[0] == 1  # attempts=1 by default: no retry at all
    finally:
        set_testing(False)
    next, calls = failing(ConnectionError())
    assert (await retry.wrap_tool_call(CALL, next)).value == "page"
    assert calls[0] == 2


async def test_model_calls_are_retried_in_a_run(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    clock = FakeClock()
    seen: list[ModelRequest] = []

    def script(request: ModelRequest) -> ScriptItem:
        seen.append(request)
        if len(seen) <= 2:
            raise ModelHTTPError("overloaded", status_code=503)
        return "answer"

    retry = RetryMiddleware(RetryConfig(wait_jitter=0), clock=clock)
    orchestrator = orchestrator_factory(script, middleware=[retry])

    assert (await orchestrator.execute("go")).output == "answer"
    assert len(seen) == 3
    assert clock.sleeps == [0.5, 1.0]


async def test_tool_calls_are_retried_in_a_run(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    clock = FakeClock()
    attempts: list[str] = []

    async def fetch(url: str) -> str:
        """Fetch a page."""
        attempts.append(url)
        if len(attempts) < 3:
            raise ConnectionError("upstream down")
        return "page"

    def script(request: ModelRequest) -> ScriptItem:
        part = request.messages[-1].parts[0]
        if isinstance(part, ToolReturnPart):
            return part.content  # the tool's answer becomes the run's output
        return tool_call("fetch", url="https://example.test")

    # A second, pass-through layer inside: the retry's `next` is then a chain lambda.
    class Inner:
        async def wrap_tool_call(self, call: ToolCall, next: Any) -> ToolResult:
            result: ToolResult = await next(call)
            return result

    orchestrator = orchestrator_factory(
        script, middleware=[RetryMiddleware(clock=clock), Inner()], tools=[fetch]
    )
    assert (await orchestrator.execute("go")).output == "page"
    assert attempts == ["https://example.test"] * 3
    assert len(clock.sleeps) == 2


async def test_retries_a_plain_function_in_a_middleware_pipeline() -> None:
    clock = FakeClock()
    calls: list[int] = []

    def lookup(key: str) -> str:
        calls.append(1)
        if len(calls) == 1:
            raise TimeoutError("slow backend")
        return key.upper()

    pipeline = MiddlewarePipeline(extra_middleware=[RetryMiddleware(clock=clock)])
    result = await pipeline.execute(lookup, kwargs={"key": "k"}, session_id="s1")
    assert result.value == "K"
    assert len(calls) == 2
    assert len(clock.sleeps) == 1


async def test_concurrent_calls_retry_independently() -> None:
    retry = RetryMiddleware(RetryConfig(wait_jitter=0), clock=FakeClock())

    def flaky_once() -> Callable[[ToolCall], Awaitable[ToolResult]]:
        failed = [False]

        async def next(call: ToolCall) -> ToolResult:
            await asyncio.sleep(0)  # let the other call interleave
            if not failed[0]:
                failed[0] = True
                raise ConnectionError("blip")
            return ToolResult(tool_name=call.tool_name, value=call.session_id)

        return next

    calls = [ToolCall(tool_name="fetch", session_id=s) for s in ("a", "b")]
    results = await asyncio.gather(*(retry.wrap_tool_call(c, flaky_once()) for c in calls))
    assert [r.value for r in results] == ["a", "b"]


async def test_a_first_attempt_that_succeeds_builds_no_retry_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The common path is a plain await; tenacity is entered only after a failure."""
    built: list[dict[str, Any]] = []
    real = tenacity.AsyncRetrying

    def spy(**options: Any) -> Any:  # Any: tenacity's own options and loop
        built.append(options)
        return real(**options)

    monkeypatch.setattr("onionskin.middleware.retry.AsyncRetrying", spy)
    retry = RetryMiddleware(clock=FakeClock())
    next, calls = failing()
    assert (await retry.wrap_tool_call(CALL, next)).value == "page"
    assert (calls[0], built) == (1, [])

    next, calls = failing(ConnectionError("blip"))
    assert (await retry.wrap_tool_call(CALL, next)).value == "page"
    assert (calls[0], len(built)) == (2, 1)


@pytest.mark.parametrize("seed", [0, 7, 42])
async def test_the_first_retry_waits_the_initial_backoff_plus_the_first_jitter_draw(
    seed: int,
) -> None:
    clock, reference = FakeClock(seed=seed), FakeClock(seed=seed)
    config = RetryConfig(max_retries=2, wait_initial=0.25, wait_jitter=2.0)
    next, calls = failing(ConnectionError("blip"))

    assert (await RetryMiddleware(config, clock=clock).wrap_tool_call(CALL, next)).value == "page"
    assert calls[0] == 2
    assert clock.sleeps == [0.25 + reference.random() * 2.0]


async def test_every_failed_attempt_draws_one_jitter_the_last_one_too() -> None:
    """The jitter sequence of a seeded clock is that of tenacity asking for every wait."""
    clock, reference = FakeClock(seed=3), FakeClock(seed=3)
    retry = RetryMiddleware(RetryConfig(max_retries=1, wait_initial=1), clock=clock)
    next, calls = failing(ConnectionError("first"), ConnectionError("second"))

    with pytest.raises(ConnectionError, match="second"):
        await retry.wrap_tool_call(CALL, next)
    draws = [reference.random() for _ in range(3)]
    assert calls[0] == 2
    assert clock.sleeps == [1 + draws[0]]
    assert clock.random() == draws[2]  # the last attempt's wait was drawn, then not slept


async def test_the_first_retry_is_logged_with_its_target_wait_and_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="onionskin.guards")
    retry = RetryMiddleware(RetryConfig(wait_jitter=0), clock=FakeClock())
    error = ConnectionError("blip")
    next, _ = failing(error)
    await retry.wrap_tool_call(CALL, next)

    answer = ModelResponse(message=Message.assistant("answer"))
    asked: list[ModelRequest] = []

    async def overloaded_once(request: ModelRequest) -> ModelResponse:
        asked.append(request)
        if len(asked) == 1:
            raise ModelHTTPError("overloaded", status_code=503, retry_after=2)
        return answer

    request = ModelRequest(model=ScriptedModel(["unused"]), messages=[])
    assert await retry.wrap_model_call(request, overloaded_once) is answer
    assert [record.getMessage() for record in caplog.records] == [
        f"retrying tool 'fetch' in 0.50 s after {error!r}",
        "retrying model 'scripted' in 2.00 s after ModelHTTPError('overloaded')",
    ]


async def test_a_non_retryable_first_error_is_neither_logged_nor_waited_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="onionskin.guards")
    clock = FakeClock()
    error = ValueError("a bug")
    next, calls = failing(error)

    with pytest.raises(ValueError, match="a bug") as raised:
        await RetryMiddleware(clock=clock).wrap_tool_call(CALL, next)
    assert raised.value is error
    assert (calls[0], clock.sleeps, caplog.records) == (1, [], [])
    assert clock.random() == FakeClock().random()  # no jitter was drawn for it


async def test_a_later_error_does_not_carry_an_earlier_one_as_its_context() -> None:
    retry = RetryMiddleware(RetryConfig(max_retries=1), clock=FakeClock())
    next, _ = failing(ConnectionError("first"), ConnectionError("second"))

    with pytest.raises(ConnectionError, match="second") as raised:
        await retry.wrap_tool_call(CALL, next)
    assert raised.value.__context__ is None
    assert raised.value.__cause__ is None


async def test_test_mode_skips_even_a_retry_after_wait() -> None:
    clock = FakeClock()
    retry = RetryMiddleware(clock=clock)
    next, calls = failing(RateLimitExceededError("tenant:acme", 9.0))
    with set_testing(True, attempts=2):
        assert (await retry.wrap_tool_call(CALL, next)).value == "page"
    assert (calls[0], clock.sleeps) == (2, [])


async def test_a_cancelled_backoff_makes_no_further_attempt() -> None:
    class StuckClock(FakeClock):
        """A clock whose waits last until cancelled."""

        def __init__(self) -> None:
            super().__init__()
            self.waiting = asyncio.Event()

        async def sleep(self, seconds: float) -> None:
            self.waiting.set()
            await asyncio.Event().wait()

    clock = StuckClock()
    next, calls = failing(ConnectionError("blip"))
    task = asyncio.create_task(RetryMiddleware(clock=clock).wrap_tool_call(CALL, next))
    await clock.waiting.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls[0] == 1


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"retry_on": ()}, "retry_on"),
        ({"retry_on": (ValueError, "x")}, "retry_on"),
        ({"retry_on": "ValueError"}, "retry_on"),
        ({"wait_initial": 0}, "wait_initial"),
        ({"wait_exp_base": 0.5}, "wait_exp_base"),
        ({"wait_max": 0.1}, "wait_max"),
        ({"wait_jitter": -1}, "wait_jitter"),
        ({"max_retry_after": float("inf")}, "max_retry_after"),
    ],
)
def test_bad_config_raises_config_error_naming_the_field(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError, match=field):
        RetryConfig(**options)


def test_bad_middleware_arguments_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="RetryConfig"):
        RetryMiddleware({"max_retries": 2})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="attempts"):
        set_testing(True, attempts=0)
