"""Tools made from plain functions: schema and argument validation from type hints.

Invalid arguments do not raise: they come back as an error `ToolResult` the model can read
and correct. An exception raised by the tool's own code does propagate, through every
tool-call middleware (so retries and circuit breakers see it), and fails the run unless a
middleware handles it. Sync tools run in a worker thread, never blocking the event loop;
the thread sees the run's context.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import time
import typing
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import pydantic

from onionskin.core._layers import is_async_callable
from onionskin.core.calls import ToolCall, ToolDefinition, ToolResult
from onionskin.core.context import RunContext, current_context
from onionskin.core.errors import ConfigError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")


def _description(function: Callable[..., Any]) -> str:
    doc = inspect.getdoc(function) or ""
    return doc.split("\n\n", 1)[0].strip()


def _format_errors(tool: str, error: pydantic.ValidationError) -> str:
    problems = []
    for item in error.errors(include_url=False):
        path = ".".join(str(part) for part in item["loc"]) or "(arguments)"
        problems.append(f"{path}: {item['msg']}")
    return f"invalid arguments for tool {tool!r}: " + "; ".join(problems)


class Tool:
    """A function the model can call, with its JSON schema and argument validation.

    Arguments are validated with pydantic against the function's type hints; unknown
    arguments are refused. A parameter annotated `RunContext` receives the run's context and
    is not shown to the model.
    """

    def __init__(
        self,
        function: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> None:
        if not callable(function):
            raise ConfigError(f"a tool needs a function, got {function!r}")
        self.function = function
        tool_name = name if name is not None else str(getattr(function, "__name__", ""))
        if not _NAME.fullmatch(tool_name):
            raise ConfigError(
                f"tool name {tool_name!r} must start with a letter or _ and hold only letters, "
                "digits, _ and - (at most 64 characters)"
            )
        self._name = tool_name
        self._signature = inspect.signature(function)
        self._context_param: str | None = None
        self._positional: list[tuple[str, str]] = []  # (field, parameter), in order
        self._keyword: list[tuple[str, str]] = []
        self._arguments = self._build_arguments(function)
        # An object with an async __call__ (a guarded function) is awaited, not threaded.
        self._is_async = is_async_callable(function)
        self.definition = ToolDefinition(
            name=tool_name,
            description=description if description is not None else _description(function),
            parameters=self._arguments.model_json_schema(),
        )

    @property
    def name(self) -> str:
        """The tool's name, as the model calls it."""
        return self._name

    def _build_arguments(self, function: Callable[..., Any]) -> type[pydantic.BaseModel]:
        try:
            hints = typing.get_type_hints(function, include_extras=True)
        except (NameError, TypeError) as error:
            raise ConfigError(
                f"tool {self._name!r}: cannot read its type hints: {error}"
            ) from error
        fields: dict[str, Any] = {}  # Any: pydantic's (type, FieldInfo) field tuples
        for index, param in enumerate(self._signature.parameters.values()):
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise ConfigError(
                    f"tool {self._name!r}: *{param.name} cannot be described to a model; "
                    "name each argument"
                )
            hint = hints.get(param.name, Any)
            if hint is RunContext:
                self._context_param = param.name
                continue
            # Fields get neutral names and the parameter's name as alias: a parameter may be
            # called `_token` (pydantic would make it private) or `schema` (a BaseModel name).
            field = f"p{index}"
            default = ... if param.default is param.empty else param.default
            fields[field] = (hint, pydantic.Field(default, alias=param.name))
            target = self._positional if param.kind is param.POSITIONAL_ONLY else self._keyword
            target.append((field, param.name))
        return pydantic.create_model(
            f"{self._name}_arguments",
            __config__=pydantic.ConfigDict(extra="forbid"),
            **fields,
        )

    def _bind(self, call: ToolCall) -> Mapping[str, Any]:
        bound = self._signature.bind_partial(*call.args)
        return {**bound.arguments, **call.kwargs}

    async def invoke(self, call: ToolCall) -> ToolResult:
        """Validate `call`'s arguments and run the tool; bad arguments give an error result."""
        try:
            raw = self._bind(call) if call.args else call.kwargs
            validated = self._arguments.model_validate(raw)
        except TypeError as error:
            return ToolResult(
                tool_name=self._name, error=f"{self._name}: {error}", call_id=call.call_id
            )
        except pydantic.ValidationError as error:
            message = _format_errors(self._name, error)
            return ToolResult(tool_name=self._name, error=message, call_id=call.call_id)
        values = validated.__dict__
        args = [values[field] for field, _ in self._positional]
        kwargs = {name: values[field] for field, name in self._keyword}
        if self._context_param is not None:
            kwargs[self._context_param] = current_context()
        started = time.perf_counter()
        if self._is_async:
            value = await self.function(*args, **kwargs)
        else:
            # to_thread copies the contextvars, so current_context() works in the thread.
            value = await asyncio.to_thread(partial(self.function, *args, **kwargs))
        elapsed = (time.perf_counter() - started) * 1000.0
        return ToolResult(
            tool_name=self._name, value=value, execution_time_ms=elapsed, call_id=call.call_id
        )

    def __repr__(self) -> str:
        return f"Tool({self._name!r})"


def as_tool(item: Tool | Callable[..., Any]) -> Tool:
    """Return `item` if it is a `Tool`, else a `Tool` made from the function."""
    return item if isinstance(item, Tool) else Tool(item)


class UnknownTool:
    """Stands in for a tool the model named but the agent lacks (a hallucinated tool).

    The call still passes through every tool-call middleware, so guards can see and count
    it; at the end it answers with an error that lists the tools the agent really has, for
    the model to correct itself.
    """

    def __init__(self, name: str, available: tuple[str, ...]) -> None:
        self._name = name
        self.available = available

    @property
    def name(self) -> str:
        """The name the model asked for."""
        return self._name

    async def invoke(self, call: ToolCall) -> ToolResult:
        """Answer with an error naming the tools that exist."""
        names = ", ".join(self.available) or "none"
        return ToolResult(
            tool_name=self._name,
            error=f"unknown tool {self._name!r}; the tools you can call are: {names}",
            call_id=call.call_id,
        )
