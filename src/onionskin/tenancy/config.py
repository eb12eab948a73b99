"""Per-tenant configuration and prompts (seed 003): providers, contributors and their merge.

A *config provider* answers, for one run, a mapping of config keys; a *prompt contributor*
answers text for the system prompt. Each states its `priority()`. Configs merge key by key,
the higher priority winning, nested mappings merged deeply; prompt contributions are
joined highest priority first. For equal priorities the one registered first wins (and
comes first), so a merge never depends on anything but the registration.
[TenantConfigMiddleware][onionskin.middleware.tenant_config.TenantConfigMiddleware] asks
them at the start of every run.

Over 200 lines: the two roles, the values they are asked with, the merge and the static
implementations are one vocabulary, read together.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from onionskin.core.errors import ConfigError

DEFAULT_PRIORITY = 50
"""The priority of a contributor that does not choose one (seed 003's tenant layer is 100)."""

T = TypeVar("T")
_FIELDS = ("tenant_id", "session_id", "run_id", "user_id", "workspace_id", "agent", "metadata")


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptContext(Mapping[str, Any]):
    """Who a run is for, as providers and contributors see it; also a read-only mapping.

    Seed 003's contributors read it as a mapping (`context.get("tenant_id")`); the fields
    are attributes as well.
    """

    tenant_id: str | None
    """The run's tenant (from its `TenantContext`), or None for a run without one."""
    session_id: str
    """`"<tenant>:<session>"` (seed 003): the request metadata's `session_id`, else the run id.
    The part before `:` is always the run's tenant (empty without one)."""
    run_id: str
    user_id: str | None = None
    workspace_id: str | None = None
    agent: str | None = None
    """The agent whose prompt is asked for; None when the whole run's config is asked."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """The run's request metadata (JSON values: Any)."""

    def __getitem__(self, key: str) -> Any:  # Any: the fields' types differ
        if key not in _FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(_FIELDS)

    def __len__(self) -> int:
        return len(_FIELDS)


class ConfigRequest(str):
    """What a config provider is asked: the run's session id, carrying the whole context.

    It *is* the session id (`"tenant:session"`), a `str`, because seed 003's providers are
    written `get_config(self, session_id: str)` and split the tenant out of it; newer
    providers read `request.tenant_id` and the other fields of
    [PromptContext][onionskin.tenancy.config.PromptContext] instead of parsing.
    """

    context: PromptContext

    def __new__(cls, context: PromptContext) -> ConfigRequest:
        """The session id of `context`, carrying `context`."""
        request = super().__new__(cls, context.session_id)
        object.__setattr__(request, "context", context)
        return request

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a ConfigRequest is immutable; cannot set {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (ConfigRequest, (self.context,))

    @property
    def tenant_id(self) -> str | None:
        """The run's tenant, or None."""
        return self.context.tenant_id

    @property
    def session_id(self) -> str:
        """The session id: the string itself."""
        return self.context.session_id

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.context.run_id

    @property
    def user_id(self) -> str | None:
        """The user who started the run, when known."""
        return self.context.user_id

    def get(self, key: str, default: Any = None) -> Any:  # Any: as Mapping.get
        """A field of the context by name, like `PromptContext.get`."""
        return self.context.get(key, default)


class ConfigProvider(Protocol):
    """Answers a run's config keys (seed 003's `IConfigProvider`); sync or async."""

    def priority(self) -> int:
        """Higher wins when two providers set the same key."""
        ...

    def get_config(
        self, request: ConfigRequest, /
    ) -> Awaitable[Mapping[str, Any]] | Mapping[str, Any]:
        """The config for this run: a mapping of keys (`{}` for none)."""
        ...


IConfigProvider = ConfigProvider
"""Seed 003's name for [ConfigProvider][onionskin.tenancy.config.ConfigProvider]."""


class PromptContributor(Protocol):
    """Adds text to the system prompt of a run's agents; sync or async."""

    def priority(self) -> int:
        """Higher comes first in the composed prompt."""
        ...

    def get_contribution(self, context: PromptContext, /) -> Awaitable[str] | str:
        """The text to add for `context.agent` ("" adds nothing)."""
        ...


class BasePromptContributor(ABC):
    """A prompt contributor with the default priority; implement `get_contribution`."""

    def priority(self) -> int:
        """`DEFAULT_PRIORITY` unless overridden."""
        return DEFAULT_PRIORITY

    @abstractmethod
    def get_contribution(self, context: PromptContext, /) -> Awaitable[str] | str:
        """The text to add for `context.agent` ("" adds nothing)."""


def check_priority(owner: str, value: object) -> int:
    """Return `value` if it is an int priority (not a bool), else raise `ConfigError`."""
    if type(value) is not int:
        raise ConfigError(f"{owner}: priority() must return an int, got {value!r}")
    return value


def _check_mapping(owner: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise ConfigError(
            f"{owner} must be a mapping with string keys (a JSON object), got {value!r}"
        )
    return value


def _merge_into(target: dict[str, Any], source: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in source.items():
        below = target.get(key)
        if isinstance(value, Mapping) and isinstance(below, dict):
            _merge_into(below, value)
        elif isinstance(value, Mapping):
            target[key] = _merge_into({}, value)
        else:
            # Copied so that a run changing its config never reaches a provider's cache.
            target[key] = copy.deepcopy(value)
    return target


def _ranked(layers: Iterable[tuple[int, T]], check: Callable[[str, T], object]) -> list[T]:
    """The layers' values, checked in the given order, then sorted highest priority first."""
    listed = list(layers)
    for index, (priority, value) in enumerate(listed):
        check_priority(f"layer {index}", priority)
        check(f"{index}", value)
    # sorted() is stable: equal priorities keep their registration order.
    return [value for _, value in sorted(listed, key=lambda layer: -layer[0])]


def _check_text(index: str, text: object) -> None:
    if not isinstance(text, str):
        raise ConfigError(f"prompt contribution {index} must be a str, got {text!r}")


def merge_configs(layers: Iterable[tuple[int, Mapping[str, Any]]]) -> dict[str, Any]:
    """Merge `(priority, config)` layers into a new dict, nothing shared with the inputs.

    The higher priority wins per key; where both sides hold a mapping they merge deeply.
    Among equal priorities the earlier layer wins. `None` is a value like any other: it
    overrides; a layer leaves a key to lower ones by omitting it.
    """
    merged: dict[str, Any] = {}
    for config in reversed(_ranked(layers, lambda i, c: _check_mapping(f"config layer {i}", c))):
        _merge_into(merged, config)
    return merged


def compose_prompt(contributions: Iterable[tuple[int, str]], *, separator: str = "\n\n") -> str:
    """Join `(priority, text)` contributions, highest priority first; empty ones are skipped.

    Among equal priorities the earlier contribution comes first. Each text is stripped.
    """
    texts = [text.strip() for text in _ranked(contributions, _check_text)]
    return separator.join(text for text in texts if text)


class StaticConfigProvider:
    """A config written in code: `config` for every run, `tenants[tenant_id]` merged over it.

    Args:
        config: keys every run gets.
        tenants: per-tenant keys, merged deeply over `config` for that tenant's runs.
        priority: defaults to 0, below seed 003's tenant provider (100): static values
            are usually the defaults a database overrides.
    """

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        tenants: Mapping[str, Mapping[str, Any]] | None = None,
        priority: int = 0,
    ) -> None:
        by_tenant = _check_mapping("StaticConfigProvider.tenants", tenants or {})
        # Snapshots: the caller's dicts may change later; this provider must not.
        self._config = merge_configs(
            [(0, _check_mapping("StaticConfigProvider.config", config or {}))]
        )
        self._tenants = {
            tenant: merge_configs(
                [
                    (1, _check_mapping(f"StaticConfigProvider.tenants[{tenant!r}]", values)),
                    (0, self._config),
                ]
            )
            for tenant, values in by_tenant.items()
        }
        self._priority = check_priority("StaticConfigProvider", priority)

    def priority(self) -> int:
        """The priority given at construction."""
        return self._priority

    def get_config(self, request: ConfigRequest, /) -> dict[str, Any]:
        """The tenant's merged config, or the common one (a copy)."""
        tenant = request.tenant_id
        found = self._tenants.get(tenant) if tenant is not None else None
        return copy.deepcopy(self._config if found is None else found)


class StaticPromptContributor(BasePromptContributor):
    """Prompt text written in code: `tenants[tenant_id]`, else `text`, for every agent."""

    def __init__(
        self,
        text: str = "",
        *,
        tenants: Mapping[str, str] | None = None,
        priority: int = DEFAULT_PRIORITY,
    ) -> None:
        pairs: list[tuple[object, object]] = [("*", text), *(tenants or {}).items()]
        for tenant, value in pairs:
            if not isinstance(tenant, str) or not isinstance(value, str):
                raise ConfigError(
                    f"StaticPromptContributor takes str texts by tenant id; got {value!r} "
                    f"for {tenant!r}"
                )
        self._text = text
        self._tenants: dict[str, str] = dict(tenants or {})
        self._priority = check_priority("StaticPromptContributor", priority)

    def priority(self) -> int:
        """The priority given at construction."""
        return self._priority

    def get_contribution(self, context: PromptContext, /) -> str:
        """The tenant's text, or the common one."""
        tenant = context.tenant_id
        return self._tenants.get(tenant, self._text) if tenant is not None else self._text
