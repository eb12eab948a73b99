"""An agent's `middleware:` entries, imported and built.

`use: package.module:attr` names a middleware object (used as is), or a class (called with
the `with:` kwargs, or none), or a factory function (called with the `with:` kwargs; write
`with: {}` to call a factory that takes none: without `with`, a function is taken to be an
`async def mw(call, next)` middleware itself).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable

from onionskin.core.chain import inspect_middleware
from onionskin.core.errors import ConfigError
from onionskin.project.errors import ProjectError
from onionskin.project.spec import MiddlewareRef

Problem = Callable[[str], ProjectError]
"""Makes the error for one field of one file from a problem's text."""


def _resolve(use: str, problem: Problem) -> object:
    module_name, _, attr_path = use.partition(":")
    try:
        target: object = importlib.import_module(module_name)
    except ImportError as error:
        raise problem(f"cannot import module {module_name!r}: {error}") from error
    except Exception as error:
        raise problem(
            f"module {module_name!r} raised {type(error).__name__} on import: {error}"
        ) from error
    for attr in attr_path.split("."):
        try:
            target = getattr(target, attr)
        except AttributeError as error:
            raise problem(f"{module_name!r} has no attribute {attr_path!r}") from error
    return target


def build_middleware(ref: MiddlewareRef, problem: Problem) -> object:
    """Import and build the middleware `ref` names.

    Raises:
        ProjectError: through `problem`, when it cannot be imported or built, or what it
            builds is not a middleware.
    """
    target = _resolve(ref.use, problem)
    kwargs = ref.with_
    if inspect.isclass(target) or kwargs is not None:
        if not callable(target):
            raise problem(f"{ref.use} is not a class or factory, so it cannot take 'with'")
        try:
            built = target(**(kwargs or {}))
        except Exception as error:
            raise problem(f"{ref.use}(**with) raised {type(error).__name__}: {error}") from error
    else:
        built = target
    try:
        inspect_middleware(built)
    except ConfigError as error:
        raise problem(str(error)) from error
    return built
