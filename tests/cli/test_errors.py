"""Errors: one line and a non-zero exit by default; the traceback with the global `--debug`."""

from __future__ import annotations

from pathlib import Path

import pytest

import onionskin.cli._trace
from onionskin.cli._errors import CommandError
from tests.cli.conftest import Cli, Invoke, one_line_error


def test_debug_shows_the_traceback_instead_of_one_line(cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"

    quiet = cli("trace", "show", str(missing))
    loud = cli("--debug", "trace", "show", str(missing))

    assert f"trace file {missing} does not exist" in one_line_error(quiet)
    assert loud.returncode != 0
    assert "Traceback (most recent call last)" in loud.stderr
    assert f"CommandError: trace file {missing} does not exist" in loud.stderr
    assert "read_trace" in loud.stderr  # the frames, down to where it was raised


def test_debug_can_come_from_the_environment(
    invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONIONSKIN_DEBUG", "1")

    result = invoke("trace", "show", str(tmp_path / "missing.jsonl"))

    assert isinstance(result.exception, CommandError)


def test_an_unexpected_error_is_one_line_pointing_at_debug(
    invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(path: Path) -> object:
        raise RuntimeError("the renderer broke")

    monkeypatch.setattr(onionskin.cli._trace, "read_trace", broken)

    quiet = invoke("trace", "show", str(tmp_path / "trace.jsonl"))
    loud = invoke("--debug", "trace", "show", str(tmp_path / "trace.jsonl"))

    assert quiet.exit_code == 1
    assert quiet.stderr.strip() == (
        "error: unexpected RuntimeError: the renderer broke (run again with --debug for the "
        "traceback)"
    )
    assert isinstance(loud.exception, RuntimeError)


def test_the_help_lists_every_command(invoke: Invoke) -> None:
    shown = invoke("--help")

    assert shown.exit_code == 0
    for command in ("demo", "db", "runs", "checkpoints", "costs", "trace", "version", "--debug"):
        assert command in shown.stdout
