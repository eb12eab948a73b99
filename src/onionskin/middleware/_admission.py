"""One admission for a rate limiter and the budget layer just inside it (issue: one round trip).

When both guards keep their state on one Redis, `GuardConfig` links them with `fuse`: the
limiter works out its charges as always but, instead of taking them itself, leaves them for
this call in a `Handoff` (a context variable, so per call, never on `self`). The budget layer
takes them together with its reservation in one store operation
([RedisAdmissionStore.admit][onionskin.stores.redis_admission.RedisAdmissionStore.admit]),
which admits both or changes nothing; when it reserves nothing for the call (no budget line,
an unpriced tool), it takes them alone, through the limiter, before the call runs.

Each guard keeps its public behaviour: the limiter still waits up to `max_wait` and raises
`RateLimitExceededError(key, retry_after)`, and it still answers first (its refusal wins
when both would refuse); the budget still raises, falls back or asks for approval, and
settles or releases on every exit. Each keeps its own failure policy: a store failure is
the limiter's to fail closed first, then the budget's. One difference, by design: a call
its budget refuses takes no tokens, since nothing is changed unless both admit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from onionskin.core.errors import ConfigError, StoreError
from onionskin.stores.budget import BudgetLine, BudgetStore, Refusal
from onionskin.stores.rate_limit import Admission, Charge, RateLimitStore

if TYPE_CHECKING:
    from onionskin.middleware.budget import BudgetMiddleware
    from onionskin.middleware.rate_limit import RateLimiterMiddleware

T = TypeVar("T")

Attempt = Callable[[], Awaitable[Admission]]
"""One try at the joint admission, answering the limiter's part of it."""
LimiterAdmit = Callable[[Sequence[Charge], Attempt | None], Awaitable[Admission]]
"""The limiter's admission loop: asks (its store, or the attempt), waits, refuses, fails."""
Shelter = Callable[[str, Awaitable[T]], Awaitable[T]]
"""The budget's way to see a reservation through a cancellation (then release it by id)."""


class AdmissionStore(Protocol):
    """A store that takes rate-limit charges and makes a budget reservation in one step."""

    @property
    def limits(self) -> RateLimitStore:
        """The same buckets, for the limiter's other operations."""
        ...

    @property
    def budget(self) -> BudgetStore:
        """The same budget lines, for the budget's other operations."""
        ...

    async def admit(
        self,
        charges: Sequence[Charge],
        reservation_id: str,
        lines: Sequence[BudgetLine],
        amount_micros: int,
        ttl: float,
    ) -> tuple[Admission, Refusal | None]:
        """Take every charge and hold the amount on every line, or change nothing.

        Returns the limiter's answer (refused: nothing was changed, the budget not even
        checked) and, when the limiter admits, the budget's refusal (then nothing was
        changed either) or None when both were committed.
        """
        ...


@dataclass(slots=True, eq=False)
class Handoff:
    """The limiter's charges for one call, left for the budget layer to take."""

    budget: object
    """The budget layer meant to take them: any other leaves them alone."""
    charges: Sequence[Charge]
    admit: LimiterAdmit
    taken: Admission | None = None
    """How they were taken (`allowed`, or the limiter's fail-open answer); None: not yet."""

    async def take_alone(self) -> None:
        """Take the charges through the limiter alone, as if it stood by itself."""
        if self.taken is None:
            self.taken = await self.admit(self.charges, None)

    async def reserve(
        self,
        store: AdmissionStore,
        shelter: Shelter[tuple[Admission, Refusal | None]],
        reservation: tuple[str, Sequence[BudgetLine], int, float],
    ) -> Refusal | None:
        """Take the charges and make `reservation` (id, lines, micros, ttl) in one step.

        The limiter's loop asks, waits and refuses as it always does. Returns the budget's
        refusal (nothing taken) or None (both committed).

        Raises:
            StoreError: when the store failed and the limiter fails open: the budget's
                policy decides next (a fail-closed limiter raised `GuardStoreError`).
        """
        refusal: Refusal | None = None
        failure: StoreError | None = None

        async def attempt() -> Admission:
            nonlocal refusal, failure
            try:
                admission, refusal = await shelter(reservation[0], self._both(store, reservation))
            except StoreError as error:
                failure = error
                raise
            return admission

        admission = await self.admit(self.charges, attempt)
        if failure is not None:
            self.taken = admission  # the limiter's fail-open answer: nothing to reconcile
            raise failure
        return refusal

    async def _both(
        self, store: AdmissionStore, reservation: tuple[str, Sequence[BudgetLine], int, float]
    ) -> tuple[Admission, Refusal | None]:
        # Marked here, inside what `shelter` sees through: a call cancelled while the store
        # answered still learns that its tokens were taken (the limiter refunds token limits).
        admission, refusal = await store.admit(self.charges, *reservation)
        if admission.allowed and refusal is None:
            self.taken = admission
        return admission, refusal


PENDING: ContextVar[Handoff | None] = ContextVar("onionskin_admission_handoff", default=None)
"""The handoff of the call being admitted, set by the limiter around its `next`."""


def pending_for(budget: object) -> Handoff | None:
    """The current call's handoff if `budget` is to take it and nobody has yet."""
    handoff = PENDING.get()
    if handoff is None or handoff.taken is not None or handoff.budget is not budget:
        return None
    return handoff


def fuse(limiter: RateLimiterMiddleware, budget: BudgetMiddleware, store: AdmissionStore) -> None:
    """Have `limiter` leave its charges to `budget`, which admits both through `store`.

    Only for a budget layer directly inside the limiter (as `GuardConfig` builds them), both
    keeping their state where `store` does; both are freshly built and not yet shared.

    Raises:
        ConfigError: when either guard keeps its state somewhere else than `store`.
    """
    if limiter.store is not store.limits or budget.store is not store.budget:
        raise ConfigError(
            "fuse() needs the limiter on store.limits and the budget on store.budget, so that "
            "one admission sees the same buckets and budget lines as each guard"
        )
    # Private fields, set once here rather than through public constructor options: only
    # GuardConfig, which knows the two are adjacent, may link them.
    limiter._defer_to = budget
    budget._joint = store
