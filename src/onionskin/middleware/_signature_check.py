"""Validate a call's args and kwargs: by the function's type hints, or by a pydantic model.

What `pydantic.validate_call` does, but split in two: validating here, calling later (the
tool-call chain does), so a guard can check a call and hand on the coerced arguments in the
shape the caller gave them (positional stay positional). A `RunContext` parameter is
skipped: the runtime fills it in. A `Signature`'s `quick` plan lets the guards skip
pydantic for the common call; `_signature_cache.signature_of` builds one per function.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import pydantic
from pydantic.errors import PydanticSchemaGenerationError

from onionskin.core.context import RunContext
from onionskin.core.errors import ConfigError
from onionskin.middleware._quick_arguments import QuickPlan

_LENIENT = pydantic.ConfigDict(arbitrary_types_allowed=True)
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def type_adapter(hint: Any) -> pydantic.TypeAdapter[Any]:
    """A validator for `hint`; classes pydantic does not know are checked with isinstance.

    Any: the hint is whatever the user annotated.
    """
    try:
        return pydantic.TypeAdapter(hint)
    except PydanticSchemaGenerationError:
        return pydantic.TypeAdapter(hint, config=_LENIENT)


def error_paths(error: Exception) -> tuple[tuple[str, str], ...]:
    """`(dotted path, message)` for each problem pydantic found; `("", why)` for a TypeError."""
    if not isinstance(error, pydantic.ValidationError):
        return (("", str(error)),)
    return tuple(
        (".".join(str(part) for part in item["loc"]), item["msg"])
        for item in error.errors(include_url=False)
    )


class Signature:
    """One function's parameters as a pydantic model, and a validator of its return value."""

    __slots__ = (
        "context",
        "fields",
        "keywords",
        "model",
        "positional",
        "quick",
        "returns",
        "signature",
        "var_keyword",
        "var_positional",
    )

    def __init__(self, function: Callable[..., Any]) -> None:
        try:
            self.signature = inspect.signature(function, eval_str=True)
        except (NameError, SyntaxError, TypeError, ValueError) as error:
            raise ConfigError(f"cannot read the signature of {function!r}: {error}") from error
        self.context: str | None = None
        self.var_positional: str | None = None
        self.var_keyword: str | None = None
        self.keywords: set[str] = set()
        self.positional: list[str] = []
        self.fields: dict[str, str] = {}  # parameter name -> model field
        definitions: dict[str, Any] = {}  # Any: pydantic's (type, FieldInfo) field tuples
        for index, param in enumerate(self.signature.parameters.values()):
            hint = Any if param.annotation is param.empty else param.annotation
            if param.kind in _POSITIONAL:
                self.positional.append(param.name)
            if hint is RunContext:
                self.context = param.name
                continue
            hint, default = self._register(param, hint)
            # Neutral field names, the parameter as alias: `_token` or `schema` are fine here.
            self.fields[param.name] = field = f"p{index}"
            definitions[field] = (hint, pydantic.Field(default, alias=param.name))
        returns = self.signature.return_annotation
        try:
            self.model = pydantic.create_model(
                "arguments",
                __config__=pydantic.ConfigDict(extra="forbid", **_LENIENT),
                **definitions,
            )
            self.returns = None if returns is inspect.Signature.empty else type_adapter(returns)
        except Exception as error:  # pydantic raises assorted errors on odd annotations
            raise ConfigError(
                f"cannot validate the arguments or result of {function!r}: {error}"
            ) from error
        self.quick = QuickPlan(self.signature, self.context)
        """When the arguments or result certainly validate unchanged, pydantic is skipped."""

    def _register(self, param: inspect.Parameter, hint: Any) -> tuple[Any, Any]:
        """The field type and default of `param` (Any: user annotations and defaults)."""
        if param.kind is param.VAR_POSITIONAL:
            self.var_positional = param.name
            return tuple[hint, ...], ()
        if param.kind is param.VAR_KEYWORD:
            self.var_keyword = param.name
            return dict[str, hint], {}
        if param.kind is not param.POSITIONAL_ONLY:
            self.keywords.add(param.name)
        return hint, (... if param.default is param.empty else param.default)

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments by parameter name; unknown keywords kept for the model to refuse.

        Raises:
            TypeError: when the arguments cannot bind (too many positional, a duplicate).
        """
        unknown: dict[str, Any] = {}
        if self.var_keyword is None:
            known = (*self.keywords, self.context)
            unknown = {k: v for k, v in kwargs.items() if k not in known}
            kwargs = {k: v for k, v in kwargs.items() if k not in unknown}
        bound = self.signature.bind_partial(*args, **kwargs)
        bound.arguments.pop(self.context or "", None)
        return {**bound.arguments, **unknown}

    def validate(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any], *, strict: bool
    ) -> dict[str, Any]:
        """The validated (coerced) value of each argument given, by parameter name.

        Raises:
            TypeError: when the arguments cannot bind.
            pydantic.ValidationError: when an argument does not fit its type hint.
        """
        data = self.bind(args, kwargs)
        validated = self.model.model_validate(data, strict=strict)
        values = validated.__dict__
        return {name: values[field] for name, field in self.fields.items() if name in data}

    def rebuild(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any], values: Mapping[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """`args` and `kwargs` with each value replaced by `values[name]`, in the same shape."""
        named = self.positional[: len(args)]
        new_args = [values.get(name, arg) for name, arg in zip(named, args, strict=False)]
        if len(args) > len(named) and self.var_positional is not None:
            new_args += values.get(self.var_positional, args[len(named) :])
        spread: Mapping[str, Any] = values.get(self.var_keyword or "", {})
        new_kwargs = {
            key: values[key] if key in self.keywords and key in values else spread.get(key, value)
            for key, value in kwargs.items()
        }
        return tuple(new_args), new_kwargs


def model_values(
    model: type[pydantic.BaseModel],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    signature: Signature | None,
    *,
    strict: bool,
) -> dict[str, Any]:
    """The arguments validated against `model`, by argument name (a field's alias, if any).

    Raises:
        TypeError: when positional arguments cannot be named (no signature, or too many).
        pydantic.ValidationError: when the arguments do not fit `model`.
    """
    data = dict(kwargs)
    if args:
        if signature is None:
            raise TypeError("positional arguments cannot be matched to the model's fields")
        data = {**signature.signature.bind_partial(*args).arguments, **data}
    validated = model.model_validate(data, strict=strict)
    return {
        info.alias or name: getattr(validated, name)
        for name, info in type(validated).model_fields.items()
        if name in validated.model_fields_set
    }
