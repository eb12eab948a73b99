"""explain(): the layers each call kind crosses, in their effective order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from onionskin import (
    Agent,
    BaseMiddleware,
    MiddlewarePipeline,
    ModelRequest,
    ModelResponse,
    Orchestrator,
    PipelineResult,
    RunContext,
    ToolCall,
    ToolResult,
)
from onionskin.core.placement import place
from onionskin.testing import ScriptedModel


class Audit(BaseMiddleware):
    def after_pipeline(self, context: RunContext, result: PipelineResult) -> None:
        return None

    def on_error(self, context: RunContext, error: BaseException) -> None:
        return None


class Retry(BaseMiddleware):
    async def wrap_model_call(
        self, request: ModelRequest, next: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        return await next(request)


class ToolLog(BaseMiddleware):
    def before_tool(self, context: RunContext, call: ToolCall) -> None:
        return None

    def after_tool(self, context: RunContext, call: ToolCall, result: ToolResult) -> None:
        return None


async def tool_layer(
    call: ToolCall, next: Callable[[ToolCall], Awaitable[ToolResult]]
) -> ToolResult:
    return await next(call)


def test_explain_lists_each_kinds_layers_in_effective_order() -> None:
    orchestrator = Orchestrator(
        Agent("assistant", model=ScriptedModel(["ok"])),
        middleware=[
            Retry(),
            ToolLog(),
            tool_layer,
            place(Audit(), position="outermost", mandatory=True),
            place(ToolLog(), name="inner-log", position="innermost", fail_open=True),
        ],
    )
    explained = orchestrator.explain()
    names = {kind: [layer.name for layer in layers] for kind, layers in explained.kinds.items()}
    assert names == {
        "pipeline": ["Audit"],
        "agent": [],
        "model": ["Retry"],
        "tool": ["ToolLog", "tool_layer", "inner-log"],
    }
    assert explained.on_error == ("Audit",)
    assert str(explained) == "\n".join(
        [
            "pipeline (1 layer):",
            "  1. Audit (after; outermost; mandatory)",
            "agent (0 layers):",
            "model (1 layer):",
            "  1. Retry (wrap)",
            "tool (3 layers):",
            "  1. ToolLog (before+after)",
            "  2. tool_layer (wrap)",
            "  3. inner-log (before+after; innermost; fail-open)",
            "on_error: Audit",
        ]
    )
    data = explained.as_dict()
    assert data["kinds"]["tool"][2] == {
        "name": "inner-log",
        "form": "before+after",
        "mandatory": False,
        "fail_open": True,
        "position": "innermost",
    }
    assert orchestrator.middleware[0].__class__ is Audit


def test_a_guard_pipeline_explains_its_built_ins_in_the_seeds_order() -> None:
    from onionskin import GuardConfig

    pipeline = MiddlewarePipeline(GuardConfig(), extra_middleware=[tool_layer])
    tool_layers = [layer.name for layer in pipeline.explain().kinds["tool"]]
    assert tool_layers[-1] == "tool_layer"
    assert tool_layers == [type(m).__name__ for m in pipeline.middleware[:-1]] + ["tool_layer"]
