"""Model strings to models: real providers when configured, the scripted stand-in otherwise."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from onionskin import ConfigError, Message, ModelRequest
from onionskin.core.calls import Model
from onionskin.runtime.models import resolve
from onionskin.runtime.models.anthropic import AnthropicModel
from onionskin.runtime.models.openai import OpenAIModel
from onionskin.runtime.models.resolve import ModelOptions, register_provider, resolve_model
from onionskin.runtime.models.scripted import ScriptedModel
from tests.runtime.models._fake_server import Answer, FakeServer


@pytest.fixture(autouse=True)
def own_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no provider registered, and leaves the real registry alone."""
    monkeypatch.setattr(resolve, "_PROVIDERS", {})
    monkeypatch.setattr(resolve, "_UNAVAILABLE_NOTICE", {})


@pytest.fixture
async def built() -> AsyncIterator[list[Model]]:
    """Models a test resolved: their HTTP clients are closed afterwards."""
    models: list[Model] = []
    yield models
    for model in models:
        if isinstance(model, OpenAIModel | AnthropicModel):
            await model.aclose()


def options(environ: dict[str, str], **settings: Any) -> ModelOptions:
    return ModelOptions(settings=settings, environ=environ)


async def test_an_openai_key_builds_an_openai_model(built: list[Model]) -> None:
    model = resolve_model("openai:gpt-4o-mini", options({"OPENAI_API_KEY": "sk-x"}))
    built.append(model)

    assert isinstance(model, OpenAIModel)
    assert model.name == "gpt-4o-mini"
    assert model.base_url is None


async def test_an_anthropic_key_builds_an_anthropic_model(built: list[Model]) -> None:
    model = resolve_model("anthropic:claude-haiku-4-5", options({"ANTHROPIC_API_KEY": "sk-a"}))
    built.append(model)

    assert isinstance(model, AnthropicModel)
    assert model.name == "claude-haiku-4-5"


@pytest.mark.parametrize(
    ("spec", "variable"),
    [("openai:gpt-4o-mini", "OPENAI_API_KEY"), ("anthropic:claude-haiku-4-5", "ANTHROPIC_API_KEY")],
)
async def test_no_key_gives_the_scripted_stand_in_and_a_warning(
    caplog: pytest.LogCaptureFixture, spec: str, variable: str
) -> None:
    model = resolve_model(spec, options({"UNRELATED": "x"}))

    assert isinstance(model, ScriptedModel)
    answer = await model.request(ModelRequest(model=model, messages=[Message.user("ping")]))
    assert "You said: ping" in answer.message.text
    [record] = [r for r in caplog.records if r.name == "onionskin.models"]
    assert record.levelno == logging.WARNING
    assert variable in record.getMessage()
    assert "scripted stand-in" in record.getMessage()


async def test_a_base_url_from_the_environment_needs_no_key(
    openai_server: FakeServer, built: list[Model]
) -> None:
    model = resolve_model(
        "openai:llama3.1:8b", options({"OPENAI_BASE_URL": f"{openai_server.url}/v1"})
    )
    built.append(model)
    openai_server.answer(Answer(text="from the local server"))

    response = await model.request(ModelRequest(model=model, messages=[Message.user("hi")]))

    assert isinstance(model, OpenAIModel)
    assert model.name == "llama3.1:8b"
    assert response.message.text == "from the local server"
    assert openai_server.received[0].headers["authorization"] == "Bearer no-key"


async def test_api_key_env_and_base_url_settings_choose_key_and_server(
    anthropic_server: FakeServer, built: list[Model]
) -> None:
    model = resolve_model(
        "anthropic:claude-haiku-4-5",
        options(
            {"ANTHROPIC_API_KEY": "not this one", "TEAM_KEY": "team-secret"},
            base_url=anthropic_server.url,
            api_key_env="TEAM_KEY",
        ),
    )
    built.append(model)
    anthropic_server.answer(Answer(text="hello team"))

    response = await model.request(ModelRequest(model=model, messages=[Message.user("hi")]))

    assert response.message.text == "hello team"
    assert "team-secret" in str(anthropic_server.received[0].headers)
    assert "not this one" not in str(anthropic_server.received[0].headers)


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("", "must be a string"),
        ("   ", "must be a string"),
        ("openai:", "names no model"),
        ("mistral:large", "unknown model provider 'mistral'"),
    ],
)
def test_bad_model_strings_raise_config_error(spec: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        resolve_model(spec, options({"OPENAI_API_KEY": "k"}))


def test_a_model_string_that_is_not_a_string_raises_config_error() -> None:
    spec: Any = 42  # as a YAML file could hold it

    with pytest.raises(ConfigError, match="must be a string"):
        resolve_model(spec)


@pytest.mark.parametrize(
    ("settings", "environ", "complaint"),
    [
        (
            {"temperature": 0.2},
            {"OPENAI_API_KEY": "k"},
            r"unknown openai provider settings \['temperature'\]",
        ),
        ({"base_url": "localhost:1234"}, {}, "the openai provider's base_url"),
        ({}, {"OPENAI_BASE_URL": "localhost:1234"}, "OPENAI_BASE_URL"),
        ({"api_key_env": ""}, {}, "api_key_env"),
        ({"api_key_env": 3}, {}, "api_key_env"),
    ],
)
def test_bad_provider_settings_raise_config_error(
    settings: dict[str, Any], environ: dict[str, str], complaint: str
) -> None:
    with pytest.raises(ConfigError, match=complaint):
        resolve_model("openai:gpt-4o-mini", options(environ, **settings))


def test_an_empty_key_counts_as_no_key() -> None:
    model = resolve_model(
        "openai:gpt-4o-mini", options({"OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""})
    )

    assert isinstance(model, ScriptedModel)


def test_without_the_sdk_the_stand_in_answers(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # None in sys.modules makes the import fail, as if the extra were not installed.
    monkeypatch.setitem(sys.modules, "onionskin.runtime.models.openai", None)

    model = resolve_model("openai:gpt-4o-mini", options({"OPENAI_API_KEY": "k"}))

    assert isinstance(model, ScriptedModel)
    assert 'pip install "onionskin[openai]"' in caplog.text


def test_a_provider_the_application_registered_keeps_its_builder() -> None:
    mine = ScriptedModel(["mine"], name="custom")
    register_provider("openai", lambda name, options: mine, unavailable="never")

    assert resolve_model("openai:gpt-4o-mini", options({})) is mine


def test_the_scripted_prefix_and_bare_names_are_the_stand_in() -> None:
    assert resolve_model("scripted:demo").name == "demo"
    assert resolve_model("just-a-name").name == "just-a-name"
