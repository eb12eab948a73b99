"""`onionskin runs` and `onionskin checkpoints RUN`: end to end, and their variants in process."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Cli, Filled, Invoke, one_line_error

# The checkpoints CheckpointMiddleware saves for one run of the fixture's pipeline: the
# input, the researcher's two model calls around its tool call, its turn, the writer's
# model call and turn, and the end. The failed run stops at the writer's model call.
COMPLETED_KINDS = ["input", "model", "tool", "model", "agent", "model", "agent", "end"]
FAILED_KINDS = ["input", "model", "tool", "model", "agent", "end"]


def test_runs_lists_one_tenants_runs_newest_first(filled: Filled, cli: Cli) -> None:
    listed = cli("runs", "--db", filled.url, "--tenant", "acme", "--json")

    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert [run["run_id"] for run in runs] == list(reversed(filled.runs["acme"]))
    assert {run["tenant_id"] for run in runs} == {"acme"}
    by_id = {run["run_id"]: run for run in runs}
    assert by_id[filled.failed]["status"] == "failed"
    assert by_id[filled.failed]["checkpoints"] == len(FAILED_KINDS)
    assert by_id[filled.failed]["last_step"] == len(FAILED_KINDS) - 1
    completed = [by_id[run_id] for run_id in filled.runs["acme"] if run_id != filled.failed]
    assert [run["status"] for run in completed] == ["completed", "completed"]
    assert [run["checkpoints"] for run in completed] == [len(COMPLETED_KINDS)] * 2
    assert all(run["pipeline_id"] == "report" for run in runs)
    assert all(run["started_at"] <= run["updated_at"] for run in runs)
    for other in (*filled.runs["globex"], *filled.runs[None]):
        assert other not in listed.stdout


def test_runs_without_a_tenant_lists_only_the_runs_without_one(
    filled: Filled, invoke: Invoke
) -> None:
    listed = invoke("runs", "--db", filled.url, "--json", "--limit", "5")

    assert listed.exit_code == 0, listed.output
    assert [run["run_id"] for run in json.loads(listed.stdout)] == filled.runs[None]
    assert [run["tenant_id"] for run in json.loads(listed.stdout)] == [None]


def test_runs_limit_keeps_the_newest(filled: Filled, invoke: Invoke) -> None:
    listed = invoke("runs", "--db", filled.url, "--tenant", "acme", "--limit", "1", "--json")

    assert [run["run_id"] for run in json.loads(listed.stdout)] == filled.runs["acme"][-1:]


def test_runs_table_shows_each_run_once_with_its_status(filled: Filled, invoke: Invoke) -> None:
    shown = invoke("runs", "--db", filled.url, "--tenant", "globex")

    assert shown.exit_code == 0, shown.output
    assert "Runs for tenant 'globex', newest first" in shown.stdout
    rows = [line for line in shown.stdout.splitlines() if "globex-" in line]
    assert len(rows) == len(filled.runs["globex"])
    cells = [cell.strip() for cell in rows[0].split("│")[1:-1]]
    steps = len(COMPLETED_KINDS)
    assert cells[:6] == ["globex-1", "report", "globex", "completed", str(steps - 1), str(steps)]
    for other in filled.runs["acme"]:
        assert other not in shown.stdout


def test_a_tenant_without_runs_lists_none(filled: Filled, invoke: Invoke) -> None:
    shown = invoke("runs", "--db", filled.url, "--tenant", "initech", "--json")

    assert (shown.exit_code, json.loads(shown.stdout)) == (0, [])


def test_checkpoints_shows_a_run_step_by_step(filled: Filled, cli: Cli) -> None:
    """The default database comes from ONIONSKIN_DATABASE_URL here."""
    run_id = filled.runs["acme"][0]
    shown = cli(
        "checkpoints", run_id, "--tenant", "acme", "--json",
        env={"ONIONSKIN_DATABASE_URL": filled.url},
    )  # fmt: skip

    assert shown.returncode == 0, shown.stderr
    saved = json.loads(shown.stdout)
    assert [checkpoint["kind"] for checkpoint in saved] == COMPLETED_KINDS
    assert [checkpoint["step"] for checkpoint in saved] == list(range(len(COMPLETED_KINDS)))
    parents = [checkpoint["parent_id"] for checkpoint in saved]
    assert parents == [None, *(checkpoint["checkpoint_id"] for checkpoint in saved[:-1])]
    assert {checkpoint["run_id"] for checkpoint in saved} == {run_id}
    assert [checkpoint["agent"] for checkpoint in saved[1:5]] == ["researcher"] * 4
    summaries = [checkpoint["summary"] for checkpoint in saved]
    assert summaries[0].startswith("input: tides")
    assert summaries[1].startswith("calls lookup(topic='tides')")
    assert summaries[2].startswith("lookup → facts about tides")
    assert summaries[7].startswith("output: report on notes on tides: facts about tides")
    assert saved[-1]["status"] == "completed"
    assert saved[-1]["data"]["output"] == "report on notes on tides: facts about tides"


def test_checkpoints_table_shows_why_a_run_failed(filled: Filled, invoke: Invoke) -> None:
    shown = invoke("checkpoints", filled.failed, "--db", filled.url, "--tenant", "acme")

    assert shown.exit_code == 0, shown.output
    rows = [line for line in shown.stdout.splitlines() if line.startswith("│")]
    assert [row.split("│")[4].strip() for row in rows] == FAILED_KINDS
    assert "step 0" in rows[1]  # a parent in the same run is shown by its step
    assert "failed: ModelError: the writer's provider is down" in rows[-1]


def test_another_tenants_run_is_an_unknown_run(filled: Filled, cli: Cli) -> None:
    globex_run = filled.runs["globex"][0]

    refused = cli("checkpoints", globex_run, "--db", filled.url, "--tenant", "acme")

    line = one_line_error(refused)
    assert f"no run {globex_run!r} for tenant 'acme'" in line


def test_the_store_commands_refuse_bad_options_in_one_line(filled: Filled, invoke: Invoke) -> None:
    cases = {
        ("runs", "--db", filled.url, "--limit", "0"): "--limit must be a whole number from 1",
        ("runs", "--db", filled.url, "--tenant", "a b"): "--tenant must be 1-128 characters",
        ("runs", "--db", "mysql://host/db"): "unsupported database URL scheme 'mysql'",
        ("checkpoints", "solo-1", "--db", filled.url, "--tenant", "acme"): "no run 'solo-1'",
        ("checkpoints", "acme-1", "--db", filled.url): "(a tenant's runs need --tenant TENANT)",
    }
    for args, message in cases.items():
        line = one_line_error(invoke(*args))
        assert message in line, (args, line)


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path, cli: Cli) -> None:
    refused = cli("runs")

    line = one_line_error(refused)
    assert f"no onionskin database at {tmp_path}/.onionskin/onionskin.db" in line
    assert not (tmp_path / ".onionskin").exists()
