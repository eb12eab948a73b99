"""`TenantConfigMiddleware`: each run gets its tenant's config and prompt (seed 003).

At the start of a run, every config provider is asked with a
[ConfigRequest][onionskin.tenancy.config.ConfigRequest] (the run's session id
`"tenant:session"`, carrying tenant, user, run id and request metadata) and the answers are
merged by priority ([merge_configs][onionskin.tenancy.config.merge_configs]). The merged
config is kept in `context.guard_state["tenant_config"]`, readable anywhere in the run
through `current_tenant_config()`, not in `context.state`, whose keys belong to the
application's prompts. Prompt contributors are asked once per agent of the run, the first
time that agent calls its model; their text joins each model request's system message (the
agent's transcript, `AgentResult.messages`, keeps the agent's own instructions).

Recognised keys (any other key is kept for your own middleware to read):

- `model`: a name looked up in `models=`; model calls go to that model instead of the
  agent's. A name `models=` does not hold fails the run before any model is called.
- `settings`: provider settings merged over each request's settings. The tenant wins on a
  key the agent also sets: the agent's settings are the defaults for every tenant, the
  tenant's config is the more specific layer, and an operator capping `max_tokens` for
  one tenant must not be overruled by code.
- `budget_limit_usd`: the most one run of the tenant may cost, checked before each model
  call against what the run has spent (`BudgetExceededError`, scope "run"). A number or
  decimal string; for reservations across runs and workers use `BudgetMiddleware`.
- `limits`: `max_model_calls` and `max_tool_calls` per run, enforced here
  (`CallLimitExceededError`); `monthly_budget_usd`, which `CostMiddleware` applies to the
  tenant; and `rates`, the tenant's own rate (and burst) for `RateLimiterMiddleware`'s
  buckets by name. Checked when the run starts (`_tenant_limits.py`).

Register it after `TenantMiddleware` (which settles the run's tenant) and before
`ModelFallbackMiddleware` or `BudgetMiddleware`, which may send a call to another model
than the tenant's.

Over 200 lines: resolving, interpreting and applying a config are one flow, read together.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, TypeVar

from onionskin.core.calls import Model, ModelRequest, ModelResponse, ToolCall, ToolResult
from onionskin.core.context import RunContext, current_context, current_context_or_none
from onionskin.core.errors import (
    BudgetExceededError,
    CallLimitExceededError,
    ConfigError,
    TenantError,
)
from onionskin.core.messages import Message, TextPart
from onionskin.middleware._tenant_limits import NO_LIMITS, TenantLimits, parse_limits
from onionskin.tenancy.config import (
    ConfigProvider,
    ConfigRequest,
    PromptContext,
    PromptContributor,
    check_priority,
    compose_prompt,
    merge_configs,
)

T = TypeVar("T")

GUARD_STATE_KEY = "tenant_config"
"""Where a run's resolved tenant config lives in `RunContext.guard_state`."""

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class _Resolved:
    """A run's merged config and what the recognised keys mean."""

    values: Mapping[str, Any]
    model: Model | None
    settings: Mapping[str, Any]
    budget_limit_usd: Decimal | None
    limits: TenantLimits


@dataclass(slots=True, kw_only=True)
class _RunConfig:
    """Owned by one run: its config, and its composed prompt per agent once asked."""

    config: _Resolved
    context: PromptContext
    prompts: dict[str, str] = field(default_factory=dict)
    model_calls: int = 0
    tool_calls: int = 0


def current_tenant_config() -> Mapping[str, Any]:
    """The merged tenant config of the run in progress (read-only; `{}` if none resolved).

    Raises:
        OnionskinError: when called outside a run.
    """
    run = current_context().guard_state.get(GUARD_STATE_KEY)
    return run.config.values if isinstance(run, _RunConfig) else _EMPTY


def tenant_limits(ctx: RunContext | None) -> TenantLimits:
    """The checked `limits` of `ctx`'s tenant config; no limits outside a configured run.

    Read by the guards on every call: one dict lookup when the run has no tenant config.
    """
    if ctx is None:
        return NO_LIMITS
    run = ctx.guard_state.get(GUARD_STATE_KEY)
    return run.config.limits if isinstance(run, _RunConfig) else NO_LIMITS


async def _value(result: Awaitable[T] | T) -> T:
    """The value of a sync or async provider method."""
    if inspect.isawaitable(result):
        return await result
    return result


def _ranked(role: str, items: Iterable[Any], method: str) -> tuple[tuple[int, Any], ...]:
    """`(priority, item)` in registration order; priorities are read once, here.

    Any: providers and contributors are checked by shape here, not trusted by their type.
    """
    ranked = []
    for item in items:
        if not callable(getattr(item, method, None)) or not callable(
            getattr(item, "priority", None)
        ):
            raise ConfigError(
                f"TenantConfigMiddleware: {item!r} is not a {role}: it needs priority() and "
                f"{method}() methods"
            )
        ranked.append((check_priority(f"{role} {item!r}", item.priority()), item))
    return tuple(ranked)


def _check_models(models: object) -> Mapping[str, Model]:
    if models is None:
        return _EMPTY
    if not isinstance(models, Mapping) or not all(
        isinstance(name, str)
        and isinstance(getattr(model, "name", None), str)
        and callable(getattr(model, "request", None))
        for name, model in models.items()
    ):
        raise ConfigError(f"TenantConfigMiddleware.models must map names to models, got {models!r}")
    return MappingProxyType(dict(models))


def _session_id(ctx: RunContext) -> str:
    """`"tenant:session"`: a session the metadata names for another tenant is refused."""
    tenant = ctx.tenant_id or ""
    claimed = ctx.metadata.get("session_id")
    if claimed is None:
        return f"{tenant}:{ctx.run_id}"
    if not isinstance(claimed, str) or not claimed:
        raise TenantError(f"request metadata session_id must be a non-empty str, got {claimed!r}")
    if ":" not in claimed:
        return f"{tenant}:{claimed}"
    if claimed.partition(":")[0] != tenant:
        raise TenantError(
            f"the request's session_id {claimed!r} names another tenant than the run's "
            f"({tenant or 'none'!r}); refusing to load another tenant's config"
        )
    return claimed


def _budget(tenant: str | None, value: object) -> Decimal | None:
    if value is None:
        return None
    try:
        limit = Decimal(str(value)) if not isinstance(value, bool) else None
    except InvalidOperation:
        limit = None
    if limit is None or not limit.is_finite() or limit < 0:
        raise ConfigError(
            f"tenant {tenant!r}: config budget_limit_usd must be a number of USD >= 0, "
            f"got {value!r}"
        )
    return limit


class TenantConfigMiddleware:
    """Resolves each run's tenant config and prompt, and applies them to every model call.

    Args:
        providers: config providers, merged by `priority()` (read once, here).
        contributors: prompt contributors, joined highest priority first.
        models: the models a tenant config may name under `model`, by name.
    """

    def __init__(
        self,
        providers: Iterable[ConfigProvider] = (),
        contributors: Iterable[PromptContributor] = (),
        *,
        models: Mapping[str, Model] | None = None,
    ) -> None:
        self._providers = _ranked("config provider", providers, "get_config")
        self._contributors = _ranked("prompt contributor", contributors, "get_contribution")
        self.models = _check_models(models)

    async def before_pipeline(self, context: RunContext) -> None:
        """Resolve the run's config; a bad config fails the run before any model call."""
        context.guard_state[GUARD_STATE_KEY] = await self._resolve(context)

    async def _resolve(self, ctx: RunContext) -> _RunConfig:
        tenant = ctx.tenant
        base = PromptContext(
            tenant_id=ctx.tenant_id,
            session_id=_session_id(ctx),
            run_id=ctx.run_id,
            user_id=ctx.user_id,
            workspace_id=None if tenant is None else tenant.workspace_id,
            metadata=ctx.metadata,
        )
        request = ConfigRequest(base)
        layers = []
        for priority, provider in self._providers:
            config = await _value(provider.get_config(request))
            if not isinstance(config, Mapping):
                raise ConfigError(
                    f"config provider {provider!r} returned {type(config).__name__} for tenant "
                    f"{ctx.tenant_id!r}; get_config() must return a dict ({{}} for none)"
                )
            layers.append((priority, config))
        return _RunConfig(
            config=self._interpret(ctx.tenant_id, merge_configs(layers)), context=base
        )

    def _interpret(self, tenant: str | None, values: dict[str, Any]) -> _Resolved:
        name = values.get("model")
        model = None
        if name is not None:
            model = self.models.get(name) if isinstance(name, str) else None
            if model is None:
                known = ", ".join(repr(key) for key in sorted(self.models)) or "none"
                raise ConfigError(
                    f"tenant {tenant!r}: config names model {name!r}, which "
                    f"TenantConfigMiddleware(models=...) does not hold (known: {known}); add it "
                    "to models= or fix the tenant's config"
                )
        settings = values.get("settings")
        settings = {} if settings is None else settings
        if not isinstance(settings, Mapping) or not all(isinstance(key, str) for key in settings):
            raise ConfigError(
                f"tenant {tenant!r}: config settings must be a mapping of provider settings, "
                f"got {settings!r}"
            )
        return _Resolved(
            values=MappingProxyType(values),
            model=model,
            settings=settings,
            budget_limit_usd=_budget(tenant, values.get("budget_limit_usd")),
            limits=parse_limits(tenant, values.get("limits")),
        )

    async def _prompt(self, run: _RunConfig, agent: str | None) -> str:
        key = agent or ""
        text = run.prompts.get(key)
        if text is None:
            context = replace(run.context, agent=agent)
            parts = [
                (priority, await _value(contributor.get_contribution(context)))
                for priority, contributor in self._contributors
            ]
            text = run.prompts[key] = compose_prompt(parts)
        return text

    async def wrap_model_call(
        self, request: ModelRequest, next: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        """Send the call to the tenant's model, with its settings and prompt."""
        ctx = current_context_or_none()
        if ctx is None:
            return await next(request)
        run = await self._run_config(ctx)
        config = run.config
        limit = config.budget_limit_usd
        if limit is not None and ctx.total_cost >= limit:
            raise BudgetExceededError(ctx.tenant_id, scope="run", limit=limit, spent=ctx.total_cost)
        most = config.limits.max_model_calls
        if most is not None:
            if run.model_calls >= most:
                raise CallLimitExceededError("model", most)
            run.model_calls += 1
        prompt = await self._prompt(run, ctx.current_agent) if self._contributors else ""
        if config.model is not None:
            request = replace(request, model=config.model)
        if config.settings:
            request = replace(request, settings={**request.settings, **config.settings})
        if prompt:
            request = replace(request, messages=_with_system_text(request.messages, prompt))
        return await next(request)

    async def wrap_tool_call(
        self, call: ToolCall, next: Callable[[ToolCall], Awaitable[ToolResult]]
    ) -> ToolResult:
        """Count the tool call against the tenant's `limits.max_tool_calls` for the run."""
        ctx = current_context_or_none()
        if ctx is not None:
            run = await self._run_config(ctx)
            most = run.config.limits.max_tool_calls
            if most is not None:
                if run.tool_calls >= most:
                    raise CallLimitExceededError("tool", most)
                run.tool_calls += 1
        return await next(call)

    async def _run_config(self, ctx: RunContext) -> _RunConfig:
        run = ctx.guard_state.get(GUARD_STATE_KEY)
        if not isinstance(run, _RunConfig):
            # A stack that skipped before_pipeline (a nested run): resolve on first use.
            run = ctx.guard_state[GUARD_STATE_KEY] = await self._resolve(ctx)
        return run


def _with_system_text(messages: list[Message], text: str) -> list[Message]:
    """`messages` with `text` appended to the leading system message (created if missing)."""
    if messages and messages[0].role == "system":
        first = messages[0]
        return [Message("system", [*first.parts, TextPart(text)]), *messages[1:]]
    return [Message.system(text), *messages]
