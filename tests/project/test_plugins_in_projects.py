"""A project's runs get plugin middleware and message capture after its own (seed 004)."""

from __future__ import annotations

from typing import Any

from onionskin import ModelRequest, PluginConfig, PluginRegistry, RunContext
from onionskin.middleware.capture import ModelExchange, current_transcript
from tests.project.conftest import LoadProject


class Directive:
    """A plugin's per-turn directive, from its settings in onionskin.yaml."""

    def __init__(self, text: str) -> None:
        self.text = text

    def before_model(self, context: RunContext, request: ModelRequest) -> ModelRequest:
        from dataclasses import replace

        from onionskin import Message

        return replace(request, messages=[*request.messages, Message.system(self.text)])


async def test_plugins_run_inside_the_projects_middleware_and_capture_sees_them(
    load: LoadProject,
) -> None:
    seen: list[PluginConfig] = []
    registry = PluginRegistry()

    @registry.register_middleware
    def directive(config: PluginConfig) -> Directive:
        seen.append(config)
        return Directive(str(config.settings["text"]))

    project = load(
        {
            "agents/assistant.yaml": "instructions: Be brief.\n",
            "middleware/assistant.py": "def after(r, ctx):\n    return r + ' (file)'\n",
            "onionskin.yaml": "plugins:\n  directive:\n    text: Answer in French.\n",
        }
    )
    transcript: list[Any] = []

    class Keep:
        def after_pipeline(self, context: RunContext, result: Any) -> None:
            transcript.extend(current_transcript(context))

    orchestrator = project.orchestrator(
        "assistant", middleware=[Keep()], plugins=registry, entry_points=False
    )
    result = await orchestrator.execute("hi")

    assert result.output.endswith(" (file)")
    assert [config.agent for config in seen] == ["assistant"]
    assert seen[0].project_dir == project.path
    names = [layer.name for layer in orchestrator.explain().kinds["model"]]
    assert names == ["Directive", "MessageCaptureMiddleware"]
    [exchange] = [entry for entry in transcript if isinstance(entry, ModelExchange)]
    assert [message.text for message in exchange.messages][-1] == "Answer in French."
    assert [type(m).__name__ for m in orchestrator.middleware] == [
        "Keep",
        "FileMiddleware",
        "Directive",
        "MessageCaptureMiddleware",
    ]
