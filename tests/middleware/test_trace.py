"""JSONL trace records: one per call, redacted, with errors, rotated by size."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from onionskin import (
    Agent,
    ConfigError,
    DataPart,
    Message,
    ModelHTTPError,
    ModelRequest,
    ModelResponse,
    Orchestrator,
    StopProcessing,
    TenantContext,
    ToolCall,
    ToolResult,
    ToolReturnPart,
    Usage,
)
from onionskin.middleware.guard_pipeline import MiddlewarePipeline
from onionskin.middleware.pii import PIIRedactionConfig, PIIRedactor
from onionskin.middleware.trace import DEFAULT_REDACT_KEYS, TraceConfig, TraceMiddleware
from onionskin.runtime.tool import Tool
from onionskin.testing import FakeClock, ScriptedModel, tool_call

Next = Callable[[ToolCall], Awaitable[ToolResult]]


def read_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def tracer(tmp_path: Path, clock: FakeClock | None = None, **options: Any) -> TraceMiddleware:
    config = TraceConfig(path=tmp_path / "trace.jsonl", otel=False, **options)
    return TraceMiddleware(config, clock=clock or FakeClock())


def answer(value: Any) -> Next:
    async def next(call: ToolCall) -> ToolResult:
        return ToolResult(tool_name=call.tool_name, value=value, call_id=call.call_id)

    return next


async def test_one_record_per_model_and_tool_call(tmp_path: Path) -> None:
    clock = FakeClock(start=1_700_000_000.0)

    async def lookup(city: str) -> str:
        """Look a city up."""
        clock.advance(2.5)
        return f"{city}: sunny"

    model = ScriptedModel(
        [tool_call("lookup", city="Paris"), "It is sunny."],
        name="gpt-4o-mini",
        input_price_per_mtok="0.15",
        output_price_per_mtok="0.60",
    )
    trace = TraceMiddleware(TraceConfig(directory=tmp_path / "traces", otel=False), clock=clock)
    orchestrator = Orchestrator(Agent("helper", model=model, tools=[lookup]), middleware=[trace])

    result = await orchestrator.execute(
        "weather?", context=TenantContext(tenant_id="acme", user_id="ann")
    )

    records = read_records(tmp_path / "traces" / "trace.jsonl")
    assert [(r["kind"], r["name"]) for r in records] == [
        ("model", "gpt-4o-mini"),
        ("tool", "lookup"),
        ("model", "gpt-4o-mini"),
    ]
    for record in records:
        assert (record["run_id"], record["tenant_id"], record["user_id"]) == (
            result.run_id,
            "acme",
            "ann",
        )
        assert record["agent"] == "helper"
        assert record["status"] == "ok"
        assert record["error"] is None
    assert len({r["call_id"] for r in records}) == 3
    started = [datetime.fromisoformat(r["started_at"]) for r in records]
    assert started == [
        datetime.fromtimestamp(seconds, UTC)
        for seconds in (1_700_000_000.0, 1_700_000_000.0, 1_700_000_002.5)
    ]
    assert all(r["started_at"].endswith("+00:00") for r in records)
    first, tool, last = records
    assert [r["duration_ms"] for r in records] == [0.0, 2500.0, 0.0]
    assert tool["arguments"] == {"city": "Paris"}
    assert tool["result"] == "Paris: sunny"
    assert tool["tokens"] is None
    assert tool["cost"] is None
    assert first["arguments"]["messages"][-1] == {
        "role": "user",
        "parts": [{"type": "text", "text": "weather?"}],
    }
    assert first["arguments"]["tools"] == ["lookup"]
    assert first["result"]["message"]["parts"][0]["tool_name"] == "lookup"
    assert last["result"]["message"]["parts"] == [{"type": "text", "text": "It is sunny."}]
    usage = Usage(**{f"{k}_tokens": v for k, v in last["tokens"].items()})
    assert usage.total_tokens > 0
    assert Decimal(last["cost"]) == model.cost(usage)
    total = sum(Decimal(r["cost"]) for r in records if r["kind"] == "model")
    assert total == result.cost_usd


async def test_a_plain_function_call_binds_positional_arguments_by_name(tmp_path: Path) -> None:
    def login(user: str, password: str) -> bool:
        return True

    trace = tracer(tmp_path)
    call = ToolCall(tool_name="login", args=("ann", "hunter2"), session_id="s-1", tool=Tool(login))

    result = await trace.wrap_tool_call(call, answer(True))

    assert result.value is True
    (record,) = read_records(tmp_path / "trace.jsonl")
    assert record["arguments"] == {"user": "ann", "password": "[REDACTED]"}
    assert (record["run_id"], record["tenant_id"], record["session_id"]) == (None, None, "s-1")
    assert record["call_id"]  # a fresh id when the caller gave none
    assert "hunter2" not in (tmp_path / "trace.jsonl").read_text()


async def test_a_traced_middleware_pipeline_records_the_function_call(tmp_path: Path) -> None:
    def login(user: str, password: str) -> str:
        return f"welcome {user}"

    pipeline = MiddlewarePipeline(extra_middleware=[tracer(tmp_path)])

    result = await pipeline.execute(login, args=("ann", "hunter2"), session_id="s-2")

    assert result.value == "welcome ann"
    (record,) = read_records(tmp_path / "trace.jsonl")
    assert (record["kind"], record["name"], record["session_id"]) == ("tool", "login", "s-2")
    assert record["call_id"] == result.call_id
    assert record["arguments"] == {"user": "ann", "password": "[REDACTED]"}
    assert record["result"] == "welcome ann"


async def test_positional_arguments_without_a_signature_are_kept_as_a_list(
    tmp_path: Path,
) -> None:
    trace = tracer(tmp_path)
    await trace.wrap_tool_call(ToolCall(tool_name="f", args=(1, 2), kwargs={"x": 3}), answer(0))
    (record,) = read_records(tmp_path / "trace.jsonl")
    assert record["arguments"] == {"args": [1, 2], "kwargs": {"x": 3}}


async def test_secret_keys_are_redacted_at_any_depth(tmp_path: Path) -> None:
    trace = tracer(tmp_path)
    kwargs = {
        "request": {
            "headers": {"Authorization": "Bearer abc", "X-Api-Key": "k-1", "Accept": "*/*"},
            "items": [{"db_password": "p-1", "name": "x"}, ({"apiKey": "k-2"},)],
        },
        "max_tokens": 5,
        "access_token": {"nested": "t-1"},
    }
    original = json.dumps(kwargs)

    await trace.wrap_tool_call(ToolCall(tool_name="fetch", kwargs=kwargs), answer({"secret": 1}))

    (record,) = read_records(tmp_path / "trace.jsonl")
    assert record["arguments"] == {
        "request": {
            "headers": {
                "Authorization": "[REDACTED]",
                "X-Api-Key": "[REDACTED]",
                "Accept": "*/*",
            },
            "items": [{"db_password": "[REDACTED]", "name": "x"}, [{"apiKey": "[REDACTED]"}]],
        },
        "max_tokens": 5,
        "access_token": "[REDACTED]",
    }
    assert record["result"] == {"secret": "[REDACTED]"}
    assert json.dumps(kwargs) == original  # the caller's arguments are untouched


async def test_secrets_in_model_messages_settings_and_tool_answers_are_redacted(
    tmp_path: Path,
) -> None:
    trace = tracer(tmp_path)
    tool_answer = json.dumps({"session_token": "t-9", "ok": True})
    request = ModelRequest(
        model=ScriptedModel(["ok"]),
        messages=[
            Message.user("hi"),
            Message("assistant", [tool_call("login", user="ann", password="hunter2")]),
            Message("tool", [ToolReturnPart(tool_name="login", content=tool_answer)]),
        ],
        settings={"temperature": 0.2, "api_key": "sk-1"},
    )

    async def next(request: ModelRequest) -> ModelResponse:
        return await request.model.request(request)

    await trace.wrap_model_call(request, next)

    text = (tmp_path / "trace.jsonl").read_text()
    for secret in ("hunter2", "sk-1", "t-9"):
        assert secret not in text
    (record,) = read_records(tmp_path / "trace.jsonl")
    assert record["arguments"]["settings"] == {"temperature": 0.2, "api_key": "[REDACTED]"}
    assert record["arguments"]["messages"][2]["parts"][0]["content"] == {
        "session_token": "[REDACTED]",
        "ok": True,
    }


async def test_redact_keys_replace_the_defaults(tmp_path: Path) -> None:
    trace = tracer(tmp_path, redact_keys=(*DEFAULT_REDACT_KEYS, "ssn"))
    await trace.wrap_tool_call(ToolCall(tool_name="f", kwargs={"ssn": "1", "pwd": "2"}), answer(0))
    plain = tracer(tmp_path / "plain", redact_keys=("ssn",))
    await plain.wrap_tool_call(ToolCall(tool_name="f", kwargs={"ssn": "1", "pwd": "2"}), answer(0))

    assert read_records(tmp_path / "trace.jsonl")[0]["arguments"] == {
        "ssn": "[REDACTED]",
        "pwd": "[REDACTED]",
    }
    assert read_records(tmp_path / "plain" / "trace.jsonl")[0]["arguments"] == {
        "ssn": "[REDACTED]",
        "pwd": "2",
    }


async def test_a_pii_redactor_scrubs_every_string_and_never_blocks(tmp_path: Path) -> None:
    redactor = PIIRedactor(PIIRedactionConfig(action="block", actions={"email": "mask"}))
    trace = tracer(tmp_path, redactor=redactor)
    kwargs = {"to": "ann@example.com", "card": "4111 1111 1111 1111"}

    async def failing(call: ToolCall) -> ToolResult:
        raise ValueError("no mailbox for bob@example.org")

    await trace.wrap_tool_call(ToolCall(tool_name="send", kwargs=kwargs), answer(kwargs["to"]))
    with pytest.raises(ValueError, match=r"bob@example\.org"):
        await trace.wrap_tool_call(ToolCall(tool_name="send", kwargs={}), failing)

    ok, failed = read_records(tmp_path / "trace.jsonl")
    assert ok["arguments"] == {"to": "a***@e***.com", "card": "[CARD]"}
    assert ok["result"] == "a***@e***.com"
    assert failed["error"] == {"type": "ValueError", "message": "no mailbox for b***@e***.org"}


class Opaque:
    def __repr__(self) -> str:
        return "Opaque(password in repr is scrubbed only by a redactor)"


class Broken:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


async def test_values_that_are_not_json_are_written_as_their_repr(tmp_path: Path) -> None:
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)
    kwargs: dict[str, Any] = {
        "obj": Opaque(),
        "broken": Broken(),
        "price": Decimal("0.10"),
        "day": date(2026, 1, 2),
        "blob": b"\x00\x01",
        "nan": float("nan"),
        "tags": frozenset({"a"}),
        "cyclic": cyclic,
        "mapping": {7: "int key"},
    }
    trace = tracer(tmp_path)

    await trace.wrap_tool_call(ToolCall(tool_name="f", kwargs=kwargs), answer(Opaque()))

    (record,) = read_records(tmp_path / "trace.jsonl")
    arguments = record["arguments"]
    assert arguments["obj"] == repr(Opaque())
    assert arguments["broken"] == "<Broken object>"
    assert arguments["price"] == "0.10"
    assert arguments["day"] == "2026-01-02"
    assert arguments["blob"] == "<2 bytes>"
    assert arguments["nan"] == "nan"
    assert arguments["tags"] == ["a"]
    assert arguments["mapping"] == {"7": "int key"}
    assert arguments["cyclic"][0] == 1
    assert record["result"] == repr(Opaque())


async def test_an_error_is_recorded_and_reraised_unchanged(tmp_path: Path) -> None:
    trace = tracer(tmp_path)
    error = ConnectionError("upstream down")

    async def failing(call: ToolCall) -> ToolResult:
        raise error

    with pytest.raises(ConnectionError) as raised:
        await trace.wrap_tool_call(ToolCall(tool_name="fetch", kwargs={"url": "u"}), failing)

    assert raised.value is error
    assert raised.value.__cause__ is None
    assert raised.value.__context__ is None
    (record,) = read_records(tmp_path / "trace.jsonl")
    assert record["status"] == "error"
    assert record["error"] == {"type": "ConnectionError", "message": "upstream down"}
    assert record["arguments"] == {"url": "u"}
    assert record["result"] is None


async def test_a_model_error_in_a_run_is_recorded(tmp_path: Path) -> None:
    def script(request: ModelRequest) -> str:
        raise ModelHTTPError("rate limited", status_code=429)

    trace = tracer(tmp_path)
    orchestrator = Orchestrator(
        Agent("helper", model=ScriptedModel(script, name="gpt-4o")), middleware=[trace]
    )

    with pytest.raises(ModelHTTPError) as raised:
        await orchestrator.execute("hi")

    assert raised.value.status_code == 429
    (record,) = read_records(tmp_path / "trace.jsonl")
    assert (record["kind"], record["name"], record["status"]) == ("model", "gpt-4o", "error")
    assert record["error"] == {"type": "ModelHTTPError", "message": "rate limited"}
    assert record["tokens"] is None
    assert record["cost"] is None


async def test_an_unknown_tool_is_recorded_as_a_tool_error(tmp_path: Path) -> None:
    trace = tracer(tmp_path)
    model = ScriptedModel([tool_call("nope", q=1), "sorry"])
    orchestrator = Orchestrator(Agent("helper", model=model), middleware=[trace])

    assert (await orchestrator.execute("hi")).output == "sorry"

    tool = read_records(tmp_path / "trace.jsonl")[1]
    assert (tool["kind"], tool["name"], tool["status"]) == ("tool", "nope", "error")
    assert tool["error"]["type"] == "tool_error"
    assert "unknown tool 'nope'" in tool["error"]["message"]


async def test_arguments_and_results_can_be_left_out(tmp_path: Path) -> None:
    trace = tracer(tmp_path, record_arguments=False, record_results=False)
    model = ScriptedModel(["hello"])

    async def next(request: ModelRequest) -> ModelResponse:
        return await model.request(request)

    await trace.wrap_model_call(ModelRequest(model=model, messages=[Message.user("hi")]), next)
    await trace.wrap_tool_call(ToolCall(tool_name="f", kwargs={"a": 1}), answer(2))

    model_record, tool_record = read_records(tmp_path / "trace.jsonl")
    for record in (model_record, tool_record):
        assert record["arguments"] is None
        assert record["result"] is None
    assert model_record["tokens"]["output"] > 0


async def test_the_file_rotates_by_size_and_every_line_parses(tmp_path: Path) -> None:
    trace = tracer(tmp_path, max_bytes=2_000, backups=3)
    for index in range(200):
        await trace.wrap_tool_call(
            ToolCall(tool_name="f", kwargs={"i": index}, call_id=f"c{index}"), answer(index)
        )

    path = tmp_path / "trace.jsonl"
    files = [path.with_name(f"trace.jsonl.{n}") for n in (3, 2, 1)] + [path]
    assert names(tmp_path) == sorted(p.name for p in files)
    indexes: list[int] = []
    for file in files:
        assert 0 < file.stat().st_size <= 2_000
        indexes += [record["arguments"]["i"] for record in read_records(file)]
    assert indexes == list(range(indexes[0], 200))  # oldest to newest, nothing lost between
    assert indexes[0] > 0  # older files beyond `backups` were dropped


async def test_a_record_larger_than_max_bytes_gets_a_file_of_its_own(tmp_path: Path) -> None:
    trace = tracer(tmp_path, max_bytes=300, backups=1)
    await trace.wrap_tool_call(ToolCall(tool_name="f", kwargs={"x": 1}), answer("small"))
    await trace.wrap_tool_call(ToolCall(tool_name="f", kwargs={"x": 2}), answer("y" * 1_000))

    current = read_records(tmp_path / "trace.jsonl")
    backup = read_records(tmp_path / "trace.jsonl.1")
    assert [r["arguments"]["x"] for r in backup] == [1]
    assert [r["arguments"]["x"] for r in current] == [2]


async def test_no_backups_starts_the_file_anew(tmp_path: Path) -> None:
    trace = tracer(tmp_path, max_bytes=600, backups=0)
    for index in range(20):
        await trace.wrap_tool_call(ToolCall(tool_name="f", kwargs={"i": index}), answer(0))

    assert names(tmp_path) == ["trace.jsonl"]
    indexes = [r["arguments"]["i"] for r in read_records(tmp_path / "trace.jsonl")]
    assert indexes[-1] == 19
    assert indexes[0] > 0


def test_writers_in_several_threads_keep_every_line_whole(tmp_path: Path) -> None:
    trace = tracer(tmp_path, max_bytes=20_000, backups=50)

    def worker(number: int) -> None:
        async def calls() -> None:
            for index in range(50):
                call = ToolCall(tool_name="f", kwargs={"w": number, "i": index, "pad": "x" * 80})
                await trace.wrap_tool_call(call, answer(index))

        asyncio.run(calls())

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    records = [r for file in tmp_path.iterdir() for r in read_records(file)]
    assert len(records) == 200
    assert len(list(tmp_path.iterdir())) > 1
    assert {(r["arguments"]["w"], r["arguments"]["i"]) for r in records} == {
        (w, i) for w in range(4) for i in range(50)
    }


async def test_a_failing_write_is_logged_once_and_never_fails_the_call(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "gone"
    trace = TraceMiddleware(TraceConfig(directory=folder, otel=False), clock=FakeClock())
    folder.rmdir()

    with caplog.at_level(logging.WARNING, logger="onionskin.trace"):
        for _ in range(3):
            result = await trace.wrap_tool_call(ToolCall(tool_name="f"), answer("v"))
            assert result.value == "v"

    assert len([r for r in caplog.records if "cannot be written" in r.message]) == 1
    folder.mkdir()
    await trace.wrap_tool_call(ToolCall(tool_name="f"), answer("v"))
    assert len(read_records(folder / "trace.jsonl")) == 1


def test_the_trace_file_is_private_to_its_owner(tmp_path: Path) -> None:
    trace = tracer(tmp_path)
    asyncio.run(trace.wrap_tool_call(ToolCall(tool_name="f"), answer(1)))
    assert (tmp_path / "trace.jsonl").stat().st_mode & 0o077 == 0


def test_a_directory_that_cannot_be_created_fails_at_construction(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot create"):
        TraceMiddleware(TraceConfig(path=blocker / "sub" / "trace.jsonl"))


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"path": "t.jsonl", "max_bytes": 0}, "max_bytes"),
        ({"path": "t.jsonl", "max_bytes": -5}, "max_bytes"),
        ({"path": "t.jsonl", "max_bytes": True}, "max_bytes"),
        ({"path": "t.jsonl", "max_bytes": 1.5}, "max_bytes"),
        ({"path": "t.jsonl", "backups": -1}, "backups"),
        ({"path": ""}, "path"),
        ({"path": 42}, "path"),
        ({"directory": b"bytes"}, "directory"),
        ({"path": "t.jsonl", "directory": "d"}, "directory"),
        ({"path": "t.jsonl", "redact_keys": "password"}, "redact_keys"),
        ({"path": "t.jsonl", "redact_keys": ("password", "")}, "redact_keys"),
        ({"path": "t.jsonl", "redactor": "emails"}, "redactor"),
        ({"path": "t.jsonl", "record_arguments": "yes"}, "record_arguments"),
        ({"path": "t.jsonl", "record_results": 1}, "record_results"),
        ({"path": "t.jsonl", "otel": None}, "otel"),
        ({"otel": False}, "path"),
    ],
)
def test_bad_config_raises_config_error_naming_the_field(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError, match=field):
        TraceConfig(**options)


def test_the_middleware_checks_its_config_type() -> None:
    with pytest.raises(ConfigError, match="TraceConfig"):
        TraceMiddleware({"path": "t.jsonl"})  # type: ignore[arg-type]


async def test_stop_processing_is_recorded_as_stopped_not_failed(tmp_path: Path) -> None:
    trace = tracer(tmp_path)

    async def stopping(call: ToolCall) -> ToolResult:
        raise StopProcessing("enough")

    with pytest.raises(StopProcessing):
        await trace.wrap_tool_call(ToolCall(tool_name="f"), stopping)

    (record,) = read_records(tmp_path / "trace.jsonl")
    assert record["status"] == "stopped"
    assert record["error"] is None


class PricelessModel(ScriptedModel):
    def cost(self, usage: Usage) -> Decimal:
        raise LookupError("no price for this model")


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str")


async def test_odd_inputs_never_break_the_trace(tmp_path: Path) -> None:
    """A missing price, a broken __str__, binary parts, a long repr, unbindable arguments."""
    trace = tracer(tmp_path)
    model = PricelessModel(["ok"])
    image = Message("user", [DataPart(data=b"\x89PNG", mime_type="image/png")])

    async def next(request: ModelRequest) -> ModelResponse:
        return await model.request(request)

    def one(a: int) -> int:
        return a

    async def failing(call: ToolCall) -> ToolResult:
        raise Unprintable

    await trace.wrap_model_call(ModelRequest(model=model, messages=[image]), next)
    long_value = Opaque(), "x" * 5_000
    call = ToolCall(tool_name="one", args=(1, 2), tool=Tool(one), kwargs={"v": long_value})
    await trace.wrap_tool_call(call, answer(1))
    with pytest.raises(Unprintable):
        await trace.wrap_tool_call(ToolCall(tool_name="one"), failing)

    model_record, tool_record, failed = read_records(tmp_path / "trace.jsonl")
    assert model_record["cost"] is None
    assert model_record["tokens"] is not None
    assert model_record["arguments"]["messages"][0]["parts"] == [
        {"type": "data", "mime_type": "image/png", "size": 4}
    ]
    assert tool_record["arguments"]["args"] == [1, 2]  # two values for one parameter
    assert tool_record["arguments"]["kwargs"]["v"][1] == "x" * 5_000
    assert failed["error"] == {"type": "Unprintable", "message": ""}


async def test_a_long_repr_is_cut(tmp_path: Path) -> None:
    class Huge:
        def __repr__(self) -> str:
            return "h" * 10_000

    trace = tracer(tmp_path)
    await trace.wrap_tool_call(ToolCall(tool_name="f", kwargs={"h": Huge()}), answer(None))
    (record,) = read_records(tmp_path / "trace.jsonl")
    assert record["arguments"]["h"] == "h" * 2_000 + "..."
