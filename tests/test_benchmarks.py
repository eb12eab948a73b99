"""The overhead benchmark still runs and reports every configuration (figures not judged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "overhead.py"


def test_overhead_benchmark_reports_every_configuration_as_json() -> None:
    completed = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(completed.stdout)
    assert set(report["floor_us"]) == {"a", "b"}
    configs = {(row["run"], row["form"], row["layers"]) for row in report["runs"]}
    assert len(configs) == 2 * 3 * 4
    assert all(row["us_per_run"] > 0 for row in report["runs"])


GUARDS = BENCH.parent / "guards.py"


def test_guard_benchmark_reports_every_guard_and_the_full_stack_as_json(redis_url: str) -> None:
    completed = subprocess.run(
        [sys.executable, str(GUARDS), "--quick", "--json", "--redis"],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    report = json.loads(completed.stdout)
    subjects = {row["subject"] for row in report["rows"]}
    assert {"bare", "pipeline", "full"} <= subjects
    assert len([s for s in subjects if s.startswith("guard:")]) == 11
    assert all(row["us_per_call"] > 0 for row in report["rows"])
    assert report["full_added_us"] > 0
    redis = {row["stack"]: row for row in report["redis"]["stacks"]}
    assert (
        report["redis"]["round_trips_per_call"]
        == redis["breaker+limiter+budget"]["round_trips_per_call"]
    )
    trips = {
        stack: (row["admission_round_trips_per_call"], row["after_call_round_trips_per_call"])
        for stack, row in redis.items()
    }
    # The issue: limiter + budget admit in ONE round trip; the breaker adds its own admit.
    # After the call: the budget's settle, and the breaker's record of the success.
    assert trips == {"limiter+budget": (1, 1), "breaker+limiter+budget": (2, 2)}
