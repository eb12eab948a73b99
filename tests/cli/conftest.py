"""A SQLite database and a trace file filled by real runs, and `onionskin` in a subprocess.

Five runs of a two-agent pipeline (`researcher` on `small-model` calls the `lookup` tool
once, then answers; `writer` on `large-model` writes the report) go through checkpoint,
trace and cost middleware: two runs and one failed run of tenant `acme`, one of `globex`
and one without a tenant. Every model answer has fixed token counts, so each test can work
out what the ledger must hold from `USAGE` and `PRICES` alone. The cost ledger's clock is
fixed in `PERIOD`, a month long past, so that the current month holds nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from onionskin import (
    Agent,
    Message,
    ModelError,
    ModelRequest,
    ModelResponse,
    Orchestrator,
    Pipeline,
    TenantContext,
    Tool,
    ToolReturnPart,
    Usage,
)
from onionskin.cli import app
from onionskin.middleware.checkpoint import CheckpointMiddleware
from onionskin.middleware.cost import CostMiddleware
from onionskin.middleware.trace import TraceConfig, TraceMiddleware
from onionskin.runtime.models.scripted import ScriptedModel, tool_call
from onionskin.stores._sql import SqlDatabase
from onionskin.stores.sql_checkpoints import SqlCheckpointStore
from onionskin.stores.sql_ledger import SqlCostLedger
from onionskin.stores.sql_tenant_config import SqlTenantConfigProvider
from onionskin.testing import FakeClock

PERIOD = "2025-03"
"""The UTC month every cost entry is recorded in."""
PRICES = {"small-model": (2, 10), "large-model": (5, 20)}
"""USD per million input and output tokens, by model."""
USAGE = {"researcher": [(1000, 200), (1500, 300)], "writer": [(800, 400)]}
"""Input and output tokens of each agent's model calls, in order."""
MODELS = {"researcher": "small-model", "writer": "large-model"}
ACME_BUDGET = "0.5"
"""acme's `limits.monthly_budget_usd` in the tenant config table; globex has none."""
FAIL = "fail"
"""An input with this word makes the writer's model fail (its notes quote the input)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Filled:
    """What the fixture wrote: the database, the trace file, and the runs by tenant."""

    url: str
    trace: Path
    runs: dict[str | None, list[str]]
    """Run ids by tenant (None: without a tenant), in the order they ran."""
    failed: str
    """acme's run that failed."""


def call_micros(agent: str, index: int) -> int:
    """What model call `index` of `agent` costs, in micro-dollars, from the prices."""
    tokens_in, tokens_out = USAGE[agent][index]
    price_in, price_out = PRICES[MODELS[agent]]
    return tokens_in * price_in + tokens_out * price_out  # USD/Mtok * tokens = micro-USD


def _answer(text_or_call: str | None, agent: str, index: int) -> ModelResponse:
    tokens_in, tokens_out = USAGE[agent][index]
    message = (
        Message("assistant", [tool_call("lookup", topic="tides")])
        if text_or_call is None
        else Message.assistant(text_or_call)
    )
    return ModelResponse(
        message=message,
        usage=Usage(input_tokens=tokens_in, output_tokens=tokens_out),
        model_name=MODELS[agent],
    )


def _researcher(request: ModelRequest) -> ModelResponse:
    returned = [
        part.content
        for message in request.messages
        for part in message.parts
        if isinstance(part, ToolReturnPart)
    ]
    if not returned:
        return _answer(None, "researcher", 0)
    asked = request.messages[1].text  # the run's input: the writer reads it in the notes
    return _answer(f"notes on {asked}: {returned[0]}", "researcher", 1)


def _writer(request: ModelRequest) -> ModelResponse:
    if FAIL in request.messages[-1].text:
        raise ModelError("the writer's provider is down")
    return _answer(f"report on {request.messages[-1].text}", "writer", 0)


def lookup(topic: str) -> str:
    """Look a topic up."""
    return f"facts about {topic}"


def _model(agent: str, script: Callable[[ModelRequest], ModelResponse]) -> ScriptedModel:
    price_in, price_out = PRICES[MODELS[agent]]
    return ScriptedModel(
        script, name=MODELS[agent], input_price_per_mtok=price_in, output_price_per_mtok=price_out
    )


async def _fill(url: str, trace: Path) -> Filled:
    checkpoints = await SqlCheckpointStore.open(url)
    ledger = await SqlCostLedger.open(url)
    configs = SqlDatabase(url)
    clock = FakeClock(datetime(2025, 3, 14, 12, tzinfo=UTC).timestamp())
    pipeline = Pipeline(
        [
            Agent(
                "researcher",
                model=_model("researcher", _researcher),
                tools=[Tool(lookup)],
                instructions="Research.",
            ),
            Agent("writer", model=_model("writer", _writer), instructions="Write."),
        ],
        name="report",
    )
    orchestrator = Orchestrator(
        pipeline,
        middleware=[
            CheckpointMiddleware(checkpoints),
            TraceMiddleware(TraceConfig(path=trace, otel=False)),
            CostMiddleware(ledger, clock=clock),
        ],
    )
    runs: dict[str | None, list[str]] = {"acme": [], "globex": [], None: []}
    plan = [("acme", "tides"), ("globex", "tides"), ("acme", "tides"), (None, "tides")]
    try:
        await SqlTenantConfigProvider(configs).set_config(
            "acme", {"limits": {"monthly_budget_usd": ACME_BUDGET}}
        )
        for tenant, text in [*plan, ("acme", FAIL)]:
            context = None if tenant is None else TenantContext(tenant_id=tenant)
            run_id = f"{tenant or 'solo'}-{len(runs[tenant]) + 1}"
            runs[tenant].append(run_id)
            with contextlib.suppress(ModelError):  # the last run fails on purpose
                await orchestrator.execute(text, context=context, run_id=run_id)
    finally:
        for closing in (checkpoints.aclose(), ledger.aclose(), configs.aclose()):
            await closing
    return Filled(url=url, trace=trace, runs=runs, failed=runs["acme"][-1])


@pytest.fixture(scope="session")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Filled:
    """A SQLite database and a trace file filled by five runs, once: the commands only read."""
    data = tmp_path_factory.mktemp("cli-data")
    return asyncio.run(_fill(f"sqlite:///{data}/onionskin.db", data / "trace.jsonl"))


Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """`cli("runs", "--json", env={...})`: `python -m onionskin ...` run in `tmp_path`.

    The environment names no database and no debug mode unless `env` does; output is
    plain text 250 columns wide.
    """

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        environment = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"}
        for name in ("ONIONSKIN_DATABASE_URL", "ONIONSKIN_DEBUG"):
            environment.pop(name, None)
        environment.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "onionskin", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=environment,
            cwd=tmp_path,
            check=False,
        )

    return run


Invoke = Callable[..., Result]


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """`invoke("runs", "--json")`: the app in this process, for the many small variants.

    Each command also runs in a subprocess in some test; in process the same app answers
    without paying an interpreter's start-up per case.
    """
    monkeypatch.setenv("COLUMNS", "250")
    for name in ("ONIONSKIN_DATABASE_URL", "ONIONSKIN_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(app, list(args))

    return run


def one_line_error(completed: subprocess.CompletedProcess[str] | Result) -> str:
    """The error line of a failed command, checked to be exactly one line and no traceback."""
    if isinstance(completed, subprocess.CompletedProcess):
        code = completed.returncode
    else:
        code = completed.exit_code
    assert code == 2, completed
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in completed.stderr
    assert completed.stdout == ""
    return lines[0]
