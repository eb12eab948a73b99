"""`OpenAIModel`: the OpenAI chat completions API, through the official `openai` SDK.

One class serves OpenAI and every OpenAI-compatible server (vLLM, Ollama, LM Studio, a
LiteLLM proxy): give its `base_url` (STYLE: a compatible vendor is configuration, not a
class). The SDK's own retries are off: `RetryMiddleware` owns retrying, and gets the wait a
provider asks for through `ModelHTTPError.retry_after`. Request settings are sent as they
are (`temperature`, `max_tokens`, `top_p`, `stop`, `seed`, or a server's own extras).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from decimal import Decimal

try:
    import httpx2
    import openai
except ImportError as error:  # pragma: no cover - the test extra installs it; see test_imports
    raise ImportError(
        'OpenAIModel needs the openai SDK: pip install "onionskin[openai]"'
    ) from error

from onionskin.core.calls import ModelRequest, ModelResponse
from onionskin.core.clock import SYSTEM_CLOCK, Clock
from onionskin.core.errors import ConfigError, ModelError
from onionskin.runtime.models._model_options import check_base_url, check_options
from onionskin.runtime.models._openai_messages import (
    PROVIDER,
    RESERVED_SETTINGS,
    wire_messages,
    wire_tools,
)
from onionskin.runtime.models._openai_replies import ChunkAssembler, completion_response
from onionskin.runtime.models._sdk_model import SdkModel
from onionskin.runtime.models._table_cost import TableCost
from onionskin.runtime.models._wire import passed_settings

NO_KEY = "no-key"
"""The API key sent to a base_url server when none is configured (local servers need none)."""


class OpenAIModel(SdkModel):
    """A model served through the OpenAI chat completions API (or a compatible server).

    Args:
        name: the model, as the server names it (`"gpt-4o-mini"`, `"llama3.1:8b"`).
        base_url: an OpenAI-compatible server (`"http://localhost:11434/v1"`); OpenAI's API
            by default. A server here needs no API key.
        api_key: the key; `OPENAI_API_KEY` by default.
        client: a configured `openai.AsyncOpenAI` to use instead (then no base_url or
            api_key); its retries are turned off.
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
        client: openai.AsyncOpenAI | None = None,
        timeout: float | None = None,
        price_provider: str = PROVIDER,
        input_price_per_mtok: Decimal | int | str | None = None,
        output_price_per_mtok: Decimal | int | str | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        owner = "OpenAIModel"
        check_options(owner, name, api_key, timeout)
        self.base_url = check_base_url(f"{owner}.base_url", base_url)
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
            if not isinstance(client, openai.AsyncOpenAI):
                raise ConfigError(f"{owner}.client must be an openai.AsyncOpenAI, got {client!r}")
            if base_url is not None or api_key is not None or timeout is not None:
                raise ConfigError(f"{owner}: configure the client, or base_url/api_key/timeout")
            self._client = client.with_options(max_retries=0)
        else:
            key = api_key or os.environ.get("OPENAI_API_KEY") or (NO_KEY if base_url else None)
            if key is None:
                raise ConfigError(
                    f"{owner} {name!r} needs an API key: set OPENAI_API_KEY, pass api_key=..., "
                    "or give the base_url of a server that needs none"
                )
            self._client = openai.AsyncOpenAI(
                api_key=key,
                base_url=base_url,
                max_retries=0,  # RetryMiddleware retries, on the injected clock
                timeout=openai.NOT_GIVEN if timeout is None else timeout,
            )

    async def request(self, request: ModelRequest) -> ModelResponse:
        """Answer `request` with one chat completion."""
        messages = wire_messages(self._name, request.messages)
        tools = wire_tools(request.tools)
        settings = passed_settings(PROVIDER, request.settings, RESERVED_SETTINGS)
        try:
            completion = await self._client.chat.completions.create(
                model=self._name,
                messages=messages,
                tools=tools or openai.omit,
                stream=False,
                extra_body=settings,
            )
        except (openai.OpenAIError, httpx2.TransportError) as error:
            raise self._error(error) from error
        return completion_response(self._name, completion)

    async def stream(self, request: ModelRequest) -> AsyncIterator[str | ModelResponse]:
        """Answer `request` as text deltas as they arrive, then the whole response with usage."""
        messages = wire_messages(self._name, request.messages)
        tools = wire_tools(request.tools)
        settings = passed_settings(PROVIDER, request.settings, RESERVED_SETTINGS)
        assembler = ChunkAssembler(self._name)
        try:
            chunks = await self._client.chat.completions.create(
                model=self._name,
                messages=messages,
                tools=tools or openai.omit,
                stream=True,
                stream_options={"include_usage": True},
                extra_body=settings,
            )
            async with chunks:
                async for chunk in chunks:
                    if text := assembler.add(chunk):
                        yield text
        except (openai.OpenAIError, httpx2.TransportError) as error:
            # The SDK lets transport errors met while streaming through unwrapped.
            raise self._error(error) from error
        yield assembler.response()

    def _error(self, error: Exception) -> ModelError:
        if isinstance(error, openai.APIStatusError):
            return self._sdk_error(
                error,
                status=error.status_code,
                unanswered=False,
                timed_out=False,
                detail=error.message,
                headers=error.response.headers,
            )
        return self._sdk_error(
            error,
            status=None,
            unanswered=isinstance(error, openai.APIConnectionError | httpx2.TransportError),
            timed_out=isinstance(error, openai.APITimeoutError | httpx2.TimeoutException),
            detail=str(error),
        )
