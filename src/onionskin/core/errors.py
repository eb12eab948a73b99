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
│   ├── GuardTimeoutError
│   └── InvalidInputError
├── StoreError                  a store could not read or write
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

from typing import Any


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
    """A rate limit was exceeded."""


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
    """A budget would be exceeded by the call."""


class GuardTimeoutError(GuardError):
    """A call took longer than its timeout."""


class InvalidInputError(GuardError):
    """A call's input or output failed validation."""


class StoreError(OnionskinError):
    """A store could not read or write."""


class ModelError(OnionskinError):
    """The model misbehaved or could not be reached."""


class ModelHTTPError(ModelError):
    """The model provider answered with an HTTP error."""


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
