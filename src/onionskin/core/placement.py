"""Where a middleware sits in its stack, and what it promises: its *stack contract*.

A middleware declares its contract with a `stack_contract` attribute (class or instance),
or is wrapped with [place][onionskin.core.placement.place] when it is registered:

```python
orchestrator.use(place(AuditMiddleware(), position="outermost", mandatory=True))
orchestrator.use(place(CacheMiddleware(), before="RateLimiterMiddleware", fail_open=True))
```

- `position`: `"outermost"` or `"innermost"` moves a middleware ahead of (or behind) the
  ones that declare none; several keep their registration order. `"capture"` is reserved
  for message capture, inside even the innermost: it records what the model really saw.
- `before` / `after`: names of middleware this one must sit outside of (`before`: its
  `before_*` hooks run earlier) or inside of. Names are a contract's `name`, else the class
  name (`"TenantMiddleware"`), else a function's `__name__`. A declaration moves a
  middleware only as far as it must: `after="Audit"` keeps it where it was registered if
  that already is inside `Audit`. A name that matches nothing,
  or declarations that contradict each other (a cycle), fail the build with `ConfigError`.
- `mandatory`: its `after_pipeline` hook sees the end of every completed run, also one that
  another layer short-circuited or stopped with `StopProcessing`, and its `on_error` hook
  every failed one (for audit).
- `fail_open`: an unexpected error inside its own hooks is logged and the call goes on as
  if the layer were absent. A deliberate refusal (`GuardError`, `TenantError`,
  `AuthenticationError`) and `StopProcessing` still apply. The default is fail-closed: its
  error fails the call.

The order is resolved when the stack is built (on the first run after a change), not per
call: declarations cost nothing once the chain is folded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from onionskin.core.errors import ConfigError

Position: TypeAlias = Literal["outermost", "innermost", "capture"]
_RANKS: dict[Position | None, int] = {"outermost": 0, None: 1, "innermost": 2, "capture": 3}


def _names(owner: str, value: object) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else value
    if not isinstance(names, Iterable) or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"{owner} must be a middleware name or a list of names, got {value!r}")
    return tuple(names)


@dataclass(frozen=True, slots=True, kw_only=True)
class StackContract:
    """Where a middleware sits and what it promises; see the module docs."""

    name: str | None = None
    """The name others refer to it by; default: its class (or function) name."""
    position: Position | None = None
    """`"outermost"`, `"innermost"`, or None to keep its registration order."""
    before: str | Sequence[str] = ()
    """Middleware it must sit outside of: a name or several (kept as a tuple)."""
    after: str | Sequence[str] = ()
    """Middleware it must sit inside of: a name or several (kept as a tuple)."""
    mandatory: bool = False
    """Its `after_pipeline` and `on_error` hooks see the end of every run."""
    fail_open: bool = False
    """Its own unexpected errors are logged and skipped instead of failing the call."""

    def __post_init__(self) -> None:
        name: object = self.name  # object: contracts may come from untyped plugins
        if name is not None and (not isinstance(name, str) or not name):
            raise ConfigError(f"StackContract.name must be a non-empty string, got {self.name!r}")
        if self.position not in _RANKS:
            raise ConfigError(
                "StackContract.position must be 'outermost', 'innermost' or None, got "
                f"{self.position!r}"
            )
        # frozen: normalise a single name or a list once, here
        object.__setattr__(self, "before", _names("StackContract.before", self.before))
        object.__setattr__(self, "after", _names("StackContract.after", self.after))
        for flag in ("mandatory", "fail_open"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"StackContract.{flag} must be a bool")


DEFAULT_CONTRACT = StackContract()


@dataclass(frozen=True, slots=True)
class Placed:
    """A middleware registered with a contract of the caller's choosing (see `place`)."""

    middleware: object
    contract: StackContract = field(default=DEFAULT_CONTRACT)


def place(
    middleware: object,
    *,
    name: str | None = None,
    position: Position | None = None,
    before: str | Sequence[str] = (),
    after: str | Sequence[str] = (),
    mandatory: bool = False,
    fail_open: bool = False,
) -> Placed:
    """`middleware` with a stack contract, for `use()` or `Orchestrator(middleware=[...])`."""
    if isinstance(middleware, Placed):
        raise ConfigError("place() got a middleware that is placed already; place it once")
    contract = StackContract(
        name=name,
        position=position,
        before=before,
        after=after,
        mandatory=mandatory,
        fail_open=fail_open,
    )
    return Placed(middleware, contract)


def contract_of(middleware: object) -> StackContract:
    """The contract `middleware` declares (its `stack_contract`), or the default."""
    declared = getattr(middleware, "stack_contract", None)
    if declared is None:
        return DEFAULT_CONTRACT
    if not isinstance(declared, StackContract):
        raise ConfigError(
            f"{middleware!r}.stack_contract must be a StackContract, got {declared!r}"
        )
    return declared


def middleware_name(middleware: object, contract: StackContract = DEFAULT_CONTRACT) -> str:
    """The name `before` / `after` refer to `middleware` by."""
    if contract.name is not None:
        return contract.name
    function_name = getattr(middleware, "__name__", None)
    if isinstance(function_name, str) and not isinstance(middleware, type):
        return function_name
    return type(middleware).__name__


def resolve_order(items: Sequence[tuple[str, StackContract]]) -> list[int]:
    """Indices of `items` (name, contract; registration order) in their effective order.

    A stable topological sort: every `before` / `after` declaration is an edge; among the
    middleware free to go next, the lowest position rank, then the earliest registered,
    goes first. Hand-written: graphlib's sorter gives no control over which ready node
    comes first, and the registration order is the contract for everything undeclared.
    """
    by_name: dict[str, list[int]] = {}
    for index, (name, _) in enumerate(items):
        by_name.setdefault(name, []).append(index)
    inside: list[set[int]] = [set() for _ in items]  # edges: outer -> the ones it encloses
    for index, (name, contract) in enumerate(items):
        for target, outer in [(t, True) for t in contract.before] + [
            (t, False) for t in contract.after
        ]:
            found = by_name.get(target)
            if not found:
                known = ", ".join(sorted(by_name)) or "none"
                relation = "before" if outer else "after"
                raise ConfigError(
                    f"middleware {name!r} must go {relation} {target!r}, but no middleware of "
                    f"that name is in the stack (names: {known})"
                )
            for other in found:
                if other != index:
                    (inside[index] if outer else inside[other]).add(other if outer else index)
    return _stable_sort(items, inside)


def _stable_sort(items: Sequence[tuple[str, StackContract]], inside: list[set[int]]) -> list[int]:
    waiting = [0] * len(items)
    for enclosed in inside:
        for other in enclosed:
            waiting[other] += 1
    ready = [i for i, count in enumerate(waiting) if count == 0]
    order: list[int] = []
    while ready:
        ready.sort(key=lambda i: (_RANKS[items[i][1].position], i))
        index = ready.pop(0)
        order.append(index)
        for other in inside[index]:
            waiting[other] -= 1
            if waiting[other] == 0:
                ready.append(other)
    if len(order) < len(items):
        stuck = [items[i][0] for i in range(len(items)) if i not in set(order)]
        raise ConfigError(
            "middleware placements contradict each other (a cycle among "
            f"{', '.join(map(repr, stuck))}): check their before= and after= declarations"
        )
    return order
