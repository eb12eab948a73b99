"""A small JSON-schema check for tool arguments: required and unknown keys, JSON types, enums.

It covers what tool schemas use (pydantic's among them): `type` (one or a list),
`properties`, `required`, `additionalProperties`, `items`, `enum`, `const`, `anyOf`,
`oneOf` (read as anyOf), `allOf` and local `$ref`s into `$defs`. Other keywords (formats,
lengths, patterns) are not checked: the tool's own validation still runs.

Written here rather than taking `jsonschema`: that is a dependency of its own (with
`referencing` and `rpds-py`), for a check that needs a tenth of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

Problem: TypeAlias = tuple[str, str]
"""A dotted path into the arguments (`"address.zip"`, `""` for the whole) and what is wrong."""

# Any: JSON schemas and JSON values are untyped by nature.
Schema: TypeAlias = Mapping[str, Any]

_MAX_DEPTH = 32  # a recursive $ref ends here instead of in a RecursionError


def _is_integer(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


_TYPES: dict[str, Callable[[object], bool]] = {
    "string": lambda value: isinstance(value, str),
    "integer": _is_integer,
    "number": lambda value: isinstance(value, int | float) and not isinstance(value, bool),
    "boolean": lambda value: isinstance(value, bool),
    "array": lambda value: isinstance(value, list | tuple),
    "object": lambda value: isinstance(value, Mapping),
    "null": lambda value: value is None,
}


def check_arguments(schema: Schema, arguments: Mapping[str, Any]) -> list[Problem]:
    """The problems of `arguments` against the JSON schema `schema` ([] when they fit)."""
    return _Checker(schema).check(schema, arguments, "", 0)


def _join(path: str, key: str | int) -> str:
    return f"{path}.{key}" if path else str(key)


class _Checker:
    """Walks one value against one schema, resolving `$ref`s against the root."""

    __slots__ = ("root",)

    def __init__(self, root: Schema) -> None:
        self.root = root

    def check(self, schema: Schema, value: object, path: str, depth: int) -> list[Problem]:
        if depth > _MAX_DEPTH or not isinstance(schema, Mapping):
            return []
        schema = self._resolve(schema)
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if options and all(self.check(opt, value, path, depth + 1) for opt in options):
                return [(path, "matches none of the allowed forms")]
        problems = [
            problem
            for part in schema.get("allOf", ())
            for problem in self.check(part, value, path, depth + 1)
        ]
        problems += self._type_and_values(schema, value, path)
        if problems:
            return problems
        if isinstance(value, Mapping):
            return self._object(schema, value, path, depth)
        if isinstance(value, list | tuple) and isinstance(schema.get("items"), Mapping):
            return [
                problem
                for index, item in enumerate(value)
                for problem in self.check(schema["items"], item, _join(path, index), depth + 1)
            ]
        return []

    def _resolve(self, schema: Schema) -> Schema:
        ref = schema.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return schema
        target: object = self.root
        for key in ref[2:].split("/"):
            target = target.get(key) if isinstance(target, Mapping) else None
        return target if isinstance(target, Mapping) else {}

    @staticmethod
    def _type_and_values(schema: Schema, value: object, path: str) -> list[Problem]:
        expected = schema.get("type")
        names = [expected] if isinstance(expected, str) else list(expected or ())
        known = [name for name in names if name in _TYPES]
        if known and not any(_TYPES[name](value) for name in known):
            return [(path, f"should be of type {' or '.join(known)}, got {_json_type(value)}")]
        if "enum" in schema and value not in schema["enum"]:
            allowed = ", ".join(repr(option) for option in schema["enum"])
            return [(path, f"should be one of {allowed}, got {value!r}")]
        if "const" in schema and value != schema["const"]:
            return [(path, f"should be {schema['const']!r}, got {value!r}")]
        return []

    def _object(
        self, schema: Schema, value: Mapping[str, Any], path: str, depth: int
    ) -> list[Problem]:
        properties: Schema = schema.get("properties") or {}
        problems = [
            (_join(path, key), "is required")
            for key in schema.get("required", ())
            if key not in value
        ]
        extra = schema.get("additionalProperties", True)
        unknown = "is not an argument of this tool" if not path else "is not a known field"
        for key, item in value.items():
            if key in properties:
                problems += self.check(properties[key], item, _join(path, key), depth + 1)
            elif extra is False:
                problems.append((_join(path, key), unknown))
            elif isinstance(extra, Mapping):
                problems += self.check(extra, item, _join(path, key), depth + 1)
        return problems


def _json_type(value: object) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _TYPES[name](value):
            return name
    return type(value).__name__
