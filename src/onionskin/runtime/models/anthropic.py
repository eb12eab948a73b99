"""`AnthropicModel`: the Anthropic messages API, through the official `anthropic` SDK.

Every call streams, `request()` included: the SDK refuses a non-streamed request whose
`max_tokens` could take over ten minutes, and one code path reads both. The SDK's own
retries are off: `RetryMiddleware` owns retrying, and gets the wait the API asks for through
`ModelHTTPError.retry_after`. Settings: `max_tokens` (or `max_completion_tokens`,
`max_output_tokens`; else the `max_tokens` option), `stop` (sent as `stop_sequences`), and
the rest as they are (`temperature`, `top_p`, `top_k`, `metadata`, `thinking` ...).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from decimal import Decimal

try:
    import anthropic
    import httpx2
except ImportError as error:  # pragma: no cover - the test extra installs it; see test_imports
    raise ImportError(
        'AnthropicModel needs the anthropic SDK: pip install "onionskin[anthropic]"'
    ) from error

from onionskin.core.calls import ModelRequest, ModelResponse
from onionskin.core.clock import SYSTEM_CLOCK, Clock
from onionskin.core.errors import ConfigError, ModelError
from onionskin.pricing import request_max_tokens
from onionskin.runtime.models._anthropic_messages import (
    PROVIDER,
    wire_messages,
    wire_settings,
    wire_tools,
)
from onionskin.runtime.models._anthropic_replies import EventAssembler, stream_error_status
from onionskin.runtime.models._model_options import check_base_url, check_options
from onionskin.runtime.models._provider_errors import connection_error
from onionskin.runtime.models._sdk_model import SdkModel
from onionskin.runtime.models._table_cost import TableCost

NO_KEY = "no-key"
"""The API key sent to a base_url server when none is configured."""


class AnthropicModel(SdkModel):
    """A Claude model served through the Anthropic messages API.

    Args:
        name: the model (`"claude-haiku-4-5"`).
        base_url: another endpoint that speaks the messages API (a proxy); Anthropic's API
            by default.
        api_key: the key; by default the SDK's own lookup (`ANTHROPIC_API_KEY` ...).
        client: a configured `anthropic.AsyncAnthropic` to use instead (then no base_url or
            api_key); its retries are turned off.
        max_tokens: the output bound of a request whose settings name none (the API needs one).
        timeout: seconds before a request is given up (the SDK's default otherwise).
        price_provider: the provider whose prices the offline table applies.
        input_price_per_mtok: declared USD per million input tokens (with the output one),
            for a model the table does not price; unpriced models cost $0 (see `_table_cost`).
        output_price_per_mtok: declared USD per million output tokens.
        clock: reads the time for a Retry-After given as an HTTP date.
    """

    provider = PROVIDER

    def __init__(
        self,
        name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        client: anthropic.AsyncAnthropic | None = None,
        max_tokens: int = 4096,
        timeout: float | None = None,
        price_provider: str = PROVIDER,
        input_price_per_mtok: Decimal | int | str | None = None,
        output_price_per_mtok: Decimal | int | str | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        owner = "AnthropicModel"
        check_options(owner, name, api_key, timeout)
        self.base_url = check_base_url(f"{owner}.base_url", base_url)
        if type(max_tokens) is not int or max_tokens < 1:  # bool is an int: refuse it too
            raise ConfigError(f"{owner}.max_tokens must be an int >= 1, got {max_tokens!r}")
        self.max_tokens = max_tokens
        # Checked before the client is built: a refused option leaves nothing to close.
        self._cost = TableCost(
            name,
            owner=owner,
            provider=price_provider,
            local=base_url is not None,
            input_price_per_mtok=input_price_per_mtok,
            output_price_per_mtok=output_price_per_mtok,
        )
        self._name = name
        self._clock = clock
        if client is not None:
            if not isinstance(client, anthropic.AsyncAnthropic):
                raise ConfigError(
                    f"{owner}.client must be an anthropic.AsyncAnthropic, got {client!r}"
                )
            if base_url is not None or api_key is not None or timeout is not None:
                raise ConfigError(f"{owner}: configure the client, or base_url/api_key/timeout")
            self._client = client.with_options(max_retries=0)
        else:
            if api_key is None and base_url is not None:
                api_key = os.environ.get("ANTHROPIC_API_KEY") or NO_KEY
            self._client = anthropic.AsyncAnthropic(
                api_key=api_key,
                base_url=base_url,
                max_retries=0,  # RetryMiddleware retries, on the injected clock
                timeout=anthropic.NOT_GIVEN if timeout is None else timeout,
            )

    async def request(self, request: ModelRequest) -> ModelResponse:
        """Answer `request` in one piece (read from a stream: see the module docstring)."""
        response: ModelResponse | None = None
        async for item in self.stream(request):  # read to the end, so the stream closes
            if not isinstance(item, str):
                response = item
        if response is None:  # pragma: no cover - stream() always ends with a response
            raise ModelError(f"{PROVIDER} model {self._name!r} ended without a response")
        return response

    async def stream(self, request: ModelRequest) -> AsyncIterator[str | ModelResponse]:
        """Answer `request` as text deltas as they arrive, then the whole response with usage."""
        max_tokens = request_max_tokens(request, self.max_tokens)
        body = wire_settings(request.settings)
        system, messages = wire_messages(self._name, request.messages)
        tools = wire_tools(request.tools)
        assembler = EventAssembler(self._name)
        try:
            events = await self._client.messages.create(
                model=self._name,
                max_tokens=max_tokens,
                messages=messages,
                system=system or anthropic.omit,
                tools=tools or anthropic.omit,
                stream=True,
                extra_body=body,
            )
            async with events:
                async for event in events:
                    if text := assembler.add(event):
                        yield text
        except (anthropic.AnthropicError, httpx2.TransportError) as error:
            # The SDK lets transport errors met while streaming through unwrapped.
            raise self._error(error) from error
        if not assembler.finished:
            raise self._cut_short()
        yield assembler.response()

    def _cut_short(self) -> ModelError:
        return connection_error(
            provider=PROVIDER,
            model=self._name,
            url=str(self._client.base_url),
            detail="the stream ended before its message_stop event",
            timed_out=False,
        )

    def _error(self, error: Exception) -> ModelError:
        if isinstance(error, anthropic.APIStatusError):
            return self._sdk_error(
                error,
                status=stream_error_status(error.status_code, error.body),
                unanswered=False,
                timed_out=False,
                detail=error.message,
                headers=error.response.headers,
            )
        return self._sdk_error(
            error,
            status=None,
            unanswered=isinstance(error, anthropic.APIConnectionError | httpx2.TransportError),
            timed_out=isinstance(error, anthropic.APITimeoutError | httpx2.TimeoutException),
            detail=str(error),
        )
