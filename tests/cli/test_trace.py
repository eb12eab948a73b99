"""`onionskin trace show FILE`: one line per traced call and a summary; bad files in one line."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from tests.cli.conftest import USAGE, Cli, Filled, Invoke, call_micros, one_line_error

RUNS = 5
FAILED_RUNS = 1
# A completed run traces the researcher's two model calls and its tool call, then the
# writer's model call; the failed run's writer call is traced too, with its error.
MODEL_CALLS = 3 * RUNS
TOOL_CALLS = 1 * RUNS
TOKENS_IN = [sum(used[0] for used in calls) for calls in USAGE.values()]
TOKENS_OUT = [sum(used[1] for used in calls) for calls in USAGE.values()]


def test_trace_show_json_has_every_call_and_exact_totals(filled: Filled, cli: Cli) -> None:
    shown = cli("trace", "show", str(filled.trace), "--json")

    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    calls, summary = report["calls"], report["summary"]
    assert len(calls) == MODEL_CALLS + TOOL_CALLS
    assert summary["calls"] == len(calls)
    assert summary["by_kind"] == {"model": MODEL_CALLS, "tool": TOOL_CALLS}
    assert summary["by_status"] == {"ok": len(calls) - FAILED_RUNS, "error": FAILED_RUNS}
    assert summary["runs"] == RUNS
    all_runs = {run for runs in filled.runs.values() for run in runs}
    assert {call["run_id"] for call in calls} == all_runs
    # The failed run's writer used no tokens it was billed for: only the researcher's count.
    completed = RUNS - FAILED_RUNS
    assert summary["input_tokens"] == completed * sum(TOKENS_IN) + TOKENS_IN[0]
    assert summary["output_tokens"] == completed * sum(TOKENS_OUT) + TOKENS_OUT[0]
    researcher = call_micros("researcher", 0) + call_micros("researcher", 1)
    micros = completed * (researcher + call_micros("writer", 0)) + researcher
    assert Decimal(summary["cost_usd"]) == Decimal(micros) / 1_000_000
    [failed] = [call for call in calls if call["status"] == "error"]
    assert (failed["run_id"], failed["kind"], failed["name"]) == (
        filled.failed,
        "model",
        "large-model",
    )
    assert failed["error"] == {"type": "ModelError", "message": "the writer's provider is down"}
    assert failed["tenant_id"] == "acme"
    assert summary["first_started_at"] <= summary["last_started_at"]


def test_trace_show_table_has_one_line_per_call_and_a_summary(
    filled: Filled, invoke: Invoke
) -> None:
    shown = invoke("trace", "show", str(filled.trace))

    assert shown.exit_code == 0, shown.output
    rows = [line for line in shown.stdout.splitlines() if line.startswith("│")]
    assert len(rows) == MODEL_CALLS + TOOL_CALLS
    assert sum(" lookup " in row for row in rows) == TOOL_CALLS
    [failed] = [row for row in rows if " error " in row]
    assert "ModelError: the writer's provider is down" in failed
    assert filled.failed in failed
    total = MODEL_CALLS + TOOL_CALLS
    assert (
        f"{total} calls ({MODEL_CALLS} model, {TOOL_CALLS} tool) in {RUNS} runs; "
        f"status: {FAILED_RUNS} error, {total - FAILED_RUNS} ok"
    ) in shown.stdout


def test_a_malformed_line_is_named_by_file_and_number(
    filled: Filled, cli: Cli, tmp_path: Path
) -> None:
    first = filled.trace.read_text().splitlines()[0]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(f"{first}\n\n{{not json\n{first}\n")

    refused = cli("trace", "show", str(bad))

    line = one_line_error(refused)  # also: nothing of the file was shown half right
    assert f"{bad}:3: not valid JSON" in line


def test_bad_trace_files_are_refused_in_one_line(
    filled: Filled, invoke: Invoke, tmp_path: Path
) -> None:
    record = json.loads(filled.trace.read_text().splitlines()[0])
    cases = {
        "missing.jsonl": None,
        "list.jsonl": "[1, 2]",
        "no-kind.jsonl": json.dumps({k: v for k, v in record.items() if k != "kind"}),
        "negative.jsonl": json.dumps({**record, "duration_ms": -1}),
        "naive-time.jsonl": json.dumps({**record, "started_at": "2026-11-05T12:00:00"}),
        "bad-cost.jsonl": json.dumps({**record, "cost": "lots"}),
    }
    expected = {
        "missing.jsonl": "does not exist",
        "list.jsonl": ":1: not a trace record: Input should be an object",
        "no-kind.jsonl": ":1: not a trace record: kind: Field required",
        "negative.jsonl": ":1: not a trace record: duration_ms:",
        "naive-time.jsonl": ":1: not a trace record: started_at:",
        "bad-cost.jsonl": ":1: not a trace record: cost:",
    }
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text + "\n")
        line = one_line_error(invoke("trace", "show", str(path)))
        assert f"{path}" in line, line
        assert expected[name] in line, line
    directory = one_line_error(invoke("trace", "show", str(tmp_path)))
    assert f"cannot read trace file {tmp_path}" in directory


def test_an_empty_trace_file_has_no_calls(invoke: Invoke, tmp_path: Path) -> None:
    empty = tmp_path / "trace.jsonl"
    empty.write_text("\n")

    shown = invoke("trace", "show", str(empty), "--json")

    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.stdout)
    assert report["calls"] == []
    assert (report["summary"]["calls"], report["summary"]["cost_usd"]) == (0, "0")
