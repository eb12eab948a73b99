"""What the SDK-backed models share: name, cost, closing, and turning SDK errors into ours.

The OpenAI and Anthropic adapters differ in their wire formats, not in these: one class
holds them so that a fix to error mapping or pricing reaches both.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from onionskin.core.clock import Clock
from onionskin.core.errors import ModelError
from onionskin.core.usage import Usage
from onionskin.runtime.models._provider_errors import connection_error, status_error
from onionskin.runtime.models._table_cost import TableCost


class SdkModel:
    """The base of a model on an official SDK's async client (set up by the subclass)."""

    provider: str
    """The provider's name, in errors and price lookups (`"openai"`)."""
    base_url: str | None
    _name: str
    _client: Any  # Any: the SDK's async client (AsyncOpenAI, AsyncAnthropic)
    _cost: TableCost
    _clock: Clock

    @property
    def name(self) -> str:
        """The model's name."""
        return self._name

    def cost(self, usage: Usage) -> Decimal:
        """What `usage` costs: from the offline price table, declared prices, or $0."""
        return self._cost(usage)

    async def aclose(self) -> None:
        """Close the HTTP connections of the client."""
        await self._client.close()

    def _sdk_error(
        self,
        error: Exception,
        *,
        status: int | None,
        unanswered: bool,
        timed_out: bool,
        detail: str,
        headers: Any = None,  # Any: the response's headers (an httpx2 Headers mapping)
    ) -> ModelError:
        """Our error for an SDK error: an HTTP answer (`status`), no answer, or other."""
        if status is not None:
            return status_error(
                provider=self.provider,
                model=self._name,
                status=status,
                detail=detail,
                headers=headers or {},
                now=self._clock.time(),
            )
        if unanswered:
            return connection_error(
                provider=self.provider,
                model=self._name,
                url=str(self._client.base_url),
                detail=str(error.__cause__ or error),
                timed_out=timed_out,
            )
        return ModelError(f"{self.provider} model {self._name!r} failed: {error}")

    def __repr__(self) -> str:
        where = f", base_url={self.base_url!r}" if self.base_url else ""
        return f"{type(self).__name__}({self._name!r}{where})"
