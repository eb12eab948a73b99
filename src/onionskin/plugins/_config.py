"""`PluginConfig`: what a plugin's middleware factory is given."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from onionskin.core.errors import ConfigError


def read_only_settings(owner: str, settings: object) -> Mapping[str, Any]:
    """A read-only copy of `settings`; `ConfigError` naming `owner` if it is no str-keyed mapping.

    The copy is shallow: a caller changing its dict later does not change the config.
    """
    if not isinstance(settings, Mapping) or not all(isinstance(key, str) for key in settings):
        raise ConfigError(f"{owner} must be a mapping with string keys, got {settings!r}")
    return MappingProxyType(dict(settings))


@dataclass(frozen=True, slots=True, kw_only=True)
class PluginConfig:
    """The `config` a middleware factory receives: `factory(config) -> middleware | None`.

    Read it by attribute (`config.agent`, `config.settings["key"]`). It is immutable:
    `settings` is a read-only copy of the mapping given, so a factory cannot change what
    the next plugin sees. Derive a variant with `dataclasses.replace`.
    """

    agent: str | None = None
    """The agent the middleware will serve (None when the stack is not for one agent)."""
    project_dir: Path | None = None
    """The project folder (`agents/`, `middleware/` ...), when there is one; a str is accepted."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """This plugin's own settings (YAML or JSON values: Any); `{}` by default."""

    def __post_init__(self) -> None:
        agent: object = self.agent  # object: configs are built from YAML and plugins, untyped
        if agent is not None and (not isinstance(agent, str) or not agent):
            raise ConfigError(
                f"PluginConfig.agent must be a non-empty string or None, got {agent!r}"
            )
        project_dir: object = self.project_dir
        if project_dir is not None:
            if not isinstance(project_dir, str | os.PathLike):
                raise ConfigError(
                    f"PluginConfig.project_dir must be a path or None, got {project_dir!r}"
                )
            object.__setattr__(self, "project_dir", Path(project_dir))
        object.__setattr__(
            self, "settings", read_only_settings("PluginConfig.settings", self.settings)
        )
