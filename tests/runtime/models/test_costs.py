"""What provider models cost: the offline price table, declared prices, or $0 with a notice."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest

from onionskin import ConfigError, Usage
from onionskin.pricing import price_usage
from onionskin.runtime.models.anthropic import AnthropicModel
from onionskin.runtime.models.openai import OpenAIModel

USAGE = Usage(input_tokens=1000, output_tokens=500, cached_tokens=200)


async def test_openai_model_costs_what_the_price_table_says() -> None:
    model = OpenAIModel("gpt-4o-mini", api_key="k")
    try:
        cost = model.cost(USAGE)
    finally:
        await model.aclose()

    # gpt-4o-mini: $0.15 / M input, $0.075 / M cached input, $0.60 / M output.
    assert cost == Decimal("0.000435")
    assert cost == price_usage("gpt-4o-mini", USAGE, provider="openai")


async def test_anthropic_model_costs_what_the_price_table_says() -> None:
    model = AnthropicModel("claude-haiku-4-5", api_key="k")
    try:
        cost = model.cost(USAGE)
    finally:
        await model.aclose()

    # claude-haiku-4-5: $1 / M input, $0.10 / M cache reads, $5 / M output.
    assert cost == Decimal("0.00332")


async def test_a_local_model_missing_from_the_table_is_free_with_one_notice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="onionskin.models")
    models = [OpenAIModel("llama3.1:8b", base_url="http://127.0.0.1:11434/v1") for _ in range(2)]
    try:
        costs = [model.cost(USAGE) for model in models]
    finally:
        for model in models:
            await model.aclose()

    assert costs == [Decimal(0), Decimal(0)]
    notices = [record for record in caplog.records if "llama3.1:8b" in record.getMessage()]
    assert len(notices) == 1
    assert notices[0].levelno == logging.INFO
    assert "input_price_per_mtok" in notices[0].getMessage()


async def test_an_unpriced_model_on_the_provider_api_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = AnthropicModel("claude-from-the-future", api_key="k")
    await model.aclose()

    assert model.cost(USAGE) == 0
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert ["claude-from-the-future" in record.getMessage() for record in warnings] == [True]


async def test_declared_prices_replace_the_table() -> None:
    model = OpenAIModel(
        "gpt-4o-mini",
        api_key="k",
        input_price_per_mtok=Decimal("2"),
        output_price_per_mtok="10",
    )
    await model.aclose()

    assert model.cost(USAGE) == Decimal("0.007")  # 1000 * $2 / M + 500 * $10 / M
    assert model.cost(Usage()) == 0


@pytest.mark.parametrize(
    ("prices", "complaint"),
    [
        ({"input_price_per_mtok": 1}, "declare both"),
        ({"input_price_per_mtok": 1.5, "output_price_per_mtok": 1}, "input_price_per_mtok"),
        ({"input_price_per_mtok": 1, "output_price_per_mtok": "-1"}, "output_price_per_mtok"),
        ({"input_price_per_mtok": "lots", "output_price_per_mtok": 1}, "must be a number"),
        ({"input_price_per_mtok": "NaN", "output_price_per_mtok": 1}, "finite"),
        ({"input_price_per_mtok": True, "output_price_per_mtok": 1}, "input_price_per_mtok"),
        ({"price_provider": ""}, "price_provider"),
    ],
)
def test_bad_declared_prices_raise_config_error(prices: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        OpenAIModel("gpt-4o-mini", api_key="k", **prices)
