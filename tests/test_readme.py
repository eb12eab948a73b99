"""The README's example is executed, so it cannot drift from the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def run_example(index: int) -> subprocess.CompletedProcess[str]:
    """Run the README's `index`-th Python block in a fresh interpreter."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert len(blocks) > index, f"the README lost its example number {index + 1}"
    return subprocess.run(
        [sys.executable, "-c", blocks[index]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_readme_middleware_example_runs_and_prints_what_it_promises() -> None:
    completed = run_example(0)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("org_abc123 ")
    assert lines[0].endswith(" tokens")
    assert lines[1].startswith("lookup ")
    assert lines[1].endswith(" ms")
    assert lines[-1].startswith("It shipped! ")


def test_readme_guard_example_runs() -> None:
    completed = run_example(1)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == [
        "92.00 EUR",
        "audit: search success",
        "['test-1', 'test-2'] success",
    ]


def test_readme_tenancy_example_resumes_forks_and_tracks_cost() -> None:
    completed = run_example(2)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[:2] == ["(Be brief.", "Answer in French.) answer to: hi"]
    assert lines[2:4] == ["(Be warm.", "Answer in French.) answer to: hi"]
    # gpt-4o at $2.50 / $10 per million tokens: 1200 in + 450 out = $0.0075 exactly.
    assert lines[4] == "0.0075 499.9925 {'style': Decimal('0.0075')}"


def test_readme_project_example_runs_a_project_with_a_plugin_and_explains_it() -> None:
    completed = run_example(3)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    answer = "(scripted) You said: AUTH: where is my order? (for ACME)"
    assert lines[:4] == [
        f"audit: assistant -> {answer}",
        answer,
        "audit: assistant -> Authentication required",  # stopped: the audit still saw it
        "Authentication required",
    ]
    assert lines[4:6] == ["pipeline (1 layer):", "  1. Audit (after; outermost; mandatory)"]
    assert "  1. MessageCaptureMiddleware (wrap; capture)" in lines
