"""`CircuitBreakerMiddleware`: stop calling what keeps failing, then probe it (seed 001).

CLOSED counts consecutive failures; at `failure_threshold` the circuit turns OPEN and every
call is refused at once with `CircuitOpenError` carrying `retry_after`. After
`recovery_timeout` it turns HALF_OPEN and lets `half_open_max_calls` probes through: a
success closes it, a failure opens it again. One circuit per model and per tool (and per
tenant with `per="tenant_target"`). State lives in this process; the shared Redis store
comes with the guards issue's multi-process work.

Written here, not taken from a library: no maintained breaker is async with shared state
(pybreaker is Tornado-only when async, aiobreaker is unmaintained).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from onionskin.core.calls import ModelRequest, ModelResponse, ToolCall, ToolResult
from onionskin.core.clock import SYSTEM_CLOCK, Clock
from onionskin.core.context import current_context_or_none
from onionskin.core.errors import CircuitOpenError, ConfigError

State = Literal["closed", "open", "half_open"]
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitBreakerConfig:
    """When a circuit opens, for how long, and which errors count."""

    failure_threshold: int = 5
    """Consecutive failures that open the circuit."""
    recovery_timeout: float = 30.0
    """Seconds an open circuit refuses calls before it lets probes through."""
    half_open_max_calls: int = 1
    """Probes admitted at once while half open."""
    count: tuple[type[BaseException], ...] = (Exception,)
    """Exceptions that count as failures."""
    ignore: tuple[type[BaseException], ...] = ()
    """Exceptions that never count, even when they match `count`."""
    per: Literal["target", "tenant_target"] = "target"
    """One circuit per model/tool name, or one per tenant and name."""

    def __post_init__(self) -> None:
        for field, value in (
            ("failure_threshold", self.failure_threshold),
            ("half_open_max_calls", self.half_open_max_calls),
        ):
            if type(value) is not int or value < 1:
                raise ConfigError(
                    f"CircuitBreakerConfig.{field} must be an int >= 1, got {value!r}"
                )
        # Typed as object: configs also come from YAML and JSON, where the hints are no promise.
        timeout: object = self.recovery_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ConfigError(
                f"CircuitBreakerConfig.recovery_timeout must be seconds > 0, got {timeout!r}"
            )
        groups: tuple[tuple[str, tuple[object, ...]], ...] = (
            ("count", self.count),
            ("ignore", self.ignore),
        )
        for field, classes in groups:
            if not all(isinstance(c, type) and issubclass(c, BaseException) for c in classes):
                raise ConfigError(
                    f"CircuitBreakerConfig.{field} must be a tuple of exception classes"
                )
        per: object = self.per
        if per not in ("target", "tenant_target"):
            raise ConfigError(
                f"CircuitBreakerConfig.per must be 'target' or 'tenant_target', got {per!r}"
            )


class Circuit:
    """One circuit's state."""

    __slots__ = ("failures", "opened_at", "probes", "state")

    def __init__(self) -> None:
        self.state: State = "closed"
        self.failures = 0
        self.opened_at = 0.0
        self.probes = 0


class CircuitBreakerMiddleware:
    """Refuses calls to a model or tool that keeps failing, until it has had time to recover."""

    def __init__(self, config: CircuitBreakerConfig | None = None, *, clock: Clock = SYSTEM_CLOCK):
        if config is not None and not isinstance(config, CircuitBreakerConfig):
            raise ConfigError(f"config must be a CircuitBreakerConfig, got {config!r}")
        self.config = config or CircuitBreakerConfig()
        self.clock = clock
        self._circuits: dict[str, Circuit] = {}

    def state(self, key: str) -> State:
        """The state of circuit `key` (`"model:gpt-4o"`, `"tool:lookup"`, ...) right now."""
        circuit = self._circuits.get(key)
        if circuit is None:
            return "closed"
        if circuit.state == "open" and self._remaining(circuit) <= 0:
            return "half_open"
        return circuit.state

    def _key(self, kind: str, name: str) -> str:
        if self.config.per == "target":
            return f"{kind}:{name}"
        ctx = current_context_or_none()
        tenant = ctx.tenant_id if ctx is not None else None
        return f"{tenant or '-'}:{kind}:{name}"

    def _remaining(self, circuit: Circuit) -> float:
        return circuit.opened_at + self.config.recovery_timeout - self.clock.monotonic()

    def _admit(self, key: str) -> Circuit:
        circuit = self._circuits.get(key)
        if circuit is None:
            circuit = self._circuits[key] = Circuit()
        if circuit.state == "open":
            remaining = self._remaining(circuit)
            if remaining > 0:
                raise CircuitOpenError(key, remaining)
            circuit.state, circuit.probes = "half_open", 0
        if circuit.state == "half_open":
            if circuit.probes >= self.config.half_open_max_calls:
                raise CircuitOpenError(key, self.config.recovery_timeout)
            circuit.probes += 1
        return circuit

    def _record(self, circuit: Circuit, error: BaseException | None) -> None:
        config = self.config
        probing = circuit.state == "half_open"
        if probing:
            circuit.probes -= 1
        if error is None:
            circuit.state, circuit.failures = "closed", 0
            return
        if not isinstance(error, config.count) or isinstance(error, config.ignore):
            return  # not a failure of the callee (a cancellation, a refused input ...)
        circuit.failures += 1
        if probing or circuit.failures >= config.failure_threshold:
            circuit.state, circuit.opened_at = "open", self.clock.monotonic()

    async def _guard(self, key: str, next: Callable[[T], Awaitable[R]], call: T) -> R:
        circuit = self._admit(key)
        try:
            result = await next(call)
        except BaseException as error:
            self._record(circuit, error)
            raise
        self._record(circuit, None)
        return result

    async def wrap_model_call(
        self, request: ModelRequest, next: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        """Guard one model call."""
        return await self._guard(self._key("model", request.model.name), next, request)

    async def wrap_tool_call(
        self, call: ToolCall, next: Callable[[ToolCall], Awaitable[ToolResult]]
    ) -> ToolResult:
        """Guard one tool call."""
        return await self._guard(self._key("tool", call.tool_name), next, call)
