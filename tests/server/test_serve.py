"""`onionskin serve DIR`: checks before listening, then uvicorn (replaced by a recorder here)."""

from __future__ import annotations

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


class _Pools:
    """Stands in for `WorkerPool`: records what it was given, exits with `code`."""

    def __init__(self, code: int = 0) -> None:
        self.code = code
        self.made: list[tuple[uvicorn.Config, int]] = []

    def __call__(self, config: uvicorn.Config, count: int) -> _Pools:
        self.made.append((config, count))
        return self

    def run(self) -> int:
        return self.code


def test_workers_start_from_an_import_string_that_rebuilds_the_app(
    project: Project, runs: list[Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ONIONSKIN_JWT_SECRET", SECRET)
    monkeypatch.setattr(_serve, "WorkerPool", pools := _Pools())
    url = f"sqlite:///{tmp_path}/workers.db"

    result = invoke(str(project.path), "--workers", "3", "--db", url)

    assert result.exit_code == 0, result.output
    assert runs == []
    [(config, count)] = pools.made
    assert count == 3
    assert (config.app, config.factory) == ("onionskin.cli._serve:worker_app", True)
    assert (config.host, config.port, config.workers) == ("127.0.0.1", 8000, 3)
    assert config.access_log is False
    worker = _serve.worker_app()
    assert isinstance(worker, FastAPI)
    assert worker.title == f"onionskin: {project.path.name}"


def test_serve_exits_with_the_code_of_its_workers(
    project: Project, runs: list[Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ONIONSKIN_JWT_SECRET", SECRET)
    monkeypatch.setattr(_serve, "WorkerPool", _Pools(code=3))

    result = invoke(str(project.path), "--workers", "2", "--db", f"sqlite:///{tmp_path}/w.db")

    assert result.exit_code == 3
