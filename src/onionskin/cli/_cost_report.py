"""`onionskin costs`' report: a tenant's spend as JSON, as lines and tables, against its budget.

Money stays whole micro-dollars up to the moment it is shown with six decimals, and the
share of a budget is `Decimal` arithmetic: nothing here passes through a float.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from rich.console import Console

from onionskin.cli._output import JsonValue, add_row, say, table, tenant_label, usd
from onionskin.stores.ledger import CostTotals


@dataclass(frozen=True, slots=True, kw_only=True)
class Spend:
    """One tenant's totals for the period, and its budget when one is known."""

    totals: CostTotals
    budget_micros: int | None
    budget_source: str | None
    """`"--budget"` or `"tenant config"`."""


def _used(spend: Spend) -> Decimal | None:
    """The share of the budget spent, in percent to one decimal (100 for a zero budget)."""
    limit = spend.budget_micros
    if limit is None:
        return None
    if limit == 0:
        return Decimal(100)
    return (Decimal(spend.totals.total_micros * 100) / limit).quantize(Decimal("0.1"))


def spend_json(spend: Spend) -> JsonValue:
    """One tenant's spend as JSON: micro-dollars and USD strings, never floats."""
    totals = spend.totals
    budget: JsonValue = None
    if spend.budget_micros is not None:
        budget = {
            "limit_usd": usd(spend.budget_micros),
            "remaining_usd": usd(max(spend.budget_micros - totals.total_micros, 0)),
            "used_pct": str(_used(spend)),
            "source": spend.budget_source,
        }
    return {
        "tenant_id": totals.tenant_id,
        "calls": totals.calls,
        "total_micros": totals.total_micros,
        "total_usd": usd(totals.total_micros),
        "by_agent": {name: _money(micros) for name, micros in totals.by_agent.items()},
        "by_model": {name: _money(micros) for name, micros in totals.by_model.items()},
        "budget": budget,
    }


def _money(micros: int) -> JsonValue:
    return {"micros": micros, "usd": usd(micros)}


def print_spend(out: Console, spend: Spend) -> None:
    """One tenant's total and budget as lines, then its spend by agent and by model."""
    totals = spend.totals
    who = tenant_label(totals.tenant_id)
    spent = usd(totals.total_micros)
    say(out, f"{who}, {totals.period} (UTC): ${spent} over {totals.calls} model calls")
    if spend.budget_micros is None:
        say(out, "  no budget known (pass --budget USD to compare)")
    else:
        left = usd(max(spend.budget_micros - totals.total_micros, 0))
        say(
            out,
            f"  budget ${usd(spend.budget_micros)} ({spend.budget_source}): ${left} left, "
            f"{_used(spend)} % used",
        )
    for title, column, amounts in (
        ("By agent", "agent", totals.by_agent),
        ("By model", "model", totals.by_model),
    ):
        if not amounts:
            continue
        shown = table(f"{title} ({who})", column, "cost (USD)", right=("cost (USD)",))
        for name, micros in sorted(amounts.items(), key=lambda item: (-item[1], item[0])):
            add_row(shown, name or "(no agent)", usd(micros))
        out.print(shown)


def print_per_tenant(out: Console, period: str, spends: list[Spend]) -> None:
    """A table with one row per tenant: calls, spend, budget, what is left and the share used."""
    columns = ("tenant", "calls", "cost (USD)", "budget (USD)", "left (USD)", "used %")
    shown = table(f"Per tenant, {period} (UTC)", *columns, right=columns[1:])
    for spend in spends:
        totals, limit = spend.totals, spend.budget_micros
        add_row(
            shown,
            tenant_label(totals.tenant_id),
            str(totals.calls),
            usd(totals.total_micros),
            "-" if limit is None else usd(limit),
            "-" if limit is None else usd(max(limit - totals.total_micros, 0)),
            "-" if limit is None else str(_used(spend)),
        )
    out.print(shown)
