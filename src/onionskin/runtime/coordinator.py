"""`MiddlewareCoordinator`: seed 003's middleware around any orchestrator method.

```python
coordinator = MiddlewareCoordinator(orchestrator)
coordinator.add_middleware(logging_middleware)        # async def mw(orchestrator, func, *a, **kw)
coordinator.add_middleware(authentication_middleware)
orchestrator.execute = coordinator.apply_middleware(orchestrator.execute)
```

A middleware receives the orchestrator, the function and its arguments. It may call
`func(*args, **kwargs)` itself and return what it gives (seed 003's logging middleware);
return None without calling it, to let the next middleware (and finally the function) run
(its rate-limit and authentication middleware); or return another value without calling
it, to answer early. Beyond the seed, `func` inside a middleware is the *rest of the chain*,
not the bare function: the logging middleware then times the authentication that follows
it, and the function runs exactly once however the middleware combine (the seed's loop runs
it once per middleware that calls it).

The chain is composed once, by `apply_middleware`, not per call: middleware added later
apply to functions wrapped later.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

from onionskin.core.errors import ConfigError

# Any: the wrapped function and its middleware take and return whatever the method does.
AsyncFunction: TypeAlias = Callable[..., Awaitable[Any]]
CoordinatorMiddleware: TypeAlias = Callable[..., Any]
"""`mw(orchestrator, func, *args, **kwargs)`, sync or async."""


def _layer(orchestrator: object, middleware: CoordinatorMiddleware, inner: AsyncFunction) -> Any:
    async def layer(*args: Any, **kwargs: Any) -> Any:
        called = False

        async def rest(*rest_args: Any, **rest_kwargs: Any) -> Any:
            nonlocal called
            called = True
            return await inner(*rest_args, **rest_kwargs)

        functools.update_wrapper(rest, inner)  # seed 003 logs `func.__name__`
        result = middleware(orchestrator, rest, *args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        if called or result is not None:
            return result  # it ran the rest itself, or answered early
        return await inner(*args, **kwargs)

    # Every layer carries the wrapped function's name, so each middleware's `func` has it.
    return functools.update_wrapper(layer, inner)


class MiddlewareCoordinator:
    """Applies middleware functions, in the order added (first is outermost), to methods.

    Args:
        orchestrator: what each middleware receives first (seed 003: the orchestrator).
    """

    def __init__(self, orchestrator: object) -> None:
        self.orchestrator = orchestrator
        self.middlewares: list[CoordinatorMiddleware] = []

    def add_middleware(self, middleware: CoordinatorMiddleware) -> None:
        """Add `middleware` inside those added before; it applies to later `apply_middleware`."""
        if not callable(middleware):
            raise ConfigError(
                "add_middleware needs a function `mw(orchestrator, func, *args, **kwargs)`, "
                f"got {middleware!r}"
            )
        self.middlewares.append(middleware)

    def apply_middleware(self, func: AsyncFunction) -> AsyncFunction:
        """`func` wrapped in every middleware added so far (outermost first)."""
        if not callable(func):
            raise ConfigError(f"apply_middleware needs an async function, got {func!r}")
        chain: AsyncFunction = func
        for middleware in reversed(self.middlewares):
            chain = _layer(self.orchestrator, middleware, chain)

        @functools.wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return await chain(*args, **kwargs)

        return wrapper
