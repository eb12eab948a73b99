"""What the trace's fast paths keep: an open file that still follows its path, timestamps as
`datetime` writes them, per-function signatures and per-encoder secret keys that never mix.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import weakref
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from onionskin import ToolCall, ToolResult
from onionskin.middleware._trace_writer import FOLLOW_SECONDS
from onionskin.middleware.guard_pipeline import MiddlewarePipeline
from onionskin.middleware.trace import TraceConfig, TraceMiddleware
from onionskin.runtime.tool import Tool
from onionskin.testing import FakeClock

Next = Callable[[ToolCall], Awaitable[ToolResult]]


def read_records(path: Path) -> list[dict[str, Any]]:
    # By "\n" alone, as JSONL is read: `splitlines` would also cut at a U+2028 in a value.
    lines = path.read_text(encoding="utf-8").split("\n")[:-1]
    return [json.loads(line) for line in lines]


def tracer(path: Path, clock: FakeClock | None = None, **options: Any) -> TraceMiddleware:
    return TraceMiddleware(
        TraceConfig(path=path, otel=False, **options), clock=clock or FakeClock()
    )


def answer(value: Any) -> Next:
    async def next(call: ToolCall) -> ToolResult:
        return ToolResult(tool_name=call.tool_name, value=value, call_id=call.call_id)

    return next


async def record_call(trace: TraceMiddleware, number: int) -> None:
    await trace.wrap_tool_call(ToolCall(tool_name="f", kwargs={"n": number}), answer(number))


def numbers(path: Path) -> list[int]:
    return [record["arguments"]["n"] for record in read_records(path)]


async def test_a_file_moved_away_between_records_is_recreated(tmp_path: Path) -> None:
    path, clock = tmp_path / "trace.jsonl", FakeClock()
    trace = tracer(path, clock)
    await record_call(trace, 1)
    path.rename(tmp_path / "kept.jsonl")
    clock.advance(FOLLOW_SECONDS)

    await record_call(trace, 2)

    assert numbers(tmp_path / "kept.jsonl") == [1]
    assert numbers(path) == [2]
    assert path.stat().st_mode & 0o077 == 0


async def test_a_file_removed_between_records_is_recreated(tmp_path: Path) -> None:
    path, clock = tmp_path / "trace.jsonl", FakeClock()
    trace = tracer(path, clock)
    await record_call(trace, 1)
    path.unlink()
    clock.advance(FOLLOW_SECONDS)

    await record_call(trace, 2)

    assert numbers(path) == [2]


async def test_the_path_is_looked_at_again_every_follow_seconds_not_every_record(
    tmp_path: Path,
) -> None:
    path, clock = tmp_path / "trace.jsonl", FakeClock()
    trace = tracer(path, clock)
    await record_call(trace, 1)
    path.rename(tmp_path / "kept.jsonl")

    clock.advance(FOLLOW_SECONDS * 0.9)
    await record_call(trace, 2)  # a stat per record would triple a record's write
    clock.advance(FOLLOW_SECONDS * 0.1)
    await record_call(trace, 3)

    assert numbers(tmp_path / "kept.jsonl") == [1, 2]
    assert numbers(path) == [3]


async def test_every_record_is_in_the_file_when_its_call_returns(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    trace = tracer(path)
    for number in range(3):
        await record_call(trace, number)
        assert numbers(path) == list(range(number + 1))  # read by another handle


async def test_two_writers_on_one_path_rotate_it_without_losing_records(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    first = tracer(path, max_bytes=1_500, backups=20)
    second = tracer(path, max_bytes=1_500, backups=20)
    for number in range(40):
        await record_call(first if number % 2 else second, number)

    files = [path, *(path.with_name(f"trace.jsonl.{n}") for n in range(1, 21))]
    found = sorted(n for file in files if file.exists() for n in numbers(file))
    assert found == list(range(40))
    assert all(file.stat().st_size <= 1_500 for file in files if file.exists())


async def test_a_writer_whose_file_another_rotated_writes_to_the_new_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "trace.jsonl"
    first = tracer(path, max_bytes=700, backups=5)
    second = tracer(path, max_bytes=700, backups=5)
    await record_call(second, 0)  # the second writer has the file open from here on
    while path.stat().st_size < 550:
        await record_call(first, 1)
    await record_call(first, 2)  # does not fit: the first writer rotates

    await record_call(second, 3)  # its file is full, but it is no longer the path's

    assert numbers(path) == [2, 3]  # the first writer's new file, not rotated again
    assert not path.with_name("trace.jsonl.2").exists()


async def test_a_writer_alone_measures_its_file_only_when_it_looks_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, clock = tmp_path / "trace.jsonl", FakeClock()
    trace = tracer(path, clock, max_bytes=1_000_000)
    await record_call(trace, 1)  # opens the file: measured before every record for now
    clock.advance(FOLLOW_SECONDS)
    await record_call(trace, 2)  # a look finds only its own lines
    measured: list[int] = []
    real_lseek = os.lseek

    def counted(fd: int, position: int, how: int) -> int:
        measured.append(fd)
        return real_lseek(fd, position, how)

    monkeypatch.setattr(os, "lseek", counted)
    for number in range(3, 8):
        await record_call(trace, number)

    assert measured == []  # a system call per record saved (and the caches it would cool)
    assert numbers(path) == list(range(1, 8))


async def test_lines_of_another_writer_make_it_measure_before_every_record(
    tmp_path: Path,
) -> None:
    path, clock = tmp_path / "trace.jsonl", FakeClock()
    trace = tracer(path, clock, max_bytes=1_200, backups=20)
    await record_call(trace, 0)
    clock.advance(FOLLOW_SECONDS)
    await record_call(trace, 1)  # alone so far: it counts its own bytes
    other = tracer(path, clock, max_bytes=1_200, backups=20)
    await record_call(other, 2)
    clock.advance(FOLLOW_SECONDS)
    await record_call(trace, 3)  # its look finds the other's line
    for number in range(4, 40):  # no look again from here: the size is measured per record
        await record_call(other if number % 2 else trace, number)

    files = [path, *(path.with_name(f"trace.jsonl.{n}") for n in range(1, 21))]
    found = sorted(n for file in files if file.exists() for n in numbers(file))
    assert found == list(range(40))
    assert all(file.stat().st_size <= 1_200 for file in files if file.exists())


def test_the_file_is_closed_with_its_middleware(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"

    def handles() -> int:
        """How many of this process's descriptors are open on the trace file."""
        links = (os.path.join("/proc/self/fd", fd) for fd in os.listdir("/proc/self/fd"))
        return sum(1 for link in links if os.path.realpath(link) == str(path.resolve()))

    trace = tracer(path)
    asyncio.run(record_call(trace, 1))
    asyncio.run(record_call(trace, 2))
    assert handles() == 1  # kept open between records, and only one

    del trace
    gc.collect()

    assert handles() == 0


@pytest.mark.parametrize(
    "timestamp",
    [
        1_700_000_000.0,
        1_700_000_000.123456,
        1_700_000_000.9999996,  # rounds up into the next second
        1_700_000_000.0000005,  # half a microsecond: to even
        1_700_000_059.5,
        0.25,
        -1.5,  # before the epoch
    ],
)
async def test_started_at_is_written_as_datetime_isoformat_writes_it(
    tmp_path: Path, timestamp: float
) -> None:
    path = tmp_path / "trace.jsonl"
    await record_call(tracer(path, FakeClock(start=timestamp)), 1)

    (record,) = read_records(path)
    expected = datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="microseconds")
    assert record["started_at"] == expected


async def test_calls_in_one_second_each_get_their_own_microseconds(tmp_path: Path) -> None:
    clock = FakeClock(start=1_700_000_000.25)
    path = tmp_path / "trace.jsonl"
    trace = tracer(path, clock)
    await record_call(trace, 1)
    clock.advance(0.5)
    await record_call(trace, 2)
    clock.advance(1.0)
    await record_call(trace, 3)

    stamps = [record["started_at"] for record in read_records(path)]
    assert stamps == [
        "2023-11-14T22:13:20.250000+00:00",
        "2023-11-14T22:13:20.750000+00:00",
        "2023-11-14T22:13:21.750000+00:00",
    ]


async def test_each_function_binds_its_arguments_by_its_own_parameters(tmp_path: Path) -> None:
    def login(user: str, password: str) -> str:
        return "ok"

    def lookup(password_hint: str, user: str) -> str:
        return "ok"

    path = tmp_path / "trace.jsonl"
    pipeline = MiddlewarePipeline(extra_middleware=[tracer(path)])
    for function in (login, lookup, login):
        await pipeline.execute(function, args=("a", "b"))

    assert [record["arguments"] for record in read_records(path)] == [
        {"user": "a", "password": "[REDACTED]"},
        {"password_hint": "[REDACTED]", "user": "b"},
        {"user": "a", "password": "[REDACTED]"},
    ]


async def test_a_traced_function_can_still_be_collected(tmp_path: Path) -> None:
    def make() -> Callable[[str, str], str]:
        def login(user: str, password: str) -> str:
            return "ok"

        return login

    function = make()
    collected = weakref.ref(function)
    trace = tracer(tmp_path / "trace.jsonl")
    call = ToolCall(tool_name="login", args=("ann", "x"), tool=Tool(function))
    await trace.wrap_tool_call(call, answer("ok"))

    del function, call
    gc.collect()

    assert collected() is None


async def test_positional_arguments_the_function_refuses_are_kept_as_a_list(
    tmp_path: Path,
) -> None:
    def one(user: str) -> str:
        return "ok"

    path = tmp_path / "trace.jsonl"
    call = ToolCall(tool_name="one", args=("a", "b"), tool=Tool(one))
    await tracer(path).wrap_tool_call(call, answer("ok"))

    assert read_records(path)[0]["arguments"] == {"args": ["a", "b"], "kwargs": {}}


async def test_secret_keys_are_known_per_middleware(tmp_path: Path) -> None:
    mine = tracer(tmp_path / "mine.jsonl", redact_keys=("order",))
    default = tracer(tmp_path / "default.jsonl")
    for trace in (mine, default, mine, default):
        call = ToolCall(tool_name="f", kwargs={"order_id": "A1", "password": "p"})
        await trace.wrap_tool_call(call, answer(0))

    mine_args = [r["arguments"] for r in read_records(tmp_path / "mine.jsonl")]
    default_args = [r["arguments"] for r in read_records(tmp_path / "default.jsonl")]
    assert mine_args == [{"order_id": "[REDACTED]", "password": "p"}] * 2
    assert default_args == [{"order_id": "A1", "password": "[REDACTED]"}] * 2


async def test_secret_keys_are_redacted_however_many_keys_were_seen(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    trace = tracer(path, max_bytes=10**8)
    many = {f"field_{index}": index for index in range(3_000)}
    long_key = "the_" * 40 + "api_key"
    await trace.wrap_tool_call(ToolCall(tool_name="f", kwargs=many), answer(0))
    kwargs = {"password": "p", long_key: "k", "field_2999_token": "t", "field_1": 1}
    for _ in range(2):
        await trace.wrap_tool_call(ToolCall(tool_name="f", kwargs=kwargs), answer(0))

    for record in read_records(path)[1:]:
        assert record["arguments"] == {
            "password": "[REDACTED]",
            long_key: "[REDACTED]",
            "field_2999_token": "[REDACTED]",
            "field_1": 1,
        }


async def test_values_read_back_as_they_were_written(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    value = {"tiny": 1e-7, "huge": 2**70, "text": 'é 😀 \u2028 \x00 "q" \\', "list": [1.5, None]}
    await tracer(path).wrap_tool_call(ToolCall(tool_name="f", kwargs=value), answer(value))

    (record,) = read_records(path)
    assert record["arguments"] == value
    assert record["result"] == value


async def test_text_utf8_cannot_encode_is_traced_escaped_not_raised(tmp_path: Path) -> None:
    from onionskin.middleware import MiddlewarePipeline, TraceConfig, TraceMiddleware

    path = tmp_path / "trace.jsonl"
    tracer = TraceMiddleware(TraceConfig(path=path, otel=False))

    async def echo(text: str) -> str:
        return text

    result = await MiddlewarePipeline(extra_middleware=[tracer]).execute(
        echo, kwargs={"text": "bad \ud800 text"}
    )
    assert result.value == "bad \ud800 text"
    record = json.loads(path.read_text().splitlines()[-1])
    assert "\ud800" in json.dumps(record["arguments"], ensure_ascii=False)
