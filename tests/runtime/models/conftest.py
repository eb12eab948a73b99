"""Fixtures: a fake provider server per protocol, and factories of models pointed at them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from onionskin.middleware.retry import set_testing
from onionskin.runtime.models import _table_cost
from onionskin.runtime.models.anthropic import AnthropicModel
from onionskin.runtime.models.openai import OpenAIModel
from tests.runtime.models import _anthropic_protocol, _openai_protocol
from tests.runtime.models._fake_server import FakeServer

OpenAIFactory = Callable[..., OpenAIModel]
AnthropicFactory = Callable[..., AnthropicModel]

OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-haiku-4-5"


@pytest.fixture(autouse=True)
def fresh_state() -> Iterator[None]:
    """Real retry mode (the clock is asked to wait), and price notices not yet given."""
    noticed = set(_table_cost._noticed)
    _table_cost._noticed.clear()
    with set_testing(False):
        yield
    _table_cost._noticed.clear()
    _table_cost._noticed.update(noticed)


@pytest.fixture
def openai_server() -> Iterator[FakeServer]:
    """A local server speaking the OpenAI chat completions API."""
    server = FakeServer(_openai_protocol.render)
    yield server
    server.close()


@pytest.fixture
def anthropic_server() -> Iterator[FakeServer]:
    """A local server speaking the Anthropic messages API."""
    server = FakeServer(_anthropic_protocol.render)
    yield server
    server.close()


@pytest.fixture
async def openai_model(openai_server: FakeServer) -> AsyncIterator[OpenAIFactory]:
    """`openai_model(name=..., **options)`: an OpenAIModel on the fake server, closed after."""
    built: list[OpenAIModel] = []

    def build(name: str = OPENAI_MODEL, **options: Any) -> OpenAIModel:
        options.setdefault("base_url", f"{openai_server.url}/v1")
        options.setdefault("api_key", "sk-test")
        built.append(OpenAIModel(name, **options))
        return built[-1]

    yield build
    for model in built:
        await model.aclose()


@pytest.fixture
async def anthropic_model(anthropic_server: FakeServer) -> AsyncIterator[AnthropicFactory]:
    """`anthropic_model(name=..., **options)`: an AnthropicModel on the fake server."""
    built: list[AnthropicModel] = []

    def build(name: str = ANTHROPIC_MODEL, **options: Any) -> AnthropicModel:
        options.setdefault("base_url", anthropic_server.url)
        options.setdefault("api_key", "sk-ant-test")
        built.append(AnthropicModel(name, **options))
        return built[-1]

    yield build
    for model in built:
        await model.aclose()
