"""The README's first Quickstart command runs the demo: it must exit 0 and print a summary."""

from __future__ import annotations

import os
import subprocess
import sys


def test_demo_command_exits_zero_and_prints_the_summary() -> None:
    env = {**os.environ, "COLUMNS": "140", "NO_COLOR": "1"}
    completed = subprocess.run(
        [sys.executable, "-m", "onionskin", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert "Summary for tenant acme" in out
    assert "Summary for tenant globex" in out
    for agent in ("triage", "lookup", "answer", "total"):
        assert agent in out
    assert "tool lookup_order" in out
    assert "shipped with DHL" in out
    assert "refund" in out


async def test_demo_in_process_prints_both_tenants_and_exact_totals() -> None:
    import io

    from rich.console import Console

    from onionskin.demo import run_demo

    buffer = io.StringIO()
    results = await run_demo(Console(file=buffer, width=140, no_color=True))

    assert [result.tenant_id for result in results] == ["acme", "globex"]
    for result in results:
        assert list(result.agents) == ["triage", "lookup", "answer"]
        assert result.cost_usd == sum(stats.cost for stats in result.agents.values())
        assert result.agents["lookup"].tool_calls == 1
    text = buffer.getvalue()
    assert "[log] agent lookup started" in text
    assert "run completed" in text


def test_cli_version_prints_the_installed_version() -> None:
    from typer.testing import CliRunner

    import onionskin
    from onionskin.cli import app

    result = CliRunner().invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.output.strip() == onionskin.__version__
