"""Seed 004 end to end: core middleware, then plugins, then message capture, innermost."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from onionskin import (
    Agent,
    BaseMiddleware,
    ConfigError,
    Message,
    ModelRequest,
    ModelResponse,
    Orchestrator,
    RunContext,
)
from onionskin.core.placement import Placed
from onionskin.middleware.capture import MessageCaptureMiddleware, ModelExchange, TranscriptEntry
from onionskin.plugins import (
    PluginConfig,
    PluginRegistry,
    assemble_middleware,
    default_registry,
    register_middleware,
)
from onionskin.testing import ScriptedModel
from tests.plugins.conftest import PassThrough, pass_through

CONFIG = PluginConfig(agent="assistant")


class ModelLog(BaseMiddleware):
    """Logs its model hooks, and the last message each before hook saw."""

    def __init__(self, label: str, log: list[str]) -> None:
        self.label = label
        self.log = log

    def before_model(self, context: RunContext, request: ModelRequest) -> None:
        self.log.append(f"{self.label}>model saw {request.messages[-1].text!r}")

    def after_model(
        self, context: RunContext, request: ModelRequest, response: ModelResponse
    ) -> None:
        self.log.append(f"{self.label}<model")


class CoreGuard(ModelLog):
    """A core middleware other layers refer to by name."""


def answering(log: list[str]) -> ScriptedModel:
    def script(request: ModelRequest) -> str:
        log.append("model")
        return "done"

    return ScriptedModel(script)


async def test_order_is_core_then_plugin_then_capture(registry: PluginRegistry) -> None:
    log: list[str] = []
    core = ModelLog("core", log)
    registry.register_middleware(lambda config: ModelLog("plugin", log), name="plugin")
    capture = MessageCaptureMiddleware(sink=lambda entry: log.append(f"capture {entry.kind}"))
    middleware = assemble_middleware(
        [core], config=CONFIG, registry=registry, entry_points=False, capture=capture
    )
    assert len(middleware) == 3
    assert middleware[0] is core
    assert middleware[-1] is capture
    agent = Agent("assistant", model=answering(log))
    await Orchestrator(agent, middleware=middleware).execute("hi")
    assert log == [
        "core>model saw 'hi'",
        "plugin>model saw 'hi'",
        "model",
        "capture model",
        "plugin<model",
        "core<model",
    ]


@pytest.mark.usefixtures("test_plugin_installed")
async def test_capture_sees_the_request_after_the_plugins_rewrite() -> None:
    """The installed scope-banner plugin (seed 004's example) adds a per-turn directive."""
    log: list[str] = []
    entries: list[TranscriptEntry] = []
    seen_by_model: list[list[Message]] = []

    def script(request: ModelRequest) -> str:
        seen_by_model.append(list(request.messages))
        return "done"

    middleware = assemble_middleware(
        [ModelLog("core", log)],
        config=CONFIG,
        registry=PluginRegistry(),  # nothing registered: the banner comes from its entry point
        capture=MessageCaptureMiddleware(sink=entries.append),
    )
    orchestrator = Orchestrator(
        Agent("assistant", model=ScriptedModel(script)), middleware=middleware
    )
    result = await orchestrator.execute("hi", metadata={"project_scope": "billing"})
    banner = "Project scope: billing. Stay inside it."
    assert log[0] == "core>model saw 'hi'"  # the core layer runs before the plugin's rewrite
    [entry] = entries
    assert isinstance(entry, ModelExchange)
    assert [(m.role, m.text) for m in entry.messages] == [("user", "hi"), ("system", banner)]
    assert list(entry.messages) == seen_by_model[0]
    assert entry.run_id == result.run_id


@pytest.mark.usefixtures("test_plugin_installed")
async def test_without_metadata_the_banner_plugin_passes_through() -> None:
    entries: list[TranscriptEntry] = []
    middleware = assemble_middleware(
        [],
        config=CONFIG,
        registry=PluginRegistry(),
        capture=MessageCaptureMiddleware(sink=entries.append),
    )
    await Orchestrator(
        Agent("assistant", model=ScriptedModel(["done"])), middleware=middleware
    ).execute("hi")
    assert isinstance(entries[0], ModelExchange)
    assert [m.text for m in entries[0].messages] == ["hi"]


@pytest.mark.usefixtures("test_plugin_installed")
async def test_concurrent_runs_each_see_their_own_metadata() -> None:
    barrier = asyncio.Barrier(2)

    async def script(request: ModelRequest) -> str:
        await barrier.wait()  # both runs are inside their model call before either answers
        return "done"

    entries: list[TranscriptEntry] = []
    middleware = assemble_middleware(
        [],
        config=CONFIG,
        registry=PluginRegistry(),
        capture=MessageCaptureMiddleware(sink=entries.append),
    )
    orchestrator = Orchestrator(
        Agent("assistant", model=ScriptedModel(script)), middleware=middleware
    )
    first, second = await asyncio.gather(
        orchestrator.execute("hi", metadata={"project_scope": "alpha"}),
        orchestrator.execute("hi", metadata={"project_scope": "beta"}),
    )
    banners = {
        entry.run_id: entry.messages[-1].text
        for entry in entries
        if isinstance(entry, ModelExchange)
    }
    assert banners == {
        first.run_id: "Project scope: alpha. Stay inside it.",
        second.run_id: "Project scope: beta. Stay inside it.",
    }


async def test_a_plugin_placed_before_a_core_middleware_runs_outside_it(
    registry: PluginRegistry,
) -> None:
    # Needs the lead's placement wiring in core/chain.py (declared positions resolved when
    # the stack is built); without it the Placed wrapper is not a middleware.
    log: list[str] = []
    registry.register_middleware(
        lambda config: ModelLog("plugin", log), name="plugin", before="CoreGuard"
    )
    middleware = assemble_middleware(
        [ModelLog("other", log), CoreGuard("core", log)],
        config=CONFIG,
        registry=registry,
        entry_points=False,
    )
    await Orchestrator(Agent("assistant", model=answering(log)), middleware=middleware).execute(
        "hi"
    )
    assert [line.split(">")[0] for line in log if ">" in line] == ["other", "plugin", "core"]


async def test_an_innermost_plugin_stays_outside_capture(registry: PluginRegistry) -> None:
    log: list[str] = []
    registry.register_middleware(
        lambda config: ModelLog("plugin", log), name="plugin", position="innermost"
    )
    capture = MessageCaptureMiddleware(sink=lambda entry: log.append("capture"))
    middleware = assemble_middleware(
        [], config=CONFIG, registry=registry, entry_points=False, capture=capture
    )
    assert isinstance(middleware[0], Placed)
    agent = Agent("assistant", model=answering(log))
    await Orchestrator(agent, middleware=middleware).execute("hi")
    assert log == ["plugin>model saw 'hi'", "model", "capture", "plugin<model"]


async def test_a_placement_naming_a_missing_middleware_fails_the_build(
    registry: PluginRegistry,
) -> None:
    registry.register_middleware(pass_through, after="NoSuchMiddleware")
    middleware = assemble_middleware([], config=CONFIG, registry=registry, entry_points=False)
    agent = Agent("assistant", model=ScriptedModel(["done"]))
    with pytest.raises(ConfigError, match="NoSuchMiddleware"):
        await Orchestrator(agent, middleware=middleware).execute("hi")


def test_capture_flag(registry: PluginRegistry) -> None:
    registry.register_middleware(pass_through)
    with_capture = assemble_middleware([], config=CONFIG, registry=registry, entry_points=False)
    assert isinstance(with_capture[-1], MessageCaptureMiddleware)
    without = assemble_middleware(
        [], config=CONFIG, registry=registry, entry_points=False, capture=False
    )
    assert [type(item) for item in without] == [PassThrough]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"capture": "yes"}, "capture must be True, False or a MessageCaptureMiddleware"),
        ({"registry": {}}, "registry must be a PluginRegistry"),
        ({"config": {"agent": "assistant"}}, "config must be a PluginConfig"),
    ],
)
def test_bad_arguments_fail_before_any_factory_runs(
    registry: PluginRegistry, options: dict[str, Any], message: str
) -> None:
    called: list[str] = []
    registry.register_middleware(lambda config: called.append("x"), name="spy")
    arguments: dict[str, Any] = {"config": CONFIG, "registry": registry, "entry_points": False}
    with pytest.raises(ConfigError, match=message):
        assemble_middleware([], **{**arguments, **options})
    assert called == []


def test_core_holding_a_capture_already_is_refused(registry: PluginRegistry) -> None:
    own = MessageCaptureMiddleware()
    with pytest.raises(ConfigError, match="holds a MessageCaptureMiddleware already"):
        assemble_middleware([own], config=CONFIG, registry=registry, entry_points=False)
    kept = assemble_middleware(
        [own], config=CONFIG, registry=registry, entry_points=False, capture=False
    )
    assert kept == [own]


def test_the_default_registry_is_used_when_none_is_given() -> None:
    made = PassThrough("default")
    name = "tests.plugins.default_registry_probe"
    assert register_middleware(lambda config: made, name=name) is not None
    try:
        assert name in default_registry().names
        middleware = assemble_middleware([], config=CONFIG, entry_points=False, capture=False)
        assert made in middleware
    finally:
        default_registry().unregister(name)
    assert name not in default_registry().names
