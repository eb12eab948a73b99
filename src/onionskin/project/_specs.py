"""A YAML file validated against its spec model; errors name the file, line and field."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import pydantic
import yaml
from pydantic_core import ErrorDetails

from onionskin.project._yaml import field_path, line_of, read_yaml
from onionskin.project.errors import ProjectError

SpecT = TypeVar("SpecT", bound=pydantic.BaseModel)


def _problem(error: ErrorDetails, spec: type[pydantic.BaseModel]) -> str:
    if error["type"] == "extra_forbidden":
        if len(error["loc"]) > 1:
            return "unknown field"
        known = ", ".join(field.alias or name for name, field in spec.model_fields.items())
        return f"unknown field (the fields are: {known})"
    # pydantic says "Value error, ..." for our own validators: the prefix adds nothing.
    message = error["msg"].removeprefix("Value error, ")
    if error["type"].endswith("_type"):
        value = error["input"]
        message += f", got {type(value).__name__} {value!r:.40}"
    return message


def load_spec(path: Path, display: str, spec: type[SpecT]) -> tuple[SpecT, yaml.Node | None]:
    """Read `path` and validate it as `spec`; an empty file is an empty mapping.

    Raises:
        ProjectError: malformed YAML, or the first invalid field (with its line).
    """
    data, node = read_yaml(path, display)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProjectError(
            display,
            f"the file must hold a mapping of fields, got {type(data).__name__}",
            line=None if node is None else node.start_mark.line + 1,
        )
    try:
        return spec.model_validate(data), node
    except pydantic.ValidationError as error:
        raise spec_error(error, display, node, spec) from error


def spec_error(
    error: pydantic.ValidationError,
    display: str,
    node: yaml.Node | None,
    spec: type[pydantic.BaseModel],
) -> ProjectError:
    """The first problem of `error` as a `ProjectError`; the others are listed after it."""
    errors = error.errors(include_url=False)
    first = errors[0]
    loc = list(first["loc"])
    problem = _problem(first, spec)
    if len(errors) > 1:
        others = "; ".join(f"{field_path(e['loc'])}: {_problem(e, spec)}" for e in errors[1:])
        problem += f" (also: {others})"
    return ProjectError(display, problem, line=line_of(node, loc), field=field_path(loc) or None)
