"""`onionskin costs`: exact totals from the ledger, by agent and model, against budgets."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from onionskin.stores._sql import SqlDatabase
from onionskin.stores.sql_tenant_config import SqlTenantConfigProvider
from tests.cli.conftest import ACME_BUDGET, PERIOD, Cli, Filled, Invoke, call_micros, one_line_error

RESEARCHER = call_micros("researcher", 0) + call_micros("researcher", 1)
WRITER = call_micros("writer", 0)
RUN = RESEARCHER + WRITER
"""Micro-dollars of one completed run; the failed run pays only the researcher's calls."""
ACME_TOTAL = 3 * RESEARCHER + 2 * WRITER
"""acme's two completed runs and its failed one."""
ACME_CALLS = 3 * 2 + 2 * 1
RUN_CALLS = 3


def usd(micros: int) -> str:
    return f"{Decimal(micros) / 1_000_000:.6f}"


def test_costs_of_a_tenant_are_exact_by_agent_model_and_budget(filled: Filled, cli: Cli) -> None:
    shown = cli("costs", "--db", filled.url, "--tenant", "acme", "--period", PERIOD, "--json")

    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["period"] == PERIOD
    [acme] = report["tenants"]
    total = ACME_TOTAL
    assert acme["tenant_id"] == "acme"
    assert acme["calls"] == ACME_CALLS
    assert (acme["total_micros"], acme["total_usd"]) == (total, usd(total))
    assert acme["by_agent"] == {
        "researcher": {"micros": 3 * RESEARCHER, "usd": usd(3 * RESEARCHER)},
        "writer": {"micros": 2 * WRITER, "usd": usd(2 * WRITER)},
    }
    assert acme["by_model"] == {
        "small-model": {"micros": 3 * RESEARCHER, "usd": usd(3 * RESEARCHER)},
        "large-model": {"micros": 2 * WRITER, "usd": usd(2 * WRITER)},
    }
    limit = int(Decimal(ACME_BUDGET) * 1_000_000)
    assert acme["budget"] == {
        "limit_usd": usd(limit),
        "remaining_usd": usd(limit - total),
        "used_pct": str((Decimal(total * 100) / limit).quantize(Decimal("0.1"))),
        "source": "tenant config",
    }


def test_costs_table_has_a_row_per_tenant_and_never_mixes_them(filled: Filled, cli: Cli) -> None:
    shown = cli(
        "costs", "--db", filled.url, "--tenant", "acme", "--tenant", "globex", "--period", PERIOD
    )  # fmt: skip

    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert f"acme, {PERIOD} (UTC): ${usd(ACME_TOTAL)} over {ACME_CALLS} model calls" in out
    assert f"globex, {PERIOD} (UTC): ${usd(RUN)} over {RUN_CALLS} model calls" in out
    assert "no budget known" in out  # globex has no budget in its config
    rows = out[out.index(f"Per tenant, {PERIOD}") :].splitlines()
    cells = {
        row.split("│")[1].strip(): [cell.strip() for cell in row.split("│")[2:-1]]
        for row in rows
        if row.startswith("│")
    }
    assert cells["acme"][:2] == [str(ACME_CALLS), usd(ACME_TOTAL)]
    assert cells["globex"] == [str(RUN_CALLS), usd(RUN), "-", "-", "-"]
    assert "By agent (acme)" in out
    assert "By model (globex)" in out


def test_costs_default_to_the_current_month_and_the_calls_without_a_tenant(
    filled: Filled, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONIONSKIN_DATABASE_URL", filled.url)
    before = f"{datetime.now(UTC):%Y-%m}"
    shown = invoke("costs", "--json")
    after = f"{datetime.now(UTC):%Y-%m}"

    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.stdout)
    assert report["period"] in {before, after}
    [nobody] = report["tenants"]
    assert (nobody["tenant_id"], nobody["calls"], nobody["total_micros"]) == (None, 0, 0)
    assert nobody["budget"] is None


def test_budget_option_applies_to_the_calls_without_a_tenant(
    filled: Filled, invoke: Invoke
) -> None:
    shown = invoke("costs", "--db", filled.url, "--period", PERIOD, "--budget", "0.01", "--json")

    [nobody] = json.loads(shown.stdout)["tenants"]
    assert nobody["total_micros"] == RUN
    assert nobody["budget"] == {
        "limit_usd": "0.010000",
        "remaining_usd": "0.000000",  # overspent: nothing is left, never a negative amount
        "used_pct": str((Decimal(RUN * 100) / 10_000).quantize(Decimal("0.1"))),
        "source": "--budget",
    }


def test_a_bad_period_is_one_line_and_exit_2(filled: Filled, cli: Cli) -> None:
    refused = cli("costs", "--db", filled.url, "--period", "2025-13")

    line = one_line_error(refused)
    assert "--period must be a UTC month written YYYY-MM, got '2025-13'" in line


def test_costs_refuse_bad_options_in_one_line(filled: Filled, invoke: Invoke) -> None:
    cases = {
        ("--period", "25-03"): "--period must be a UTC month written YYYY-MM",
        ("--budget", "lots"): "--budget must be a USD amount >= 0",
        ("--budget", "-1"): "--budget must be a USD amount >= 0",
        ("--budget", "NaN"): "--budget must be a USD amount >= 0",
        ("--tenant", "../etc"): "--tenant must be 1-128 characters",
    }
    for args, message in cases.items():
        line = one_line_error(invoke("costs", "--db", filled.url, *args))
        assert message in line, (args, line)


def test_a_malformed_budget_in_the_tenant_config_is_a_warning(
    tmp_path: Path, invoke: Invoke
) -> None:
    url = f"sqlite:///{tmp_path}/configs.db"

    async def configure() -> None:
        database = SqlDatabase(url)
        try:
            limits = {"monthly_budget_usd": "lots"}
            await SqlTenantConfigProvider(database).set_config("initech", {"limits": limits})
        finally:
            await database.aclose()

    asyncio.run(configure())
    shown = invoke("costs", "--db", url, "--tenant", "initech", "--period", PERIOD, "--json")

    assert shown.exit_code == 0, shown.output
    [initech] = json.loads(shown.stdout)["tenants"]
    assert (initech["calls"], initech["budget"]) == (0, None)
    assert "warning: no budget shown" in shown.stderr
    assert "monthly_budget_usd" in shown.stderr
