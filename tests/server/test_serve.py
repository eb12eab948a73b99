"""`onionskin serve DIR`: checks before listening, then uvicorn (replaced by a recorder here)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import typer
import uvicorn
from fastapi import FastAPI
from tests.server.conftest import SECRET
from typer.testing import CliRunner, Result

from onionskin.cli import _serve
from onionskin.project import Project
from onionskin.server import ServerSettings

VARIABLES = (
    "ONIONSKIN_JWT_SECRET",
    "ONIONSKIN_JWT_JWKS_URL",
    "ONIONSKIN_API_KEYS",
    "ONIONSKIN_DATABASE_URL",
    _serve.PROJECT_VARIABLE,
    _serve.DATABASE_VARIABLE,
    _serve.INSECURE_VARIABLE,
)


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """What `uvicorn.run` was called with; the environment's ONIONSKIN_* variables cleared."""
    for name in VARIABLES:
        monkeypatch.setenv(name, "")  # restored after the test, even when serve sets them
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    return calls


def invoke(*args: str) -> Result:
    app = typer.Typer()
    app.command("serve")(_serve.serve)
    app.command("other")(lambda: None)  # two commands: `serve` is then a subcommand
    return CliRunner().invoke(app, ["serve", *args])


def test_serve_runs_the_app_under_uvicorn(
    project: Project, runs: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONIONSKIN_JWT_SECRET", SECRET)

    result = invoke(str(project.path), "--port", "9001", "--db", "sqlite:///x.db")

    assert result.exit_code == 0, result.output
    [(args, kwargs)] = runs
    assert isinstance(args[0], FastAPI)
    assert kwargs == {"host": "127.0.0.1", "port": 9001, "access_log": False}
    settings: ServerSettings = args[0].state.settings
    assert settings.jwt_algorithms == ("HS256",)
    assert not settings.anonymous


def test_serve_refuses_to_start_without_a_way_to_authenticate(
    project: Project, runs: list[Any]
) -> None:
    result = invoke(str(project.path))

    assert result.exit_code == 2
    assert "no way to authenticate" in result.stderr
    assert "--insecure-local" in result.stderr
    assert runs == []


def test_insecure_local_serves_anonymously_on_loopback_only(
    project: Project, runs: list[Any]
) -> None:
    refused = invoke(str(project.path), "--insecure-local", "--host", "0.0.0.0")
    allowed = invoke(str(project.path), "--insecure-local")

    assert refused.exit_code == 2
    assert "only on this machine" in refused.stderr
    assert allowed.exit_code == 0, allowed.output
    [(args, _)] = runs
    assert args[0].state.settings.anonymous


def test_a_bad_setting_is_one_line_naming_it(
    project: Project, runs: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONIONSKIN_JWT_SECRET", "short")

    result = invoke(str(project.path))

    assert result.exit_code == 2
    assert "jwt_secret must be at least 32 bytes" in result.stderr
    assert "short" not in result.stderr.replace("too short", "")
    assert runs == []


def test_a_missing_project_is_refused(tmp_path: Path, runs: list[Any]) -> None:
    result = invoke(str(tmp_path / "nowhere"), "--insecure-local")

    assert result.exit_code == 2
    assert "is not a directory" in result.stderr
    assert runs == []


def test_workers_start_from_an_import_string_that_rebuilds_the_app(
    project: Project, runs: list[Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ONIONSKIN_JWT_SECRET", SECRET)
    url = f"sqlite:///{tmp_path}/workers.db"

    result = invoke(str(project.path), "--workers", "3", "--db", url)

    assert result.exit_code == 0, result.output
    [(args, kwargs)] = runs
    assert args == ("onionskin.cli._serve:worker_app",)
    assert kwargs == {
        "factory": True,
        "host": "127.0.0.1",
        "port": 8000,
        "workers": 3,
        "access_log": False,
    }
    worker = _serve.worker_app()
    assert isinstance(worker, FastAPI)
    assert worker.title == f"onionskin: {project.path.name}"


def test_workers_accept_one_connection_at_a_time_so_they_share_them(
    project: Project, runs: list[Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ONIONSKIN_JWT_SECRET", SECRET)
    monkeypatch.delenv("UV_TCP_SINGLE_ACCEPT", raising=False)

    result = invoke(str(project.path), "--workers", "2", "--db", f"sqlite:///{tmp_path}/w.db")

    assert result.exit_code == 0, result.output
    assert os.environ["UV_TCP_SINGLE_ACCEPT"] == "1"  # inherited by the worker processes


def test_one_worker_leaves_the_accept_behaviour_alone(
    project: Project, runs: list[Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ONIONSKIN_JWT_SECRET", SECRET)
    monkeypatch.delenv("UV_TCP_SINGLE_ACCEPT", raising=False)

    result = invoke(str(project.path), "--db", f"sqlite:///{tmp_path}/one.db")

    assert result.exit_code == 0, result.output
    assert "UV_TCP_SINGLE_ACCEPT" not in os.environ
