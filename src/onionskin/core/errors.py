"""Every error onionskin raises, under one root, and the one signal that is not an error.

```
OnionskinError
├── ConfigError                 developer misuse, raised at construction
│   └── PromptVariableError     an agent's instructions name a state key that is missing
├── TenantError                 missing, malformed or conflicting tenant
├── GuardError                  a guard refused the call
│   ├── RateLimitExceededError
│   ├── CircuitOpenError
│   ├── BudgetExceededError
│   │   └── ApprovalRequiredError   over budget: the call waits for an operator
│   ├── GuardTimeoutError
│   ├── CallLimitExceededError
│   ├── HallucinationError      the model or a tool asserted what no source supports
│   └── InvalidInputError       with `errors`: field paths and messages
├── StoreError                  a store could not read or write
│   ├── GuardStoreError         a fail-closed guard's store is down: the call was refused
│   ├── ApprovalNotFoundError   no such approval request for this tenant
│   └── ApprovalDecidedError    the approval request was decided already
├── ModelError                  the model misbehaved or could not be reached
│   ├── ModelHTTPError
│   └── EmptyModelResponseError neither text nor tool calls
├── AgentError                  an agent could not finish its turn
│   └── MaxStepsExceededError
├── ToolError                   a tool is misconfigured or failed
└── AuthenticationError

StopProcessing                  a signal: ends the run as *completed* (not an error)
```

Errors whose ``__init__`` takes more than a message define ``__reduce__`` so they survive
pickling (worker processes, the trace store).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def _rebuild(cls: type[BaseException], args: tuple[Any, ...], fields: dict[str, Any]) -> Any:
    """Unpickle an error whose keyword-only fields `args` alone cannot carry."""
    return cls(*args, **fields)


class OnionskinError(Exception):
    """Base class of every error onionskin raises."""


class ConfigError(OnionskinError):
    """A middleware, agent or tool was built with a bad value; raised at construction."""


class PromptVariableError(ConfigError):
    """An agent's instructions name a `{var}` that the run's state does not hold."""

    def __init__(self, key: str, agent: str) -> None:
        self.key = key
        self.agent = agent
        super().__init__(
            f"agent {agent!r}: its instructions use {{{key}}} but the run's state has no key "
            f"{key!r}; set context.state[{key!r}] before the agent runs (for example in a "
            "before_agent hook or through run(..., state=...)), or escape the braces as {{ }}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.key, self.agent))


class TenantError(OnionskinError):
    """The tenant is missing, malformed or conflicting."""


class GuardError(OnionskinError):
    """A guard refused a call."""


class RateLimitExceededError(GuardError):
    """A rate limit refused the call; it would be admitted after `retry_after` seconds."""

    def __init__(self, key: str, retry_after: float) -> None:
        self.guard = "rate_limiter"
        self.key = key
        self.retry_after = retry_after
        super().__init__(
            f"rate limit {key!r} exceeded; retry in {retry_after:.2f} s, or raise the limit's "
            "rate or burst"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.key, self.retry_after))


class CircuitOpenError(GuardError):
    """A circuit breaker is open and rejects calls until `retry_after` seconds have passed."""

    def __init__(self, key: str, retry_after: float) -> None:
        self.guard = "circuit_breaker"
        self.key = key
        self.retry_after = retry_after
        super().__init__(
            f"circuit {key!r} is open after repeated failures; calls are refused for "
            f"{retry_after:.1f} s more, then one probe is let through"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.key, self.retry_after))


class BudgetExceededError(GuardError):
    """A budget would be exceeded by the call (seed 000: `BudgetExceededError(tenant_id)`).

    `scope` is which budget refused (`"call"`, `"run"`, `"session"`, `"tenant"`), `limit`,
    `spent` and `requested` are USD amounts when known.
    """

    def __init__(
        self,
        tenant_id: str | None = None,
        *,
        scope: str = "tenant",
        key: str | None = None,
        limit: Decimal | None = None,
        spent: Decimal | None = None,
        requested: Decimal | None = None,
    ) -> None:
        self.guard = "budget"
        self.tenant_id = tenant_id
        self.scope = scope
        self.key = key
        self.limit = limit
        self.spent = spent
        self.requested = requested
        who = f" of tenant {tenant_id!r}" if tenant_id else ""
        detail = ""
        if limit is not None:
            detail = f": limit ${limit}"
            if spent is not None:
                detail += f", spent ${spent}"
            if requested is not None:
                detail += f", this call needs up to ${requested}"
        super().__init__(
            f"the {scope} budget{who} would be exceeded{detail}; raise the budget, wait for "
            "the next period, or route the call to a cheaper model"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.tenant_id,), self._fields()))

    def _fields(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "key": self.key,
            "limit": self.limit,
            "spent": self.spent,
            "requested": self.requested,
        }


class ApprovalRequiredError(BudgetExceededError):
    """The tenant's budget is spent and the call waits in the approval queue."""

    def __init__(
        self,
        tenant_id: str | None = None,
        *,
        approval_id: str,
        scope: str = "tenant",
        key: str | None = None,
        limit: Decimal | None = None,
        spent: Decimal | None = None,
        requested: Decimal | None = None,
    ) -> None:
        super().__init__(
            tenant_id, scope=scope, key=key, limit=limit, spent=spent, requested=requested
        )
        self.approval_id = approval_id
        who = f" of tenant {tenant_id!r}" if tenant_id else ""
        amounts = "" if limit is None or spent is None else f" (${spent} of ${limit})"
        self.args = (
            f"the {scope} budget{who} is spent{amounts}; the call waits for approval request "
            f"{approval_id!r}: once an operator approves it, run again with the same run_id",
        )

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "approval_id": self.approval_id}


class GuardTimeoutError(GuardError):
    """A call took longer than its timeout and was cancelled."""

    def __init__(self, target: str, timeout: float) -> None:
        self.guard = "timeout"
        self.target = target
        self.timeout = timeout
        super().__init__(
            f"{target} took longer than {timeout:g} s and was cancelled; raise the timeout "
            "or make the call faster"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.target, self.timeout))


class CallLimitExceededError(GuardError):
    """A run made more model or tool calls than its limit allows."""

    def __init__(self, kind: str, limit: int) -> None:
        self.guard = "call_limit"
        self.kind = kind
        self.limit = limit
        super().__init__(
            f"the run reached its limit of {limit} {kind} calls; raise the limit or check "
            "why the agent keeps calling"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.kind, self.limit))


class HallucinationError(GuardError):
    """A tool call or an answer asserted something that none of its sources support.

    `kind` says what was wrong (`"unknown_tool"`, `"invalid_arguments"`,
    `"unsupported_value"`); `values` lists the unsupported values, if any.
    """

    def __init__(self, message: str, *, kind: str, values: tuple[str, ...] = ()) -> None:
        self.guard = "hallucination"
        self.kind = kind
        self.values = values
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (str(self),), {"kind": self.kind, "values": self.values}))


class InvalidInputError(GuardError):
    """A call's input or output failed validation.

    `errors` holds one `(path, message)` pair per problem; the path is dotted
    (`"address.zip"`, `"items.2.qty"`), empty for the value as a whole.
    """

    def __init__(self, message: str, *, errors: tuple[tuple[str, str], ...] = ()) -> None:
        self.errors = errors
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (str(self),), {"errors": self.errors}))


class StoreError(OnionskinError):
    """A store could not read or write."""


class GuardStoreError(StoreError):
    """A guard's store could not be reached and the guard fails closed: the call was refused."""

    def __init__(self, guard: str, cause: str) -> None:
        self.guard = guard
        self.cause = cause
        super().__init__(
            f"{guard}: its store failed ({cause}); the guard fails closed, so the call was "
            f"refused. Bring the store back, or declare fail_open=True in its config to let "
            "calls through while the store is down"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.guard, self.cause))


class ApprovalNotFoundError(StoreError):
    """No such approval request for this tenant (it may exist for another: not revealed)."""

    def __init__(self, approval_id: str, tenant_id: str | None) -> None:
        self.approval_id = approval_id
        self.tenant_id = tenant_id
        super().__init__(
            f"no approval request {approval_id!r} for tenant {tenant_id!r}; list the "
            "tenant's requests to find its ids"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.approval_id, self.tenant_id))


class ApprovalDecidedError(StoreError):
    """The approval request was already decided: a request is decided exactly once."""

    def __init__(self, approval_id: str, status: str) -> None:
        self.approval_id = approval_id
        self.status = status
        super().__init__(
            f"approval request {approval_id!r} was already {status}; a request is decided "
            "once: submit a new one to ask again"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.approval_id, self.status))


class ModelError(OnionskinError):
    """The model misbehaved or could not be reached."""


class ModelHTTPError(ModelError):
    """The model provider answered with an HTTP error.

    `status_code` is the HTTP status; `retry_after` the seconds the provider asked to wait
    (its `Retry-After` header), when it said.
    """

    def __init__(
        self, message: str, *, status_code: int | None = None, retry_after: float | None = None
    ) -> None:
        self.status_code = status_code
        self.retry_after = retry_after
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        fields = {"status_code": self.status_code, "retry_after": self.retry_after}
        return (_rebuild, (type(self), (str(self),), fields))


class EmptyModelResponseError(ModelError):
    """The model answered with neither text nor tool calls."""

    def __init__(self, agent: str, model: str) -> None:
        self.agent = agent
        self.model = model
        super().__init__(
            f"agent {agent!r}: model {model!r} answered with neither text nor tool calls; "
            "check the model's script or its provider's response"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.agent, self.model))


class AgentError(OnionskinError):
    """An agent could not finish its turn."""


class MaxStepsExceededError(AgentError):
    """An agent used all its model calls without giving a final answer."""

    def __init__(self, agent: str, max_steps: int) -> None:
        self.agent = agent
        self.max_steps = max_steps
        super().__init__(
            f"agent {agent!r} made {max_steps} model calls without a final answer; "
            "raise Agent(max_steps=...) or check why the model keeps calling tools"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.agent, self.max_steps))


class ToolError(OnionskinError):
    """A tool is misconfigured or failed."""


class AuthenticationError(OnionskinError):
    """The caller could not be authenticated."""


class StopProcessing(BaseException):
    """End the run gracefully: it is marked *completed* and answers with `response`.

    Raise it from any hook, wrap, tool or model (seed 002's `before` for authentication, say).
    It derives from `BaseException`, like `asyncio.CancelledError`, so that an
    `except Exception` in a retry or audit layer does not swallow or retry it by accident.
    """

    def __init__(self, response: Any = None) -> None:
        # Any: a stop answers with whatever the caller's pipeline answers (text, a dict, ...).
        self.response = response
        super().__init__(response)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.response,))
