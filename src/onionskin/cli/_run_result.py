"""How `run` and `replay` print a finished run: its answer and totals, or one JSON object."""

from __future__ import annotations

import pydantic_core
from rich.console import Console

from onionskin.cli._output import JsonValue, say, tenant_label
from onionskin.cli._progress import money
from onionskin.runtime._result import RunResult


def output_text(output: object) -> str:
    """A run's answer as text: itself when it is text, else JSON (an `after` hook may build one)."""
    if isinstance(output, str):
        return output
    return pydantic_core.to_json(output, fallback=str).decode()


def print_result(out: Console, result: RunResult) -> None:
    """The answer, then the run's id, pipeline, tenant, tokens, cost and duration."""
    say(out, "")
    say(out, output_text(result.output))
    say(out, "")
    if result.stopped:
        say(out, "stopped early: a middleware ended the run with this answer (StopProcessing)")
    usage = result.usage
    rows = {
        "run": result.run_id,
        "pipeline": result.pipeline_id,
        "tenant": tenant_label(result.tenant_id),
        "tokens": f"{usage.input_tokens} in / {usage.output_tokens} out",
        "cost": money(result.cost_usd),
        "duration": f"{result.duration_ms:.0f} ms",
    }
    for label, value in rows.items():
        say(out, f"{label + ':':<10}{value}")


def result_json(result: RunResult, **extra: JsonValue) -> JsonValue:
    """The run as one JSON object for scripts; `cost_usd` is an exact decimal string."""
    usage = result.usage
    return {
        "run_id": result.run_id,
        "pipeline_id": result.pipeline_id,
        "tenant_id": result.tenant_id,
        **extra,
        "output": pydantic_core.to_jsonable_python(result.output, fallback=str),
        "stopped": result.stopped,
        "usage": {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cached_tokens": usage.cached_tokens,
        },
        "cost_usd": str(result.cost_usd),
        "duration_ms": result.duration_ms,
    }
