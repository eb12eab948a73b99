"""What middleware costs: a run with 0, 1, 5 and 10 no-op layers against a hand-written floor.

Two runs are measured, on the scripted model so that only onionskin's own work is timed:

* (a) one model call that answers with text;
* (b) model call -> tool call -> model call.

Each no-op middleware hooks every call kind: `hooks` overrides all eight `before_*` /
`after_*` hooks with async no-ops (seed 000's form), `sync-hooks` the same as plain
methods, `onion` all four `wrap_*` methods with `return await next(call)`. The floor awaits
the same scripted model and tool directly, in the same process, in the same run; the
hand-written onion floor wraps the same five calls (run, turn, model, tool, model) in ten
pass-through closures, the cheapest onion Python allows, for an apples-to-apples ratio.

Per layer = (run with N layers - run with 0) / (N x calls the layer wraps per run): run (a)
passes 3 calls through each layer (pipeline, agent, model), run (b) 5 (pipeline, agent,
model, tool, model).

Usage: python benchmarks/overhead.py [--json] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from onionskin import Agent, BaseMiddleware, Message, ModelRequest, Orchestrator
from onionskin.core.messages import ToolCallPart, ToolReturnPart
from onionskin.testing import ScriptedModel

LAYER_COUNTS = (0, 1, 5, 10)
CALLS_PER_RUN = {"a": 3, "b": 5}


class NoOpHooks(BaseMiddleware):
    async def before_pipeline(self, context: Any) -> None:
        return None

    async def after_pipeline(self, context: Any, result: Any) -> None:
        return None

    async def before_agent(self, context: Any, agent_name: str) -> None:
        return None

    async def after_agent(self, context: Any, agent_name: str, result: Any) -> None:
        return None

    async def before_model(self, context: Any, request: Any) -> None:
        return None

    async def after_model(self, context: Any, request: Any, response: Any) -> None:
        return None

    async def before_tool(self, context: Any, call: Any) -> None:
        return None

    async def after_tool(self, context: Any, call: Any, result: Any) -> None:
        return None


class NoOpSyncHooks(BaseMiddleware):
    def before_pipeline(self, context: Any) -> None:
        return None

    def after_pipeline(self, context: Any, result: Any) -> None:
        return None

    def before_agent(self, context: Any, agent_name: str) -> None:
        return None

    def after_agent(self, context: Any, agent_name: str, result: Any) -> None:
        return None

    def before_model(self, context: Any, request: Any) -> None:
        return None

    def after_model(self, context: Any, request: Any, response: Any) -> None:
        return None

    def before_tool(self, context: Any, call: Any) -> None:
        return None

    def after_tool(self, context: Any, call: Any, result: Any) -> None:
        return None


class NoOpOnion:
    async def wrap_pipeline(self, call: Any, next: Callable[[Any], Awaitable[Any]]) -> Any:
        return await next(call)

    async def wrap_agent(self, call: Any, next: Callable[[Any], Awaitable[Any]]) -> Any:
        return await next(call)

    async def wrap_model_call(self, call: Any, next: Callable[[Any], Awaitable[Any]]) -> Any:
        return await next(call)

    async def wrap_tool_call(self, call: Any, next: Callable[[Any], Awaitable[Any]]) -> Any:
        return await next(call)


FORMS: dict[str, type[object]] = {
    "hooks": NoOpHooks,
    "sync-hooks": NoOpSyncHooks,
    "onion": NoOpOnion,
}

LOOKUP_CALL = ToolCallPart(tool_name="lookup", args={"order_id": "A1"}, call_id="call_1")


async def lookup(order_id: str) -> str:
    """Find an order."""
    return "shipped"


def script_a(request: ModelRequest) -> str:
    return "done"


def script_b(request: ModelRequest) -> str | ToolCallPart:
    return "done" if request.messages[-1].role == "tool" else LOOKUP_CALL


def build(run: str, form: str, layers: int) -> Orchestrator:
    model = ScriptedModel(script_a if run == "a" else script_b)
    tools = [lookup] if run == "b" else []
    agent = Agent("bench", model=model, tools=tools)
    return Orchestrator(agent, middleware=[FORMS[form]() for _ in range(layers)])


def hand_onion(
    handler: Callable[[Any], Awaitable[Any]], layers: int
) -> Callable[[Any], Awaitable[Any]]:
    """Wrap `handler` in `layers` hand-written pass-through onion layers."""

    async def layer(call: Any, next: Callable[[Any], Awaitable[Any]]) -> Any:
        return await next(call)

    def bind(next: Callable[[Any], Awaitable[Any]]) -> Callable[[Any], Awaitable[Any]]:
        return lambda call: layer(call, next)

    for _ in range(layers):
        handler = bind(handler)
    return handler


def floor(run: str, layers: int = 0) -> Callable[[], Awaitable[object]]:
    """Hand-written: await the same model and tool directly, each call (and the run and the
    turn around them) wrapped in `layers` hand-written onion layers."""
    model = ScriptedModel(script_a if run == "a" else script_b)
    call_model = hand_onion(model.request, layers)

    async def run_lookup(kwargs: dict[str, Any]) -> str:
        return await lookup(**kwargs)

    call_tool = hand_onion(run_lookup, layers)

    async def turn_a(text: str) -> object:
        messages = [Message.user(text)]
        return await call_model(ModelRequest(model=model, messages=messages))

    async def turn_b(text: str) -> object:
        messages = [Message.user(text)]
        first = await call_model(ModelRequest(model=model, messages=list(messages)))
        messages.append(first.message)
        value = await call_tool(dict(first.message.tool_calls[0].args))
        messages.append(Message("tool", [ToolReturnPart(tool_name="lookup", content=value)]))
        return await call_model(ModelRequest(model=model, messages=messages))

    call_turn = hand_onion(turn_a if run == "a" else turn_b, layers)
    call_run = hand_onion(call_turn, layers)

    async def whole() -> object:
        return await call_run("where is A1?")

    return whole


async def time_once(fn: Callable[[], Awaitable[object]], iterations: int) -> float:
    """Mean µs per call over `iterations` calls, garbage collection paused."""
    gc.disable()
    try:
        started = time.perf_counter()
        for _ in range(iterations):
            await fn()
        return (time.perf_counter() - started) / iterations * 1e6
    finally:
        gc.enable()


Key = tuple[str, str, int]


def subjects() -> dict[Key, Callable[[], Awaitable[object]]]:
    """Every configuration to time, keyed by (run, form, layers); the floor is a form."""
    subjects: dict[Key, Callable[[], Awaitable[object]]] = {}
    for run in ("a", "b"):
        subjects[(run, "floor", 0)] = floor(run)
        subjects[(run, "floor", 10)] = floor(run, 10)
        for form in FORMS:
            for layers in LAYER_COUNTS:
                orchestrator = build(run, form, layers)

                async def once(orchestrator: Orchestrator = orchestrator) -> object:
                    return await orchestrator.execute("where is A1?")

                subjects[(run, form, layers)] = once
    return subjects


async def measure(iterations: int, repeats: int) -> dict[str, Any]:
    """Time every configuration `repeats` times, round-robin, and keep each one's best.

    Round-robin spreads a noisy neighbour over all configurations alike; the minimum is the
    figure least disturbed by it (as `timeit` recommends).
    """
    timed = subjects()
    best = dict.fromkeys(timed, float("inf"))
    for subject in timed.values():  # warm-up
        await time_once(subject, max(iterations // 10, 10))
    for _ in range(repeats):
        for key, subject in timed.items():
            best[key] = min(best[key], await time_once(subject, iterations))
    return report(best)


def report(best: dict[Key, float]) -> dict[str, Any]:
    """Per run and form: µs per run, µs per layer per call, and the ratio to the floor."""
    results: dict[str, Any] = {"floor_us": {}, "onion_floor_10_us": {}, "runs": []}
    for run in ("a", "b"):
        floor_us = best[(run, "floor", 0)]
        results["floor_us"][run] = round(floor_us, 2)
        results["onion_floor_10_us"][run] = round(best[(run, "floor", 10)], 2)
        for form in FORMS:
            base = best[(run, form, 0)]
            for layers in LAYER_COUNTS:
                us = best[(run, form, layers)]
                per_layer = (us - base) / (layers * CALLS_PER_RUN[run]) if layers else 0.0
                results["runs"].append(
                    {
                        "run": run,
                        "form": form,
                        "layers": layers,
                        "us_per_run": round(us, 2),
                        "us_per_layer_per_call": round(per_layer, 3),
                        "ratio_to_floor": round(us / floor_us, 1),
                    }
                )
    return results


def print_table(results: dict[str, Any]) -> None:
    floors, onion = results["floor_us"], results["onion_floor_10_us"]
    print(f"floor: run (a) {floors['a']} µs, run (b) {floors['b']} µs (direct awaits)")
    print(f"hand-written onion floor, 10 layers: run (a) {onion['a']} µs, run (b) {onion['b']} µs")
    print(f"{'run':<4}{'form':<12}{'layers':>7}{'µs/run':>10}{'µs/layer/call':>15}{'x floor':>9}")
    for row in results["runs"]:
        print(
            f"{row['run']:<4}{row['form']:<12}{row['layers']:>7}{row['us_per_run']:>10.2f}"
            f"{row['us_per_layer_per_call']:>15.3f}{row['ratio_to_floor']:>9.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    options = parser.parse_args()
    iterations, repeats = (100, 2) if options.quick else (1000, 15)
    results = asyncio.run(measure(iterations, repeats))
    if options.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
