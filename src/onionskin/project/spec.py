"""What a project's YAML files may say: agents, pipelines and project settings.

The models are strict (YAML already gives native types, so `"5"` is not a number) and
forbid unknown keys, so a misspelt field is an error rather than silently ignored.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

_STRICT = ConfigDict(extra="forbid", frozen=True, strict=True)
_IMPORT_STRING = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def _as_reference(value: object) -> object:
    # The short form `- package.module:attr` is `{use: package.module:attr}` without kwargs.
    return {"use": value} if isinstance(value, str) else value


class MiddlewareRef(BaseModel):
    """One entry of an agent's `middleware` list: what to import and how to build it."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    use: str
    """An import string, `package.module:attr` (attr may be dotted: `module:Class.make`)."""
    with_: dict[str, Any] | None = Field(default=None, alias="with")
    """Keyword arguments for a class or factory (JSON-like values: Any); None when absent."""

    @pydantic.field_validator("use")
    @classmethod
    def _check_use(cls, value: str) -> str:
        if not _IMPORT_STRING.fullmatch(value):
            raise ValueError(f"must be an import string like 'package.module:attr', got {value!r}")
        return value


class AgentSpec(BaseModel):
    """An agent as `agents/<name>.yaml` describes it."""

    model_config = _STRICT

    model: str = "scripted"
    """A model string, `provider:model` (`openai:gpt-4o-mini`); a bare name is scripted."""
    instructions: str = ""
    """The system prompt; `{var}` placeholders are filled from the run's state."""
    description: str | None = None
    """What the agent is for (shown by the CLI and the HTTP API)."""
    tools: list[str] = Field(default_factory=list)
    """Names of functions defined in `tools/*.py`."""
    middleware: list[Annotated[MiddlewareRef, BeforeValidator(_as_reference)]] = Field(
        default_factory=list
    )
    """Middleware for this agent's turns, outermost first."""
    settings: dict[str, Any] = Field(default_factory=dict)
    """Model request settings (`temperature`, `max_tokens`, ...): JSON-like values."""
    provider: dict[str, Any] = Field(default_factory=dict)
    """Provider options (`base_url`, `api_key_env`, ...), passed as `ModelOptions.settings`."""
    max_steps: int | None = Field(default=None, ge=1)
    """Model calls the agent may make in one turn; the `Agent` default when absent."""


class PipelineSpec(BaseModel):
    """A pipeline as `pipelines/<name>.yaml` describes it: agents run in order."""

    model_config = _STRICT

    agents: list[str] = Field(min_length=1)
    """Agent names, in run order."""
    description: str | None = None
    """What the pipeline is for."""


def _plugins(value: object) -> object:
    # `plugins: {audit: }` (a plugin with no settings) loads as None: it means "no settings".
    if isinstance(value, dict):
        return {key: {} if settings is None else settings for key, settings in value.items()}
    return value


class ProjectSettings(BaseModel):
    """The project's own settings, from the optional `onionskin.yaml`."""

    model_config = _STRICT

    database_url: str | None = None
    """Where the project's stores live; the embedded SQLite file when None."""
    plugins: Annotated[dict[str, dict[str, Any]], BeforeValidator(_plugins)] = Field(
        default_factory=dict
    )
    """Settings per plugin name (JSON-like values: Any)."""
