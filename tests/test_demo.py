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
