"""`onionskin init` and `onionskin run`: the example project runs, end to end, and its variants."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from onionskin.cli._template import template_files
from tests.cli.conftest import Cli, Invoke, one_line_error
from tests.cli.projects import json_of, new_project, run_ids, saved


def test_init_then_run_then_runs_checkpoints_replay_and_fork(
    cli: Cli, invoke: Invoke, tmp_path: Path
) -> None:
    """The journey of the issue: every step but the checkpoint reads in a subprocess."""
    created = cli("init", "shop")

    assert created.returncode == 0, created.stderr
    for name in template_files("shop"):
        assert f"created {Path('shop') / name}" in created.stdout
    assert 'onionskin run shop --agent assistant "Hello!"' in created.stdout
    project = tmp_path / "shop"

    ran = cli("run", "shop", "--agent", "assistant", "Hello there")

    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    run_id = lines[0].split()[1]
    assert lines[0] == f"run {run_id} started (pipeline assistant, no tenant)"
    assert lines[1:3] == ["→ agent assistant", "  → model scripted"]
    # The streamed text, then the model call's totals: the middleware's time part came first.
    assert lines[3].startswith("    (scripted) You said: [Current time: ")
    assert lines[4] == "    Hello there"
    assert lines[5].startswith("  ← model scripted: ")
    assert " out tokens, $0.000000, " in lines[5]
    assert lines[6].startswith("← agent assistant: ")
    assert f"run:      {run_id}" in lines
    assert "cost:     $0.000000" in lines
    assert "Traceback" not in ran.stderr

    listed = cli("runs", "--project", "shop", "--json")

    assert listed.returncode == 0, listed.stderr
    [summary] = json.loads(listed.stdout)
    assert (summary["run_id"], summary["pipeline_id"], summary["status"]) == (
        run_id,
        "assistant",
        "completed",
    )
    original = saved(invoke, project, run_id)
    assert [checkpoint["kind"] for checkpoint in original] == ["input", "model", "agent", "end"]
    answer = original[-1]["data"]["output"]
    assert original[-1]["state"]["customer_name"] == "our customer"

    middle = original[1]["checkpoint_id"]  # after the model answered, before the turn ended
    replayed = cli("replay", run_id, "--from", middle, "--project", "shop", "--json")

    assert replayed.returncode == 0, replayed.stderr
    again = json.loads(replayed.stdout)
    assert again["run_id"] != run_id
    assert (again["from_run"], again["from_checkpoint"]) == (run_id, middle)
    assert again["output"] == answer  # the model's saved reply, not a new call
    after = saved(invoke, project, again["run_id"])
    assert [checkpoint["kind"] for checkpoint in after] == ["agent", "end"]
    assert after[0]["parent_id"] == middle

    forked = json_of(
        invoke, "replay", run_id, "--from", original[0]["checkpoint_id"],
        "--state", "customer_name=Ada", "--state", "vip=true", "--project", str(project),
    )  # fmt: skip

    fork = saved(invoke, project, forked["run_id"])
    assert [checkpoint["kind"] for checkpoint in fork] == ["model", "agent", "end"]
    assert (fork[-1]["state"]["customer_name"], fork[-1]["state"]["vip"]) == ("Ada", True)
    system = fork[0]["messages"][0]["parts"][0]["text"]
    assert system.startswith("You are a friendly assistant helping Ada.")
    assert fork[0]["data"]["forked_from"] == original[0]["checkpoint_id"]
    assert saved(invoke, project, run_id) == original  # the original run is left as it was
    assert run_ids(invoke, project) == [forked["run_id"], again["run_id"], run_id]


def test_run_a_pipeline_for_a_tenant(invoke: Invoke, tmp_path: Path) -> None:
    project = new_project(invoke, tmp_path / "shop")

    result = json_of(
        invoke, "run", str(project), "--agent", "reviewed", "How long is this?",
        "--tenant", "acme", "--user", "ada",
    )  # fmt: skip

    assert (result["pipeline_id"], result["tenant_id"], result["stopped"]) == (
        "reviewed",
        "acme",
        False,
    )
    # The reviewer (scripted) echoes what it was given: the assistant's answer.
    assert result["output"].startswith("(scripted) You said: (scripted) You said: [Current")
    assert result["output"].endswith("How long is this?")
    assert result["cost_usd"] == "0"
    checkpoints = saved(invoke, project, result["run_id"], "--tenant", "acme")
    assert [(c["kind"], c["agent"]) for c in checkpoints if c["kind"] == "agent"] == [
        ("agent", "assistant"),
        ("agent", "reviewer"),
    ]
    model_steps = [c for c in checkpoints if c["kind"] == "model"]
    usage = result["usage"]
    assert usage["input_tokens"] == sum(
        c["data"]["totals"][c["agent"]]["input_tokens"] for c in model_steps
    )
    assert checkpoints[-1]["state"]["tenant_id"] == "acme"
    assert run_ids(invoke, project, "--tenant", "acme") == [result["run_id"]]
    assert run_ids(invoke, project) == []  # filed under the tenant only


def test_an_unknown_agent_lists_the_known_ones_and_opens_no_database(
    invoke: Invoke, tmp_path: Path
) -> None:
    project = new_project(invoke, tmp_path / "shop")

    line = one_line_error(invoke("run", str(project), "--agent", "asistant", "Hi"))

    assert line == (
        "error: the project has no agent or pipeline named 'asistant' "
        "(known: assistant, reviewed, reviewer)"
    )
    assert not (project / ".onionskin").exists()


def test_run_refuses_bad_options_in_one_line(invoke: Invoke, tmp_path: Path) -> None:
    project = str(new_project(invoke, tmp_path / "shop"))
    cases = {
        ("--agent", "../assistant"): "agent name '../assistant'",
        ("--agent", "assistant", "--tenant", "a b"): "--tenant must be 1-128 characters",
        ("--agent", "assistant", "--user", "ada"): "--user needs --tenant",
        ("--agent", "assistant", "--tenant", "t", "--user", "a/b"): "--user must be 1-128",
        ("--agent", "assistant", "--db", "mysql://h/db"): "unsupported database URL scheme",
    }
    for options, message in cases.items():
        line = one_line_error(invoke("run", project, "Hi", *options))
        assert message in line, (options, line)
    missing = one_line_error(invoke("run", str(tmp_path / "nowhere"), "--agent", "a", "Hi"))
    assert "nowhere: is not a directory; give the project's folder" in missing
    assert not (tmp_path / "shop" / ".onionskin").exists()


def test_the_database_is_the_projects_own_unless_configured(
    invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--db, else onionskin.yaml (relative to the project), else the environment, else DIR."""
    monkeypatch.chdir(tmp_path)  # whatever the current folder, the project's file is used
    project = new_project(invoke, tmp_path / "shop")
    ask = ("run", str(project), "--agent", "assistant", "Hi")

    default = json_of(invoke, *ask)["run_id"]
    environment = f"sqlite:///{tmp_path}/env.db"
    monkeypatch.setenv("ONIONSKIN_DATABASE_URL", environment)
    from_env = json_of(invoke, *ask)["run_id"]
    (project / "onionskin.yaml").write_text("database_url: sqlite:///data/shop.db\n")
    configured = json_of(invoke, *ask)["run_id"]
    given = json_of(invoke, *ask, "--db", f"sqlite:///{tmp_path}/given.db")["run_id"]

    monkeypatch.delenv("ONIONSKIN_DATABASE_URL")
    (project / "onionskin.yaml").unlink()
    assert run_ids(invoke, project) == [default]
    assert (project / ".onionskin" / "onionskin.db").is_file()
    assert [r["run_id"] for r in json_of(invoke, "runs", "--db", environment)] == [from_env]
    assert (project / "data" / "shop.db").is_file()
    (project / "onionskin.yaml").write_text("database_url: sqlite:///data/shop.db\n")
    assert run_ids(invoke, project) == [configured]
    assert [
        r["run_id"] for r in json_of(invoke, "runs", "--db", f"sqlite:///{tmp_path}/given.db")
    ] == [given]
    assert not (tmp_path / "data").exists()  # relative to the project, not the current folder
    assert not (tmp_path / ".onionskin").exists()


def test_runs_with_a_project_that_is_no_folder_is_refused(invoke: Invoke, tmp_path: Path) -> None:
    line = one_line_error(invoke("runs", "--project", str(tmp_path / "nowhere")))

    assert f"--project '{tmp_path / 'nowhere'}' is not a folder" in line


def test_init_refuses_a_folder_with_files_and_changes_nothing(
    invoke: Invoke, tmp_path: Path
) -> None:
    folder = tmp_path / "busy"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")

    line = one_line_error(invoke("init", str(folder)))

    assert f"{folder} is not empty; choose a new or empty folder, or pass --force" in line
    assert [path.name for path in folder.iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    assert "exists and is not a folder" in one_line_error(invoke("init", str(tmp_path / "file")))

    forced = invoke("init", str(folder), "--force")

    assert forced.exit_code == 0, forced.output
    assert (folder / "notes.txt").read_text() == "mine"
    assert (folder / "agents" / "assistant.yaml").is_file()
    assert "# busy" in (folder / "README.md").read_text()


def test_the_help_lists_the_project_commands(invoke: Invoke) -> None:
    shown = invoke("--help")
    run_help = invoke("run", "--help")

    for command in ("init", "run", "replay", "plugins", "explain"):
        assert f"│ {command} " in shown.stdout, command
    assert "or a pipeline (pipelines/NAME.yaml)" in " ".join(run_help.stdout.split())
