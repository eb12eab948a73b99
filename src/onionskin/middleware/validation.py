"""`ValidationMiddleware`: tool arguments, tool results and final answers checked by pydantic.

Tool level: arguments against `input_model`, else the type hints of `call.tool.function`
(runtime `Tool`s and guarded functions both expose it); the result's value against
`output_model`, else the return annotation. No function (an unknown tool) or no hint: no
check. A failure raises `InvalidInputError` with a dotted path per problem. Validation is
pydantic's lax mode (`"42"` is an `int`) unless `strict`; with `coerce` (the default) the
tool gets the coerced arguments, in a copy of the call and in the shape the caller gave
them, and the caller gets the coerced value: the tool sees exactly the types it declared.
A call or result that coercion would not change goes on as it is, without a copy.

Model level, with `model_output`: a final answer (no tool calls) must be JSON valid against
it, optionally inside a Markdown code fence; otherwise the model is asked again with the
field errors, at most `max_retries` times, then `InvalidInputError` is raised. The accepted
response goes on unchanged; the corrective exchange stays out of the agent's transcript.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pydantic

from onionskin.core.calls import ModelRequest, ModelResponse, ToolCall, ToolResult
from onionskin.core.errors import ConfigError, InvalidInputError
from onionskin.core.messages import Message
from onionskin.middleware._answer_format import AnswerFormat
from onionskin.middleware._config import require_bool, require_int
from onionskin.middleware._signature_cache import signature_of
from onionskin.middleware._signature_check import (
    Signature,
    error_paths,
    model_values,
    type_adapter,
)

_OWNER = "ValidationConfig"


def _require_type(field: str, value: object) -> None:
    if value is None:
        return
    try:
        if not isinstance(value, type) and typing.get_origin(value) is None:
            raise TypeError(value)
        type_adapter(value)
    except (TypeError, pydantic.PydanticUserError) as error:
        raise ConfigError(
            f"{_OWNER}.{field} must be a type pydantic can validate (a BaseModel subclass, "
            f"int, list[Item], ...), got {value!r}"
        ) from error


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationConfig:
    """What to validate, against what, and what to do with the coerced values."""

    validate_input: bool = True
    """Validate tool-call arguments before the tool runs."""
    validate_output: bool = True
    """Validate the value a tool returned."""
    input_model: type[pydantic.BaseModel] | None = None
    """The arguments' model; None validates against the function's type hints."""
    output_model: Any = None  # Any: any type pydantic validates, generic aliases included
    """The type of tool results (a model, `list[Item]`, ...); None uses the return annotation."""
    model_output: Any = None
    """The type a model's final answer must be JSON of; None leaves answers unchecked."""
    max_retries: int = 1
    """How often a model whose answer failed `model_output` is asked again with the errors."""
    coerce: bool = True
    """Pass the validated, coerced values on; False only checks and passes the originals."""
    strict: bool = False
    """Validate in pydantic's strict mode: no `"42"` for an `int`."""

    def __post_init__(self) -> None:
        for name in ("validate_input", "validate_output", "coerce", "strict"):
            require_bool(_OWNER, name, getattr(self, name))
        require_int(_OWNER, "max_retries", self.max_retries, minimum=0)
        model: object = self.input_model
        if model is not None and not (
            isinstance(model, type) and issubclass(model, pydantic.BaseModel)
        ):
            raise ConfigError(
                f"{_OWNER}.input_model must be a pydantic BaseModel subclass, got {model!r}"
            )
        _require_type("output_model", self.output_model)
        _require_type("model_output", self.model_output)
        for name, flag in (("input_model", "validate_input"), ("output_model", "validate_output")):
            if getattr(self, name) is not None and not getattr(self, flag):
                raise ConfigError(f"{_OWNER}.{name} is set but {flag} is False; drop one")


def _listing(errors: tuple[tuple[str, str], ...], whole: str) -> str:
    return "; ".join(f"{path or whole}: {message}" for path, message in errors)


class ValidationMiddleware:
    """Validates tool arguments and results, and makes final answers fit a model."""

    def __init__(self, config: ValidationConfig | None = None) -> None:
        if config is not None and not isinstance(config, ValidationConfig):
            raise ConfigError(f"config must be a ValidationConfig, got {config!r}")
        self.config = config = config or ValidationConfig()
        self._output = None if config.output_model is None else type_adapter(config.output_model)
        answer = config.model_output
        self._answer = None if answer is None else AnswerFormat(answer, strict=config.strict)

    async def wrap_tool_call(
        self, call: ToolCall, next: Callable[[ToolCall], Awaitable[ToolResult]]
    ) -> ToolResult:
        """Validate the call's arguments, run it, then validate its value."""
        function = getattr(call.tool, "function", None)
        signature = signature_of(function) if callable(function) else None
        if self.config.validate_input:
            call = self._checked_call(call, signature)
        result = await next(call)
        if self.config.validate_output and result.error is None:
            result = self._checked_result(call, result, signature)
        return result

    def _checked_call(self, call: ToolCall, signature: Signature | None) -> ToolCall:
        config = self.config
        # Fast path (guard overhead): exact builtin scalars pass pydantic as they are, so such
        # a call is valid and a coerced copy would equal it.
        quick = None if signature is None or config.input_model is not None else signature.quick
        if quick is not None and quick.admits(call.args, call.kwargs):
            return call
        try:
            if config.input_model is not None:
                values = model_values(
                    config.input_model, call.args, call.kwargs, signature, strict=config.strict
                )
            elif signature is not None:
                values = signature.validate(call.args, call.kwargs, strict=config.strict)
            else:
                return call
        except (TypeError, pydantic.ValidationError) as error:
            errors = error_paths(error)
            raise InvalidInputError(
                f"invalid arguments for tool {call.tool_name!r}: {_listing(errors, '(arguments)')}",
                errors=errors,
            ) from error
        if not config.coerce:
            return call
        if signature is None:
            kwargs = {key: values.get(key, value) for key, value in call.kwargs.items()}
            return dataclasses.replace(call, kwargs=kwargs)
        args, kwargs = signature.rebuild(call.args, call.kwargs, values)
        return dataclasses.replace(call, args=args, kwargs=kwargs)

    def _checked_result(
        self, call: ToolCall, result: ToolResult, signature: Signature | None
    ) -> ToolResult:
        adapter = self._output
        if adapter is None and signature is not None:
            if signature.quick.keeps(result.value):  # a fast path, as for the arguments
                return result
            adapter = signature.returns
        if adapter is None:
            return result
        try:
            value = adapter.validate_python(result.value, strict=self.config.strict)
        except pydantic.ValidationError as error:
            errors = error_paths(error)
            raise InvalidInputError(
                f"tool {call.tool_name!r} returned an invalid value: {_listing(errors, '(value)')}",
                errors=errors,
            ) from error
        return dataclasses.replace(result, value=value) if self.config.coerce else result

    async def wrap_model_call(
        self, request: ModelRequest, next: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        """Call the model; ask again while its final answer does not fit `model_output`."""
        answer = self._answer
        if answer is None:
            return await next(request)
        messages = list(request.messages)
        current = request
        retries = 0
        while True:
            response = await next(current)
            if response.message.tool_calls:
                return response
            problems = answer.problems(response.message.text)
            if not problems:
                return response
            if retries == self.config.max_retries:
                raise InvalidInputError(
                    f"the model's answer does not fit the required output after {retries} "
                    f"corrective retries: {_listing(problems, '(answer)')}",
                    errors=problems,
                )
            retries += 1
            messages += [response.message, Message.user(answer.correction(problems))]
            current = dataclasses.replace(request, messages=list(messages))
