"""Errors of project folders: a bad file, and a name the project does not have.

```
ConfigError
├── ProjectError        a project file is malformed or invalid (names the file, line, field)
└── UnknownAgentError   no agent or pipeline of that name in the project
```
"""

from __future__ import annotations

from typing import Any

from onionskin.core.errors import ConfigError


def _rebuild(cls: type[BaseException], args: tuple[Any, ...], fields: dict[str, Any]) -> Any:
    """Unpickle an error whose keyword-only fields `args` alone cannot carry."""
    return cls(*args, **fields)


class ProjectError(ConfigError):
    """A project file is malformed or invalid.

    The message reads `"agents/assistant.yaml, line 3: tools[1]: no tool named 'serch' ..."`.

    Attributes:
        path: the file, relative to the project directory, with `/` separators.
        line: the 1-based line the problem is on, when known.
        field: the field's path in the file (`"tools[1]"`, `"middleware[0].use"`), if any.
        problem: what is wrong and what to do, without the location.
    """

    def __init__(
        self, path: str, problem: str, *, line: int | None = None, field: str | None = None
    ) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.problem = problem
        where = path if line is None else f"{path}, line {line}"
        super().__init__(f"{where}: {problem}" if field is None else f"{where}: {field}: {problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        fields = {"line": self.line, "field": self.field}
        return (_rebuild, (type(self), (self.path, self.problem), fields))


class UnknownAgentError(ConfigError):
    """The project has no agent or pipeline of the requested name.

    Attributes:
        name: the name asked for (already checked to be a valid name).
        known: the names the project does have, sorted.
    """

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        self.name = name
        self.known = known
        super().__init__(
            f"the project has no agent or pipeline named {name!r} "
            f"(known: {', '.join(known) or 'none'})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.name, self.known))
