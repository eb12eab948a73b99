"""What a guard does when its own store fails: fail closed (refuse) or fail open (let through).

Limits and budgets default to fail-closed (DEPENDENCIES lesson 3): a limit that silently
stops limiting while Redis is down is worse than an outage you can see. A fail-open guard
logs the outage once, not once per call, and logs again after the store came back and
failed anew.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TypeVar

from onionskin.core.errors import GuardStoreError, StoreError

T = TypeVar("T")

logger = logging.getLogger("onionskin.guards")


class StorePolicy:
    """Runs a guard's store operations under its failure policy.

    Guards on a hot path await the store themselves and call `succeeded` or `failed`:
    `run` wraps the operation in one more coroutine, which every admitted call would pay.
    """

    __slots__ = ("_outage_logged", "fail_open", "guard")

    def __init__(self, guard: str, *, fail_open: bool) -> None:
        self.guard = guard
        self.fail_open = fail_open
        self._outage_logged = False

    async def run(self, operation: Awaitable[T], *, when_open: T) -> T:
        """Await `operation`; on a `StoreError` raise `GuardStoreError` or return `when_open`."""
        try:
            result = await operation
        except StoreError as error:
            return self.failed(error, when_open=when_open)
        self._outage_logged = False
        return result

    def succeeded(self) -> None:
        """Note that the store answered: a later outage is logged again."""
        self._outage_logged = False

    def failed(self, error: StoreError, *, when_open: T) -> T:
        """Handle a store failure: raise `GuardStoreError` (fail closed) or return `when_open`.

        Raises:
            GuardStoreError: when the guard fails closed, chained to `error`.
        """
        if not self.fail_open:
            raise GuardStoreError(self.guard, str(error)) from error
        if not self._outage_logged:
            self._outage_logged = True
            logger.warning(
                "%s: store failed (%s); failing open, calls go through unguarded until it is back",
                self.guard,
                error,
            )
        return when_open
