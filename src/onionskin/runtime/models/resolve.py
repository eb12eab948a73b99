"""Model strings to models: `"openai:gpt-4o-mini"`, `"anthropic:claude-haiku-4-5"`.

A model string is `provider:model`; a bare name is the scripted stand-in. Each provider
registers a builder here (`register_provider`); a builder returns None when the provider
cannot be used on this machine (no API key, SDK not installed), and the scripted stand-in
answers instead, after a notice on the `onionskin.models` logger that says what to set. So a
project runs on a fresh machine with no key, and the same project calls the real model
once a key is configured.

Built in: `openai:<model>` (an `OpenAIModel` when `OPENAI_API_KEY` is set, or a base_url is
given as the `base_url` setting or `OPENAI_BASE_URL`) and `anthropic:<model>` (an
`AnthropicModel` when `ANTHROPIC_API_KEY` is set, or a base_url is given as the setting or
`ANTHROPIC_BASE_URL`). The `api_key_env` setting names another variable to read the key from.
Keys and URLs are read from `ModelOptions.environ`, never from anywhere else, so a caller
(or a test) decides what the resolver sees.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from onionskin.core.calls import Model, ModelRequest
from onionskin.core.errors import ConfigError
from onionskin.runtime.models._model_options import check_base_url
from onionskin.runtime.models.scripted import ScriptedModel

logger = logging.getLogger("onionskin.models")

SCRIPTED = "scripted"


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelOptions:
    """What a provider builder gets besides the model name."""

    settings: Mapping[str, Any] = field(default_factory=dict)
    """The agent's provider options (`base_url`, `api_key_env`, ...); Any: JSON values."""
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    """Where API keys and base URLs are read from (the process environment by default)."""


ProviderBuilder = Callable[[str, ModelOptions], "Model | None"]
"""`builder(model_name, options)`: the model, or None when this machine cannot use it."""

_PROVIDERS: dict[str, ProviderBuilder] = {}
_UNAVAILABLE_NOTICE: dict[str, str] = {}


def register_provider(prefix: str, builder: ProviderBuilder, *, unavailable: str) -> None:
    """Make `prefix:model` strings build models with `builder`.

    Args:
        prefix: the provider's name before the colon (`"openai"`).
        builder: returns the model, or None when the provider cannot be used here.
        unavailable: the notice when it cannot (what to install or set).
    """
    if not prefix.isidentifier():
        raise ConfigError(f"a provider prefix must be a plain name, got {prefix!r}")
    _PROVIDERS[prefix] = builder
    _UNAVAILABLE_NOTICE[prefix] = unavailable


def scripted_stand_in(name: str) -> ScriptedModel:
    """The model that answers when no real one is configured: it says so, and echoes."""
    label = "scripted" if name == SCRIPTED else f"scripted stand-in for {name}"

    def answer(request: ModelRequest) -> str:
        last = next((m.text for m in reversed(request.messages) if m.role == "user"), "")
        return f"({label}) You said: {last}"

    return ScriptedModel(answer, name=name)


def resolve_model(spec: str, options: ModelOptions | None = None) -> Model:
    """The model a model string names; the scripted stand-in when it cannot be used here.

    Raises:
        ConfigError: the string is malformed or names an unknown provider.
    """
    options = options or ModelOptions()
    value: object = spec  # object: model strings come from YAML files
    if not isinstance(value, str) or not spec.strip():
        raise ConfigError(f"a model must be a string like 'openai:gpt-4o-mini', got {spec!r}")
    prefix, colon, name = spec.partition(":")
    if not colon:
        return scripted_stand_in(spec)
    if prefix == SCRIPTED:
        return scripted_stand_in(name or SCRIPTED)
    _load_builtin_providers()
    builder = _PROVIDERS.get(prefix)
    if builder is None:
        known = ", ".join(sorted([SCRIPTED, *_PROVIDERS]))
        raise ConfigError(f"unknown model provider {prefix!r} in {spec!r} (known: {known})")
    if not name:
        raise ConfigError(f"model string {spec!r} names no model after {prefix + ':'!r}")
    model = builder(name, options)
    if model is None:
        logger.warning(
            "%s: %s; using the scripted stand-in, which answers without a real model",
            spec,
            _UNAVAILABLE_NOTICE[prefix],
        )
        return scripted_stand_in(name)
    return model


_CONNECTION_SETTINGS = ("api_key_env", "base_url")
_OPENAI_NOTICE = (
    "set OPENAI_API_KEY (or the variable the api_key_env setting names), or give a base_url "
    '(setting or OPENAI_BASE_URL), with the SDK installed: pip install "onionskin[openai]"'
)
_ANTHROPIC_NOTICE = (
    "set ANTHROPIC_API_KEY (or the variable the api_key_env setting names), or give a "
    "base_url (setting or ANTHROPIC_BASE_URL), with the SDK installed: "
    'pip install "onionskin[anthropic]"'
)


def _connection(prefix: str, options: ModelOptions) -> tuple[str | None, str | None]:
    """The base_url and API key `options` give a provider (`prefix` names its variables)."""
    settings = options.settings
    unknown = sorted(set(settings) - set(_CONNECTION_SETTINGS))
    if unknown:
        raise ConfigError(
            f"unknown {prefix.lower()} provider settings {unknown}; the provider takes "
            f"{', '.join(_CONNECTION_SETTINGS)} (model settings such as temperature belong "
            "to the agent's settings)"
        )
    key_env: object = settings.get("api_key_env", f"{prefix}_API_KEY")
    if not isinstance(key_env, str) or not key_env:
        raise ConfigError(f"provider setting api_key_env must be a variable name, got {key_env!r}")
    if "base_url" in settings:
        base_url = check_base_url(f"the {prefix.lower()} provider's base_url", settings["base_url"])
    else:
        base_url = check_base_url(
            f"{prefix}_BASE_URL", options.environ.get(f"{prefix}_BASE_URL") or None
        )
    return base_url, options.environ.get(key_env) or None


def _openai(name: str, options: ModelOptions) -> Model | None:
    base_url, api_key = _connection("OPENAI", options)
    if api_key is None and base_url is None:
        return None
    try:
        from onionskin.runtime.models.openai import NO_KEY, OpenAIModel
    except ImportError:
        return None
    # The key is always passed, so the SDK never falls back to the real environment.
    return OpenAIModel(name, base_url=base_url, api_key=api_key or NO_KEY)


def _anthropic(name: str, options: ModelOptions) -> Model | None:
    base_url, api_key = _connection("ANTHROPIC", options)
    if api_key is None and base_url is None:
        return None
    try:
        from onionskin.runtime.models.anthropic import NO_KEY, AnthropicModel
    except ImportError:
        return None
    return AnthropicModel(name, base_url=base_url, api_key=api_key or NO_KEY)


def _load_builtin_providers() -> None:
    """Register the built-in providers (their SDKs are imported only when a model is built).

    A provider registered already (say, by the application) keeps its builder.
    """
    if "openai" not in _PROVIDERS:
        register_provider("openai", _openai, unavailable=_OPENAI_NOTICE)
    if "anthropic" not in _PROVIDERS:
        register_provider("anthropic", _anthropic, unavailable=_ANTHROPIC_NOTICE)
