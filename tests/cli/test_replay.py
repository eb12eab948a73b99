"""A failed run: one line, exit 1, checkpoints kept, `replay` continues it; what replay refuses."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Cli, Invoke, one_line_error
from tests.cli.projects import (
    error_lines,
    failed_run_id,
    failing_project,
    json_of,
    new_project,
    run_ids,
    saved,
)


def test_a_failed_run_is_one_line_and_exit_1_and_replay_continues_it(
    cli: Cli, invoke: Invoke, tmp_path: Path
) -> None:
    project = failing_project(invoke, tmp_path / "shop")

    failed = cli("run", "shop", "--agent", "reviewed", "Check this", "--tenant", "acme", "--json")

    assert failed.returncode == 1
    assert failed.stdout == ""  # --json prints a result only when there is one
    [line] = error_lines(failed.stderr)
    run_id = failed_run_id(line)
    assert "failed: RuntimeError: the reviewer is out to lunch (checkpoints saved; " in line
    assert line.endswith(f"onionskin replay {run_id} --project shop --tenant acme)")
    assert "Traceback" not in failed.stderr
    kept = saved(invoke, project, run_id, "--tenant", "acme")
    assert [(c["kind"], c["agent"]) for c in kept] == [
        ("input", None),
        ("model", "assistant"),
        ("agent", "assistant"),
        ("end", "reviewer"),
    ]
    assert kept[-1]["status"] == "failed"
    assert kept[-1]["data"]["error"]["message"] == "the reviewer is out to lunch"

    (project / "FAIL").unlink()
    resumed = json_of(invoke, "replay", run_id, "--project", str(project), "--tenant", "acme")

    assert (resumed["run_id"], resumed["pipeline_id"], resumed["tenant_id"]) == (
        run_id,
        "reviewed",
        "acme",
    )
    assert resumed["output"].endswith("Check this")
    steps = saved(invoke, project, run_id, "--tenant", "acme")
    assert [c["kind"] for c in steps[len(kept) :]] == ["model", "agent", "end"]
    assert steps[-1]["status"] == "completed"
    assert steps[len(kept)]["agent"] == "reviewer"  # the assistant's finished turn is not redone


def test_a_failed_run_in_text_shows_its_progress_and_debug_its_traceback(
    invoke: Invoke, tmp_path: Path
) -> None:
    project = str(failing_project(invoke, tmp_path / "shop"))

    quiet = invoke("run", project, "--agent", "reviewed", "Check this")
    loud = invoke("--debug", "run", project, "--agent", "reviewed", "Check this")

    assert quiet.exit_code == 1
    assert "✗ agent reviewer failed after " in quiet.stdout
    assert "RuntimeError: the reviewer is out to lunch" in quiet.stdout
    [line] = error_lines(quiet.stderr)
    assert f"onionskin replay {failed_run_id(line)} --project {project})" in line
    assert isinstance(loud.exception, RuntimeError)
    assert "raised by before() in middleware/reviewer.py" in loud.exception.__notes__


def test_replay_refuses_what_the_tenant_does_not_have(invoke: Invoke, tmp_path: Path) -> None:
    """Unknown runs and checkpoints, another tenant's or another run's: one line, nothing runs."""
    project = new_project(invoke, tmp_path / "shop")
    ask = ("run", str(project), "--agent", "assistant", "Hi")
    acme = json_of(invoke, *ask, "--tenant", "acme")["run_id"]
    solo = json_of(invoke, *ask)["run_id"]
    acme_step = saved(invoke, project, acme, "--tenant", "acme")[1]["checkpoint_id"]
    solo_step = saved(invoke, project, solo)[1]["checkpoint_id"]
    where = ("--project", str(project))
    cases = {
        (acme, "--from", acme_step, *where): (
            f"no checkpoint {acme_step!r} in run {acme!r} without a tenant in this database "
            "(a tenant's runs need --tenant TENANT)"
        ),
        (acme, "--from", acme_step, *where, "--tenant", "globex"): (
            f"no checkpoint {acme_step!r} in run {acme!r} for tenant 'globex' in this database"
        ),
        (solo, "--from", acme_step, *where, "--tenant", "acme"): f"in run {solo!r} for tenant",
        (acme, "--from", "nope", *where, "--tenant", "acme"): "no checkpoint 'nope'",
        ("nope", *where): "no run 'nope' without a tenant in this database",
        (solo, *where): f"run {solo!r} completed: nothing to continue; replay or fork it from",
        (solo, "--state", "a=1", *where): "--state needs --from CHECKPOINT",
        (solo, "--from", solo_step, "--state", "a", *where): "--state takes KEY=VALUE, got 'a'",
        (solo, "--from", solo_step, "--state", "=1", *where): "--state takes KEY=VALUE",
        (solo, "--from", solo_step, "--state", "a=1", "--state", "a=2", *where): "sets 'a' twice",
        (solo, "--from", solo_step, "--project", str(tmp_path)): "the project has no agents/",
    }
    for args, message in cases.items():
        line = one_line_error(invoke("replay", *args))
        assert message in line, (args, line)
    assert run_ids(invoke, project) == [solo]
    assert run_ids(invoke, project, "--tenant", "acme") == [acme]
    assert len(saved(invoke, project, solo)) == 4


def test_replay_never_creates_a_database(invoke: Invoke, tmp_path: Path) -> None:
    project = new_project(invoke, tmp_path / "shop")

    line = one_line_error(invoke("replay", "run-1", "--from", "cp-1", "--project", str(project)))

    assert f"no onionskin database at {project}/.onionskin/onionskin.db (the database of " in line
    assert not (project / ".onionskin").exists()
