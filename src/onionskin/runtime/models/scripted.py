"""A model that answers from a script: for tests, the demo and benchmarks; no network.

The script is a list of answers taken in order, or a function of the request. An answer is
text, one or more tool calls (`tool_call(...)`), a `Message` or a whole `ModelResponse`.
A list is shared by every run of the model: for concurrent runs use a function.
Its cost is free by default, at declared per-million-token prices, or, with `price_as`, at a
real model's prices from the offline price table (`onionskin.pricing`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from decimal import Decimal
from functools import partial
from typing import TypeAlias

from onionskin.core._layers import is_async_callable
from onionskin.core.calls import ModelRequest, ModelResponse
from onionskin.core.errors import ConfigError, ModelError
from onionskin.core.ids import new_id
from onionskin.core.messages import Message, Part, TextPart, ToolCallPart
from onionskin.core.usage import Usage
from onionskin.runtime.models._estimate import estimate_tokens

ScriptItem: TypeAlias = str | ToolCallPart | Sequence[ToolCallPart] | Message | ModelResponse
Script: TypeAlias = (
    Sequence[ScriptItem]
    | Callable[[ModelRequest], ScriptItem]
    | Callable[[ModelRequest], Awaitable[ScriptItem]]
)

_MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)


def tool_call(tool_name: str, /, **args: object) -> ToolCallPart:
    """A scripted answer that calls `tool_name` with `args`."""
    return ToolCallPart(tool_name=tool_name, args=args, call_id=f"call_{new_id()}")


def _price(field: str, value: Decimal | int | str) -> Decimal:
    try:
        price = Decimal(value)
    except (ArithmeticError, TypeError, ValueError) as error:
        raise ConfigError(f"ScriptedModel.{field} must be a number, got {value!r}") from error
    if not price.is_finite() or price < 0:
        raise ConfigError(f"ScriptedModel.{field} must be a finite price >= 0, got {value!r}")
    return price


def _message(item: ScriptItem, model: str) -> Message:
    if isinstance(item, str):
        return Message("assistant", [TextPart(item)])
    if isinstance(item, ToolCallPart):
        return Message("assistant", [item])
    if isinstance(item, Message):
        return item
    if isinstance(item, Sequence) and all(isinstance(part, ToolCallPart) for part in item):
        parts: list[Part] = [part for part in item if isinstance(part, ToolCallPart)]
        return Message("assistant", parts)
    raise ModelError(
        f"scripted model {model!r}: cannot answer with {type(item).__name__}; script text, "
        "tool_call(...), a list of tool calls, a Message or a ModelResponse"
    )


class ScriptedModel:
    """A scripted language model with deterministic token usage and optional prices."""

    def __init__(
        self,
        script: Script,
        *,
        name: str = "scripted",
        input_price_per_mtok: Decimal | int | str = 0,
        output_price_per_mtok: Decimal | int | str = 0,
        price_as: str | None = None,
        price_provider: str | None = None,
    ) -> None:
        if isinstance(script, str) or not (callable(script) or isinstance(script, Sequence)):
            raise ConfigError("ScriptedModel needs a list of answers or a function of the request")
        self._script = script
        self._async_script = callable(script) and is_async_callable(script)
        self._position = 0
        self._name = name
        self.input_price_per_mtok = _price("input_price_per_mtok", input_price_per_mtok)
        self.output_price_per_mtok = _price("output_price_per_mtok", output_price_per_mtok)
        self._free = not (self.input_price_per_mtok or self.output_price_per_mtok)
        self.price_as = price_as
        """Price usage like this model of the price table (`"gpt-4o-mini"`), if set."""
        self.price_provider = price_provider
        self._table_price: Callable[[Usage], Decimal] | None = None
        if price_as is not None:
            self._table_price = self._priced_as(price_as, price_provider)

    def _priced_as(self, price_as: object, provider: object) -> Callable[[Usage], Decimal]:
        if not isinstance(price_as, str) or not price_as:
            raise ConfigError(f"ScriptedModel.price_as must be a model name, got {price_as!r}")
        if provider is not None and not isinstance(provider, str):
            raise ConfigError(f"ScriptedModel.price_provider must be a str, got {provider!r}")
        if not self._free:
            raise ConfigError(
                "ScriptedModel.price_as takes its prices from the table: drop "
                "input_price_per_mtok and output_price_per_mtok, or drop price_as"
            )
        # Imported here: onionskin.pricing imports this package (the token estimate).
        from onionskin.pricing import check_priced, price_usage

        check_priced(price_as, provider=provider)
        self._free = False
        return partial(price_usage, price_as, provider=provider)

    @property
    def name(self) -> str:
        """The model's name."""
        return self._name

    async def _next_item(self, request: ModelRequest) -> ScriptItem:
        script = self._script
        if callable(script):
            item = script(request)
            if self._async_script:
                return await item  # type: ignore[no-any-return,misc]  # async: checked at init
            return item  # type: ignore[return-value]  # sync: checked at init
        if self._position >= len(script):
            raise ModelError(
                f"scripted model {self._name!r} has no answer left: its script held "
                f"{len(script)}; add answers or script a function"
            )
        item = script[self._position]
        self._position += 1
        return item

    async def request(self, request: ModelRequest) -> ModelResponse:
        """Answer with the script's next item."""
        item = await self._next_item(request)
        if isinstance(item, ModelResponse):
            return item
        message = _message(item, self._name)
        usage = Usage(
            input_tokens=estimate_tokens(request.messages),
            output_tokens=estimate_tokens((message,)) - 4,
        )
        return ModelResponse(message=message, usage=usage, model_name=self._name)

    async def stream(self, request: ModelRequest) -> AsyncIterator[str | ModelResponse]:
        """Answer with the script's next item, its text streamed word by word."""
        response = await self.request(request)
        words = response.message.text.split(" ")
        for index, word in enumerate(words):
            if word or index:
                yield word if index == 0 else " " + word
        yield response

    def cost(self, usage: Usage) -> Decimal:
        """The price of `usage`: from the price table with `price_as`, else per million tokens."""
        if self._free:
            return _ZERO
        if self._table_price is not None:
            return self._table_price(usage)
        total = (
            usage.input_tokens * self.input_price_per_mtok
            + usage.output_tokens * self.output_price_per_mtok
        )
        return total / _MILLION
