"""Which arguments and results a signature certainly accepts unchanged, decided without pydantic.

Validating a call with pydantic costs microseconds per call (binding, a model instance, the
values picked back out), and the guard stack has a budget of about two per guard (issue:
"the full guard stack adds at most 25 µs per call"). Most calls pass builtin scalars of
exactly the annotated type (`str`, `int`, `float`, `bool`, `None`, or anything for an
unannotated or `Any` parameter), which pydantic accepts and hands back as the very same
objects, lax or strict. For those the guards skip pydantic; anything this plan cannot vouch
for (a subclass, a constraint, a model, `*args`, a missing, surplus or doubled argument)
goes the slow way, which stays the one authority on errors and coercion.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from pydantic.fields import FieldInfo

# Each passes pydantic (lax and strict) as the same object when the value has exactly its type.
_PASS_THROUGH: tuple[type, ...] = (str, int, float, bool, type(None))
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def _exact(hint: object, default: object = None) -> type | None:
    """The type a value must have exactly to pass unchanged: `object` for any; None: no such.

    A `Field(...)` default may carry constraints, so it is never vouched for.
    """
    if isinstance(default, FieldInfo):
        return None
    if hint is inspect.Parameter.empty or hint is Any:
        return object
    if hint is None:  # the annotation `None` means NoneType, as in `-> None`
        return type(None)
    return next((kind for kind in _PASS_THROUGH if hint is kind), None)


def _fits(value: object, expected: type) -> bool:
    return expected is object or type(value) is expected


class QuickPlan:
    """What one signature accepts unchanged without validation, worked out once per function."""

    __slots__ = ("keywords", "names", "positional", "required", "returns")

    def __init__(self, signature: inspect.Signature, context: str | None) -> None:
        self.keywords: dict[str, type] = {}
        """Parameters that may be given by keyword, and the exact type each needs."""
        self.positional: list[type] = []
        """The exact types of the leading positional parameters, up to the first unvouched."""
        self.names: list[str] = []
        """Those parameters' names, to find an argument given twice."""
        required: set[str] = set()
        prefix = True  # still among the leading positional parameters, all vouched for
        for param in signature.parameters.values():
            if param.kind in _VARIADIC:
                continue
            # The runtime fills in a RunContext: its argument takes the slow way.
            exact = None if param.name == context else _exact(param.annotation, param.default)
            if param.kind in _POSITIONAL and prefix:
                prefix = exact is not None
                if exact is not None:
                    self.positional.append(exact)
                    self.names.append(param.name)
            if exact is not None and param.kind is not param.POSITIONAL_ONLY:
                self.keywords[param.name] = exact
            if param.default is param.empty and param.name != context:
                required.add(param.name)
        self.required = frozenset(required)
        self.returns = _exact(signature.return_annotation)

    def admits(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> bool:
        """Whether these arguments certainly validate, each kept as the very same object.

        False only means "not sure": validate to find out. Any: the arguments' values.
        """
        keywords = self.keywords
        for key, value in kwargs.items():
            expected = keywords.get(key)
            # An unknown key gets None, which is no value's type: it is refused with the rest.
            if type(value) is not expected and expected is not object:
                return False
        if not args:
            return kwargs.keys() >= self.required
        if len(args) > len(self.positional) or not all(map(_fits, args, self.positional)):
            return False
        given = {*kwargs, *self.names[: len(args)]}
        # A shorter set means an argument given twice, which binding refuses.
        return len(given) == len(args) + len(kwargs) and given >= self.required

    def keeps(self, value: object) -> bool:
        """Whether a returned `value` certainly validates against the return annotation as is."""
        returns = self.returns  # None (not vouched for) is no value's type
        return returns is object or type(value) is returns
