"""The format a model's final answer must have: JSON valid against a type, and how to say so."""

from __future__ import annotations

import json
from typing import Any

import pydantic

from onionskin.middleware._signature_check import error_paths, type_adapter


def _unfenced(text: str) -> str:
    """The answer without a Markdown code fence around it, if it has one."""
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```") and "\n" in stripped:
        return stripped[stripped.index("\n") + 1 : -3]
    return stripped


class AnswerFormat:
    """Checks final answers against a type and words the correction for the model."""

    __slots__ = ("_adapter", "_schema", "strict")

    def __init__(self, answer_type: Any, *, strict: bool) -> None:
        # Any: whatever type the user asked answers to have (a model, list[Item], ...).
        self._adapter = type_adapter(answer_type)
        self.strict = strict
        try:
            self._schema = json.dumps(self._adapter.json_schema())
        except pydantic.PydanticUserError:  # a type with no JSON schema: the errors must do
            self._schema = ""

    def problems(self, text: str) -> tuple[tuple[str, str], ...]:
        """`(path, message)` for each way `text` misses the format; () when it fits."""
        try:
            self._adapter.validate_json(_unfenced(text), strict=self.strict)
        except pydantic.ValidationError as error:
            return error_paths(error)
        return ()

    def correction(self, problems: tuple[tuple[str, str], ...]) -> str:
        """What the model reads before it answers again."""
        schema = f" matching this JSON schema: {self._schema}" if self._schema else ""
        listed = "\n".join(f"- {path or '(answer)'}: {message}" for path, message in problems)
        return (
            f"Your answer was not accepted. It must be JSON{schema}\n"
            f"It had these problems:\n{listed}\n"
            "Answer again with only the corrected JSON."
        )
