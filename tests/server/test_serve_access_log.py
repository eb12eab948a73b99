"""`onionskin serve --access-log`: uvicorn's access log is off unless asked for."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
import uvicorn
from tests.server.conftest import SECRET
from tests.server.test_serve import VARIABLES, invoke

from onionskin.cli import _serve
from onionskin.project import Project

Calls = list[dict[str, Any]]


class _Pool:
    def __init__(self, config: uvicorn.Config, count: int, calls: Calls) -> None:
        calls.append({"access_log": config.access_log})

    def run(self) -> int:
        return 0


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """The settings one worker (`uvicorn.run`) or several (`WorkerPool`) were started with.

    Nothing starts here.
    """
    for name in VARIABLES:
        monkeypatch.setenv(name, "")  # restored after the test, even when serve sets them
    monkeypatch.setenv("ONIONSKIN_JWT_SECRET", SECRET)
    calls: Calls = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    monkeypatch.setattr(_serve, "WorkerPool", partial(_Pool, calls=calls))
    return calls


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_access_log_is_off_by_default(project: Project, runs: Calls, workers: str) -> None:
    result = invoke(str(project.path), "--workers", workers)

    assert result.exit_code == 0, result.output
    [kwargs] = runs
    assert kwargs["access_log"] is False


@pytest.mark.parametrize("workers", ["1", "2"])
def test_access_log_turns_it_on(project: Project, runs: Calls, workers: str) -> None:
    result = invoke(str(project.path), "--workers", workers, "--access-log")

    assert result.exit_code == 0, result.output
    [kwargs] = runs
    assert kwargs["access_log"] is True
