"""Prices from the offline genai-prices table, estimates, and exact micro-dollars."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from typing import Any

import pytest

from onionskin import ConfigError, Message, ModelRequest, Usage
from onionskin.pricing import (
    estimate_cost,
    from_micros,
    limit_micros,
    price_usage,
    request_max_tokens,
    to_micros,
)
from onionskin.runtime.models._estimate import estimate_tokens
from onionskin.runtime.models.scripted import ScriptedModel

# gpt-4o-mini in the bundled table: $0.15 per million input tokens, $0.075 cached, $0.60 output.


def test_a_model_is_priced_exactly_from_the_table() -> None:
    price = price_usage(
        "gpt-4o-mini", Usage(input_tokens=1_000, output_tokens=500), provider="openai"
    )

    assert isinstance(price, Decimal)
    assert price == Decimal("0.00045")


def test_cached_input_tokens_are_billed_at_the_cache_price() -> None:
    usage = Usage(input_tokens=1_000, output_tokens=100, cached_tokens=400)

    assert price_usage("gpt-4o-mini", usage, provider="openai") == Decimal("0.00018")


def test_the_provider_may_be_left_to_the_table() -> None:
    usage = Usage(input_tokens=10, output_tokens=5)
    assert price_usage("gpt-4o-mini", usage) == price_usage("gpt-4o-mini", usage, provider="openai")


@pytest.mark.parametrize(
    ("model", "provider", "named"),
    [("no-such-model-x", "openai", "no-such-model-x"), ("gpt-4o-mini", "nope", "nope")],
)
def test_an_unknown_model_or_provider_raises_a_clear_config_error(
    model: str, provider: str, named: str
) -> None:
    with pytest.raises(ConfigError, match=named) as raised:
        price_usage(model, Usage(input_tokens=1), provider=provider)
    assert isinstance(raised.value.__cause__, LookupError)


@pytest.mark.parametrize(
    "usage",
    [Usage(input_tokens=-1), Usage(output_tokens=-1), Usage(input_tokens=1, cached_tokens=2)],
)
def test_impossible_token_counts_are_refused(usage: Usage) -> None:
    with pytest.raises(ValueError, match="token counts"):
        price_usage("gpt-4o-mini", usage)


def test_importing_onionskin_does_not_load_the_price_table() -> None:
    code = (
        "import sys, onionskin, onionskin.pricing, onionskin.middleware.budget; "
        "print('genai_prices' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- the scripted model priced like a real one ------------------------------------------------


async def test_a_scripted_model_can_price_itself_from_the_table() -> None:
    model = ScriptedModel(
        ["a fairly short answer"], price_as="gpt-4o-mini", price_provider="openai"
    )
    request = ModelRequest(model=model, messages=[Message.user("hello there")])

    response = await model.request(request)

    assert model.cost(response.usage) == price_usage("gpt-4o-mini", response.usage)
    assert model.cost(response.usage) > 0


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"price_as": "no-such-model-x"}, "no-such-model-x"),
        ({"price_as": ""}, "price_as"),
        ({"price_as": "gpt-4o-mini", "price_provider": 3}, "price_provider"),
        ({"price_as": "gpt-4o-mini", "output_price_per_mtok": 1}, "price_as"),
    ],
)
def test_a_bad_price_as_is_refused_at_construction(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ScriptedModel(["x"], **options)


# --- estimates --------------------------------------------------------------------------------


def test_the_estimate_prices_the_prompt_and_a_full_max_tokens_answer() -> None:
    model = ScriptedModel([], input_price_per_mtok=2, output_price_per_mtok=8)
    messages = [Message.system("be brief"), Message.user("what is the capital of Norway?")]
    request = ModelRequest(model=model, messages=messages, settings={"max_tokens": 300})

    expected = model.cost(Usage(input_tokens=estimate_tokens(messages), output_tokens=300))

    assert estimate_cost(request, default_max_tokens=4096) == expected
    assert expected == (Decimal(estimate_tokens(messages)) * 2 + 300 * 8) / 1_000_000


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, 50),
        ({"max_tokens": 7}, 7),
        ({"max_completion_tokens": 8}, 8),
        ({"max_output_tokens": 9}, 9),
        ({"max_tokens": None, "max_output_tokens": 9}, 9),
    ],
)
def test_max_tokens_comes_from_the_settings_or_the_default(
    settings: dict[str, Any], expected: int
) -> None:
    request = ModelRequest(model=ScriptedModel([]), messages=[], settings=settings)
    assert request_max_tokens(request, 50) == expected


@pytest.mark.parametrize("value", [0, -5, "100", 1.5, True])
def test_a_bad_max_tokens_setting_is_a_config_error(value: object) -> None:
    request = ModelRequest(model=ScriptedModel([]), messages=[], settings={"max_tokens": value})
    with pytest.raises(ConfigError, match="max_tokens"):
        request_max_tokens(request, 50)


# --- micro-dollars ----------------------------------------------------------------------------


def test_charges_round_up_and_limits_round_down_to_whole_micro_dollars() -> None:
    assert to_micros(Decimal("0.0000045")) == 5
    assert limit_micros(Decimal("0.0000045")) == 4
    assert to_micros(Decimal("0.000123")) == limit_micros(Decimal("0.000123")) == 123
    assert to_micros(Decimal(2)) == 2_000_000


def test_micro_dollars_convert_back_exactly() -> None:
    assert str(from_micros(123_000)) == "0.123"
    assert str(from_micros(100_000_000)) == "100"
    assert str(from_micros(1)) == "0.000001"
    assert from_micros(sum(to_micros(Decimal("0.000123")) for _ in range(1_000))) == Decimal(
        "0.123"
    )


@pytest.mark.parametrize(
    ("amount", "error"),
    [(0.1, TypeError), (True, TypeError), (Decimal(-1), ValueError), (Decimal("Inf"), ValueError)],
)
def test_money_must_be_an_exact_amount(amount: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="money"):
        to_micros(amount)
