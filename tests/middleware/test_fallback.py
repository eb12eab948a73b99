"""Model fallback: the next model in order, the last error when all fail, and the record."""

from __future__ import annotations

from typing import Any

import pytest

from onionskin import (
    ConfigError,
    Message,
    ModelHTTPError,
    ModelRequest,
    ModelResponse,
    RunContext,
    RunResult,
)
from onionskin.middleware.fallback import (
    FallbackRecord,
    ModelFallbackConfig,
    ModelFallbackMiddleware,
)
from onionskin.runtime.models.scripted import ScriptItem
from onionskin.testing import ScriptedModel
from tests.conftest import OrchestratorFactory


class Calls:
    """Which models were asked, in order."""

    def __init__(self) -> None:
        self.models: list[str] = []

    def model(self, name: str, *outcomes: BaseException | str) -> ScriptedModel:
        """A model that raises or answers `outcomes` in turn."""
        remaining = list(outcomes)

        def script(request: ModelRequest) -> ScriptItem:
            self.models.append(name)
            outcome = remaining.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome

        return ScriptedModel(script, name=name)


async def call_model(request: ModelRequest) -> ModelResponse:
    """The innermost `next`: ask the request's model."""
    return await request.model.request(request)


def request_to(model: ScriptedModel) -> ModelRequest:
    return ModelRequest(model=model, messages=[Message.user("hi")])


async def test_falls_back_in_order_until_a_model_answers() -> None:
    calls = Calls()
    primary = calls.model("primary", ModelHTTPError("overloaded", status_code=503))
    second = calls.model("second", ConnectionError("reset"))
    third = calls.model("third", "answer from third")
    never = calls.model("never", "unused")
    fallback = ModelFallbackMiddleware(models=[second, third, never])

    response = await fallback.wrap_model_call(request_to(primary), call_model)

    assert response.message.text == "answer from third"
    assert response.model_name == "third"
    assert calls.models == ["primary", "second", "third"]


async def test_any_http_status_falls_back_by_default() -> None:
    calls = Calls()
    primary = calls.model("primary", ModelHTTPError("bad key", status_code=401))
    fallback = ModelFallbackMiddleware(models=[calls.model("backup", "ok")])
    assert (await fallback.wrap_model_call(request_to(primary), call_model)).model_name == "backup"


async def test_other_errors_propagate_without_fallback() -> None:
    calls = Calls()
    bug = KeyError("a bug in the primary's adapter")
    primary = calls.model("primary", bug)
    fallback = ModelFallbackMiddleware(models=[calls.model("backup", "ok")])

    with pytest.raises(KeyError) as raised:
        await fallback.wrap_model_call(request_to(primary), call_model)
    assert raised.value is bug
    assert calls.models == ["primary"]


async def test_when_all_fail_the_last_error_is_raised_unchained() -> None:
    calls = Calls()
    last = ModelHTTPError("down too", status_code=502)
    primary = calls.model("primary", ModelHTTPError("down", status_code=500))
    backup = calls.model("backup", last)

    with pytest.raises(ModelHTTPError) as raised:
        await ModelFallbackMiddleware(models=[backup]).wrap_model_call(
            request_to(primary), call_model
        )
    assert raised.value is last
    assert raised.value.__cause__ is None
    assert raised.value.__context__ is None
    assert calls.models == ["primary", "backup"]


async def test_fallback_on_chooses_the_errors() -> None:
    calls = Calls()
    primary = calls.model("primary", ValueError("refused"), ModelHTTPError("x", status_code=503))
    config = ModelFallbackConfig(models=(calls.model("backup", "ok"),), fallback_on=(ValueError,))
    fallback = ModelFallbackMiddleware(config)

    assert (await fallback.wrap_model_call(request_to(primary), call_model)).model_name == "backup"
    with pytest.raises(ModelHTTPError):  # no longer a fallback error under this config
        await fallback.wrap_model_call(request_to(primary), call_model)


async def test_the_request_model_is_not_asked_twice() -> None:
    calls = Calls()
    primary = calls.model("primary", TimeoutError())
    fallback = ModelFallbackMiddleware(models=[primary, calls.model("backup", "ok")])
    await fallback.wrap_model_call(request_to(primary), call_model)
    assert calls.models == ["primary", "backup"]


async def test_an_unnamed_response_is_named_after_the_model_that_answered() -> None:
    calls = Calls()
    primary = calls.model("primary", TimeoutError())

    async def anonymous(request: ModelRequest) -> ModelResponse:
        if request.model is primary:
            return await call_model(request)
        return ModelResponse(message=Message.assistant("hi"))  # no model_name

    backup = ScriptedModel(["unused"], name="backup")
    response = await ModelFallbackMiddleware(models=[backup]).wrap_model_call(
        request_to(primary), anonymous
    )
    assert response.model_name == "backup"


async def test_a_run_falls_back_and_records_who_answered(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    calls = Calls()
    primary_errors = [ModelHTTPError("overloaded", status_code=529)]
    backup = calls.model("backup", "first answer")
    records: list[Any] = []

    class Capture:
        def after_pipeline(self, context: RunContext, result: Any) -> None:
            records.extend(context.guard_state["model_fallback"])

    orchestrator = orchestrator_factory(
        lambda request: _raise(primary_errors.pop(0)) if primary_errors else "own answer",
        middleware=[Capture(), ModelFallbackMiddleware(models=[backup])],
    )
    result: RunResult = await orchestrator.execute("go")
    assert result.output == "first answer"
    assert records == [
        FallbackRecord(requested="scripted", answered_by="backup", failed=("scripted",))
    ]
    assert result.agents["assistant"].model_calls == 1


async def test_a_primary_that_answers_is_recorded_and_no_fallback_is_asked(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    calls = Calls()
    backup = calls.model("backup", "unused")
    records: list[Any] = []

    class Capture:
        def after_pipeline(self, context: RunContext, result: Any) -> None:
            records.extend(context.guard_state["model_fallback"])

    orchestrator = orchestrator_factory(
        lambda request: "own answer",
        middleware=[Capture(), ModelFallbackMiddleware(models=[backup])],
    )
    assert (await orchestrator.execute("go")).output == "own answer"
    assert records == [FallbackRecord(requested="scripted", answered_by="scripted", failed=())]
    assert calls.models == []


async def test_an_unnamed_answer_of_the_primary_is_named_after_it() -> None:
    async def anonymous(request: ModelRequest) -> ModelResponse:
        return ModelResponse(message=Message.assistant("hi"))  # no model_name

    primary = ScriptedModel(["unused"], name="primary")
    backup = ScriptedModel(["unused"], name="backup")
    response = await ModelFallbackMiddleware(models=[backup]).wrap_model_call(
        request_to(primary), anonymous
    )
    assert response.model_name == "primary"


async def test_a_fallbacks_own_other_error_propagates_at_once() -> None:
    calls = Calls()
    bug = KeyError("a bug in the second adapter")
    primary = calls.model("primary", ModelHTTPError("down", status_code=503))
    fallback = ModelFallbackMiddleware(
        models=[calls.model("second", bug), calls.model("third", "unused")]
    )

    with pytest.raises(KeyError) as raised:
        await fallback.wrap_model_call(request_to(primary), call_model)
    assert raised.value is bug
    assert raised.value.__context__ is None  # the primary's error is not chained to it
    assert calls.models == ["primary", "second"]


def _raise(error: BaseException) -> ScriptItem:
    raise error


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"models": ()}, "models"),
        ({"models": ("gpt-4o",)}, "models"),
        ({"models": "gpt-4o"}, "models"),
        ({"models": (ScriptedModel(["x"]),), "fallback_on": ()}, "fallback_on"),
        ({"models": (ScriptedModel(["x"]),), "fallback_on": 503}, "fallback_on"),
    ],
)
def test_bad_config_raises_config_error_naming_the_field(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError, match=field):
        ModelFallbackConfig(**options)


def test_models_from_a_list_are_kept_as_a_tuple_and_arguments_are_checked() -> None:
    model = ScriptedModel(["x"])
    config = ModelFallbackConfig(models=[model])  # type: ignore[arg-type]
    assert config.models == (model,)
    with pytest.raises(ConfigError, match="not both"):
        ModelFallbackMiddleware(config, models=[model])
    with pytest.raises(ConfigError, match="ModelFallbackConfig"):
        ModelFallbackMiddleware([model])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="models"):
        ModelFallbackMiddleware()
