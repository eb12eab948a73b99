"""Agent instructions with `{var}` placeholders filled from the run's state (seed 002)."""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from onionskin.core.errors import ConfigError, PromptVariableError


class PromptTemplate:
    """Instructions parsed once; `render(state)` fills `{var}` from the run's state."""

    __slots__ = ("_keys", "_static", "_text", "agent")

    def __init__(self, text: str, *, agent: str) -> None:
        self._text = text
        self.agent = agent
        try:
            fields = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
        except ValueError as error:
            raise ConfigError(
                f"agent {agent!r}: its instructions are not a valid template ({error}); "
                "write literal braces as {{ and }}"
            ) from error
        for name in fields:
            if not name.isidentifier() and not name.replace("-", "_").isidentifier():
                raise ConfigError(
                    f"agent {agent!r}: placeholder {{{name}}} must be a plain state key "
                    "(letters, digits, _ and -)"
                )
        self._keys = tuple(dict.fromkeys(fields))
        # Without placeholders the text is fixed: unescape its {{ }} once, here.
        self._static = None if self._keys else text.format_map({})

    @property
    def text(self) -> str:
        """The template as written."""
        return self._text

    @property
    def keys(self) -> tuple[str, ...]:
        """The state keys the instructions use."""
        return self._keys

    def render(self, state: Mapping[str, Any]) -> str:
        """The instructions with every placeholder filled from `state`."""
        if self._static is not None:
            return self._static
        for key in self._keys:
            if key not in state:
                raise PromptVariableError(key, self.agent)
        return self._text.format_map(state)
