"""What model calls cost: the offline genai-prices table, estimates, and exact micro-dollars.

Prices come from genai-prices' bundled snapshot only; its update functions are never called,
so pricing works offline and a price never changes under a running process. Money is
`Decimal` in the API and whole micro-dollars (`int`) in stores (DEPENDENCIES lesson 4).

genai-prices is imported on first use: it takes longer to import than onionskin itself.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import cache
from typing import TYPE_CHECKING

from onionskin.core.calls import ModelRequest
from onionskin.core.errors import ConfigError
from onionskin.core.usage import Usage
from onionskin.runtime.models._estimate import estimate_tokens

if TYPE_CHECKING:
    from genai_prices.types import PriceCalculation

_MICROS = Decimal(1_000_000)
_ONE = Decimal(1)
MAX_TOKENS_SETTINGS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
"""Request settings that bound a model's output, in the order they are read."""


@cache
def _calculator() -> Callable[[int, int, int, str, str | None], PriceCalculation]:
    from genai_prices import Usage as PriceUsage
    from genai_prices import calc_price

    def calculate(
        input_tokens: int, output_tokens: int, cached: int, model: str, provider: str | None
    ) -> PriceCalculation:
        usage = PriceUsage(
            input_tokens=input_tokens, output_tokens=output_tokens, cache_read_tokens=cached
        )
        return calc_price(usage, model_ref=model, provider_id=provider)

    return calculate


def price_usage(model_name: str, usage: Usage, *, provider: str | None = None) -> Decimal:
    """What `usage` of `model_name` costs in USD, from the offline price table.

    Args:
        model_name: the model as its provider names it (`"gpt-4o-mini"`).
        usage: the tokens used; cached tokens are part of `input_tokens` and are billed
            at the cache-read price where the table has one.
        provider: the provider's id in the table (`"openai"`); None lets the table guess.

    Raises:
        ConfigError: the table knows no such model (or provider).
        ValueError: a token count is negative.
    """
    counts = (usage.input_tokens, usage.output_tokens, usage.cached_tokens)
    if any(count < 0 for count in counts) or usage.cached_tokens > usage.input_tokens:
        raise ValueError(f"token counts must be >= 0 with cached <= input tokens, got {usage}")
    try:
        result = _calculator()(*counts, model_name, provider)
    except LookupError as error:
        where = f" of provider {provider!r}" if provider else ""
        raise ConfigError(
            f"no price for model {model_name!r}{where} in the genai-prices table ({error}); "
            "check the model's name and provider, or declare the model's prices yourself"
        ) from error
    return result.total_price


def check_priced(model_name: str, *, provider: str | None = None) -> None:
    """Raise `ConfigError` now, at construction, if `model_name` has no price in the table."""
    price_usage(model_name, Usage(), provider=provider)


def request_max_tokens(request: ModelRequest, default: int) -> int:
    """The output bound of `request`: its `max_tokens` setting (or an alias), else `default`.

    Raises:
        ConfigError: the setting is present but not an int >= 1.
    """
    for name in MAX_TOKENS_SETTINGS:
        value = request.settings.get(name)
        if value is None:
            continue
        if type(value) is not int or value < 1:
            raise ConfigError(f"the model settings' {name!r} must be an int >= 1, got {value!r}")
        return value
    return default


def estimate_cost(request: ModelRequest, *, default_max_tokens: int) -> Decimal:
    """The most `request` may cost: its prompt plus a full `max_tokens` answer, in USD.

    Priced by the request's own model, exactly as the bill will be (DEPENDENCIES lesson 2).
    """
    usage = Usage(
        input_tokens=estimate_tokens(request.messages),
        output_tokens=request_max_tokens(request, default_max_tokens),
    )
    return request.model.cost(usage)


def to_micros(amount: Decimal) -> int:
    """`amount` USD as whole micro-dollars, rounded up: a charge never under-counts."""
    return _scaled(amount, ROUND_CEILING)


def limit_micros(amount: Decimal) -> int:
    """A limit of `amount` USD as whole micro-dollars, rounded down: never more than allowed."""
    return _scaled(amount, ROUND_FLOOR)


def from_micros(micros: int) -> Decimal:
    """Whole micro-dollars as an exact `Decimal` USD amount, without trailing zeros."""
    value = Decimal(micros).scaleb(-6)
    # normalize() alone would write $100 as 1E+2.
    return value.quantize(_ONE) if value == value.to_integral_value() else value.normalize()


def _scaled(amount: object, rounding: str) -> int:
    # Typed as object: money reaches here from configs and callers that type hints do not bind.
    if not isinstance(amount, Decimal | int) or isinstance(amount, bool):
        raise TypeError(f"money must be a Decimal (never a float), got {amount!r}")
    value = Decimal(amount)
    if not value.is_finite() or value < 0:
        raise ValueError(f"money must be a finite amount >= 0, got {amount!r}")
    return int((value * _MICROS).to_integral_value(rounding=rounding))
