"""Seed 003 recipe 1: MiddlewareCoordinator wraps orchestrator methods in middleware functions."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from onionskin import (
    Agent,
    AuthenticationError,
    ConfigError,
    MiddlewareCoordinator,
    Orchestrator,
    RunResult,
)
from onionskin.testing import ScriptedModel

logger = logging.getLogger("tests.coordinator")


async def logging_middleware(orchestrator: Any, func: Any, *args: Any, **kwargs: Any) -> Any:
    """Seed 003's logging middleware, as written there."""
    logger.info(f"Calling {func.__name__} with args={args}, kwargs={kwargs}")
    start = time.time()
    try:
        result = await func(*args, **kwargs)
        logger.info(f"{func.__name__} completed in {time.time() - start:.2f}s")
        return result
    except Exception as e:
        logger.error(f"{func.__name__} failed: {e}")
        raise


async def authentication_middleware(orchestrator: Any, func: Any, *args: Any, **kwargs: Any) -> Any:
    metadata = kwargs.get("metadata") or {}
    if metadata.get("session_id") != "valid-session":
        raise AuthenticationError(f"Invalid session: {metadata.get('session_id')}")
    return None


def runner(calls: list[str]) -> Orchestrator:
    def answer(request: Any) -> str:
        calls.append(request.messages[-1].text)
        return "hello back"

    return Orchestrator(Agent("assistant", model=ScriptedModel(answer)))


async def test_seed_recipe_logs_authenticates_and_runs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []
    orchestrator = runner(calls)
    coordinator = MiddlewareCoordinator(orchestrator)
    coordinator.add_middleware(logging_middleware)
    coordinator.add_middleware(authentication_middleware)
    execute = coordinator.apply_middleware(orchestrator.execute)

    with caplog.at_level(logging.INFO, logger="tests.coordinator"):
        result = await execute("Hello!", metadata={"session_id": "valid-session"})
        with pytest.raises(AuthenticationError, match="Invalid session: forged"):
            await execute("Hello!", metadata={"session_id": "forged"})

    assert isinstance(result, RunResult)
    assert result.output == "hello back"
    assert calls == ["Hello!"]  # once; the refused call never reached the model
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0].startswith("Calling execute with args=('Hello!',)")
    assert messages[1].startswith("execute completed in ")
    assert messages[3] == "execute failed: Invalid session: forged"


async def test_a_middleware_may_answer_early_and_order_is_as_added() -> None:
    seen: list[str] = []

    def cache(orchestrator: Any, func: Any, text: str) -> Any:
        seen.append("cache")
        return "cached" if text == "again" else None

    async def outer(orchestrator: Any, func: Any, text: str) -> Any:
        seen.append("outer")
        return await func(text.strip())

    async def target(text: str) -> str:
        seen.append(f"target:{text}")
        return text.upper()

    coordinator = MiddlewareCoordinator(orchestrator=None)
    coordinator.add_middleware(outer)
    coordinator.add_middleware(cache)
    wrapped = coordinator.apply_middleware(target)

    assert await wrapped(" hi ") == "HI"
    assert await wrapped("again") == "cached"
    assert seen == ["outer", "cache", "target:hi", "outer", "cache"]
    assert wrapped.__name__ == "target"


async def test_a_function_returning_none_runs_once_when_a_middleware_called_it() -> None:
    runs: list[int] = []

    async def passthrough(orchestrator: Any, func: Any, *args: Any, **kwargs: Any) -> Any:
        return await func(*args, **kwargs)

    async def returns_none() -> None:
        runs.append(1)

    coordinator = MiddlewareCoordinator(orchestrator=None)
    coordinator.add_middleware(passthrough)
    coordinator.add_middleware(passthrough)
    assert await coordinator.apply_middleware(returns_none)() is None
    assert runs == [1]


async def test_middleware_added_later_applies_to_functions_wrapped_later() -> None:
    async def tag(orchestrator: Any, func: Any, text: str) -> Any:
        return f"[{await func(text)}]"

    async def echo(text: str) -> str:
        return text

    coordinator = MiddlewareCoordinator(orchestrator=None)
    before = coordinator.apply_middleware(echo)
    coordinator.add_middleware(tag)
    assert await before("x") == "x"
    assert await coordinator.apply_middleware(echo)("x") == "[x]"


def test_bad_arguments_are_refused() -> None:
    coordinator = MiddlewareCoordinator(orchestrator=None)
    with pytest.raises(ConfigError, match="add_middleware needs a function"):
        coordinator.add_middleware("logging")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="apply_middleware needs an async function"):
        coordinator.apply_middleware(42)  # type: ignore[arg-type]
    assert coordinator.middlewares == []
