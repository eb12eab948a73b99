"""Reading a project's YAML files: safe loading, and the line each field is on.

Only `yaml.SafeLoader` is used: a project file is data, and must never build arbitrary
Python objects. The file is composed into nodes once; the nodes give the line of any field
for error messages, and the data is constructed from the same nodes (one parse).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from onionskin.project.errors import ProjectError


def read_yaml(path: Path, display: str) -> tuple[Any, yaml.Node | None]:
    """Load `path` as YAML; returns the data (JSON-like values: Any) and its root node.

    Raises:
        ProjectError: the file cannot be read, is malformed (with its line), or repeats a key.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ProjectError(display, f"cannot read the file: {error}") from error
    try:
        return _construct(text, display)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "malformed YAML"
        line = None if mark is None else mark.line + 1
        raise ProjectError(display, f"malformed YAML: {problem}", line=line) from error
    except yaml.reader.ReaderError as error:
        # A character YAML forbids (a control character, say): reported by position only.
        line = text.count("\n", 0, error.position) + 1
        problem = f"malformed YAML: unacceptable character {chr(error.character)!r}"
        raise ProjectError(display, problem, line=line) from error
    except yaml.YAMLError as error:  # pragma: no cover - loading raises only the two above
        raise ProjectError(display, f"malformed YAML: {error}") from error


def _construct(text: str, display: str) -> tuple[Any, yaml.Node | None]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        _check_duplicate_keys(node, display)
        return loader.construct_document(node), node
    finally:
        loader.dispose()


def _check_duplicate_keys(node: yaml.Node, display: str) -> None:
    # PyYAML keeps the last of two equal keys silently; a repeated field is almost always a
    # mistake (one value is lost), so it is reported instead.
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    raise ProjectError(
                        display,
                        f"the key {key.value!r} appears twice; keep one",
                        line=key.start_mark.line + 1,
                    )
                seen.add(key.value)
            _check_duplicate_keys(value, display)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_duplicate_keys(item, display)


def line_of(node: yaml.Node | None, loc: Sequence[str | int]) -> int | None:
    """The 1-based line of the field at `loc`, or of its closest ancestor in the file.

    A mapping key's own line is returned for the last step, so an unknown or mistyped
    field points at its key; None when not even the first step is in the file.
    """
    line: int | None = None
    current = node
    for step in loc:
        if isinstance(current, yaml.MappingNode):
            pair = next(
                (
                    (key, value)
                    for key, value in current.value
                    if isinstance(key, yaml.ScalarNode) and key.value == str(step)
                ),
                None,
            )
            if pair is None:
                return line
            line, current = pair[0].start_mark.line + 1, pair[1]
        elif isinstance(current, yaml.SequenceNode) and isinstance(step, int):
            if not 0 <= step < len(current.value):
                return line
            current = current.value[step]
            line = current.start_mark.line + 1
        else:
            return line
    return line


def field_path(loc: Sequence[str | int]) -> str:
    """A field's path as the user reads it: `tools[1]`, `middleware[0].use`."""
    path = ""
    for step in loc:
        path += f"[{step}]" if isinstance(step, int) else (f".{step}" if path else step)
    return path
