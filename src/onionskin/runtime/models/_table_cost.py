"""What a provider model's calls cost: declared prices, else the offline price table, else 0.

A model the table does not know is free, with a notice logged once per process: a local
OpenAI-compatible server (vLLM, Ollama) serves models that are free to call and that no
table lists, and a new hosted model should not stop a project from running. On a provider's
own API an unpriced model is logged as a warning, because budget guards then see $0: declare
its prices (`input_price_per_mtok`, `output_price_per_mtok`) to budget it.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from functools import partial

from onionskin.core.errors import ConfigError
from onionskin.core.usage import Usage
from onionskin.pricing import check_priced, price_usage

logger = logging.getLogger("onionskin.models")

_MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)
_noticed: set[tuple[str, str, bool]] = set()


def _price(owner: str, field: str, value: object) -> Decimal:
    # Floats are refused: money is exact (a float price would carry binary noise into the bill).
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise ConfigError(
            f"{owner}.{field} must be a price >= 0 as a Decimal, int or str, got {value!r}"
        )
    try:
        price = Decimal(value)
    except ArithmeticError as error:
        raise ConfigError(f"{owner}.{field} must be a number, got {value!r}") from error
    if not price.is_finite() or price < 0:
        raise ConfigError(f"{owner}.{field} must be a finite price >= 0, got {value!r}")
    return price


class TableCost:
    """Prices usage of one model, the way its constructor options and the table say."""

    def __init__(
        self,
        model: str,
        *,
        owner: str,
        provider: object,
        local: bool,
        input_price_per_mtok: object = None,
        output_price_per_mtok: object = None,
    ) -> None:
        """Decide once, at construction, how usage is priced.

        Args:
            model: the model name, as the table knows it.
            owner: the adapter's class name, for error messages.
            provider: the provider's id in the table (`"openai"`).
            local: whether the model is served from a custom base_url (notice, not warning).
            input_price_per_mtok: USD per million input tokens, declared (with the output one).
            output_price_per_mtok: USD per million output tokens, declared.
        """
        if not isinstance(provider, str) or not provider:
            raise ConfigError(f"{owner}.price_provider must be a provider id, got {provider!r}")
        self._input = self._output = _ZERO
        self._table: partial[Decimal] | None = None
        declared = (input_price_per_mtok, output_price_per_mtok)
        if any(price is not None for price in declared):
            if None in declared:
                raise ConfigError(
                    f"{owner}: declare both input_price_per_mtok and output_price_per_mtok, "
                    "or neither (then the price table prices the model)"
                )
            self._input = _price(owner, "input_price_per_mtok", input_price_per_mtok)
            self._output = _price(owner, "output_price_per_mtok", output_price_per_mtok)
            return
        try:
            check_priced(model, provider=provider)
        except ConfigError:
            self._notice(model, owner, provider, local)
        else:
            self._table = partial(price_usage, model, provider=provider)

    @staticmethod
    def _notice(model: str, owner: str, provider: str, local: bool) -> None:
        key = (provider, model, local)
        if key in _noticed:
            return
        _noticed.add(key)
        logger.log(
            logging.INFO if local else logging.WARNING,
            "%s %r has no price in the %r price table: its calls are counted as free ($0). "
            "Declare input_price_per_mtok and output_price_per_mtok to budget it",
            owner,
            model,
            provider,
        )

    def __call__(self, usage: Usage) -> Decimal:
        """What `usage` costs, in USD."""
        if self._table is not None:
            return self._table(usage)
        total = usage.input_tokens * self._input + usage.output_tokens * self._output
        return total / _MILLION if total else _ZERO
