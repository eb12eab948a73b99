"""`onionskin costs`: a month's spend from the cost ledger, by agent and model, against budgets.

Amounts stay whole micro-dollars from the ledger to the screen (shown with six decimals),
and shares are `Decimal` arithmetic: nothing here passes through a float. A tenant's budget
is `--budget` when given, else the `limits.monthly_budget_usd` of its config in the tenant
config table (what `CostMiddleware` applies), else unknown.

The ledger has no call that reads across tenants, by design, so the command reads the
tenants named with `--tenant` (repeat it for a table per tenant) or, without one, the calls
made outside any tenant.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer
from rich.console import Console

from onionskin.cli._cost_report import Spend, print_per_tenant, print_spend, spend_json
from onionskin.cli._errors import clear_errors
from onionskin.cli._options import DbOption, JsonOption, database_url, tenant_id
from onionskin.cli._output import console, emit_json, say
from onionskin.core.clock import SYSTEM_CLOCK
from onionskin.core.errors import ConfigError
from onionskin.core.tenant import TenantContext
from onionskin.middleware._tenant_limits import parse_limits
from onionskin.pricing import limit_micros
from onionskin.stores.ledger import check_period
from onionskin.stores.sql_ledger import SqlCostLedger
from onionskin.stores.sql_tenant_config import SqlTenantConfigProvider
from onionskin.tenancy.cost import current_period

TenantsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--tenant",
        metavar="TENANT",
        help=(
            "A tenant to total; repeat it for a table per tenant. Default: the calls made "
            "without a tenant (the ledger never reads across tenants: name each one)."
        ),
        show_default=False,
    ),
]
PeriodOption = Annotated[
    str | None,
    typer.Option(
        "--period", metavar="YYYY-MM", help="The UTC month (default: the current one).",
        show_default=False,
    ),
]  # fmt: skip
BudgetOption = Annotated[
    str | None,
    typer.Option(
        "--budget",
        metavar="USD",
        help=(
            "Compare with this monthly budget (default: each tenant's limits.monthly_budget_usd "
            "in the tenant config table, when set)."
        ),
        show_default=False,
    ),
]


def costs(
    db: DbOption = None,
    tenant: TenantsOption = None,
    period: PeriodOption = None,
    budget: BudgetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a month's model spend in USD by agent and by model, with budgets when known."""
    with clear_errors():
        month = _period(period)
        limit = None if budget is None else _budget(budget)
        # Each tenant once, in the order given; none named: the calls without a tenant.
        tenants: list[str | None] = [tenant_id(name) for name in dict.fromkeys(tenant or ())]
        url = database_url(db)
        spends = asyncio.run(_read(url, tenants or [None], month, limit))
    if as_json:
        emit_json({"period": month, "tenants": [spend_json(spend) for spend in spends]})
        return
    out = console()
    for spend in spends:
        print_spend(out, spend)
    if len(spends) > 1:
        print_per_tenant(out, month, spends)


def _period(given: str | None) -> str:
    if given is None:
        return current_period(SYSTEM_CLOCK)
    try:
        check_period(given)
    except ConfigError:
        raise ConfigError(f"--period must be a UTC month written YYYY-MM, got {given!r}") from None
    return given


def _budget(given: str) -> int:
    try:
        amount = Decimal(given)
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount < 0:
        raise ConfigError(f"--budget must be a USD amount >= 0 (like 250 or 99.50), got {given!r}")
    return limit_micros(amount)


async def _read(url: str, tenants: list[str | None], period: str, limit: int | None) -> list[Spend]:
    ledger = await SqlCostLedger.open(url)
    try:
        configs = SqlTenantConfigProvider(ledger.database, ttl=0)
        spends = []
        for tenant in tenants:
            totals = await ledger.totals(tenant_id=tenant, period=period)
            if limit is not None:
                spends.append(Spend(totals=totals, budget_micros=limit, budget_source="--budget"))
                continue
            configured = None if tenant is None else await _configured(configs, tenant)
            source = None if configured is None else "tenant config"
            spends.append(Spend(totals=totals, budget_micros=configured, budget_source=source))
        return spends
    finally:
        await ledger.aclose()


async def _configured(configs: SqlTenantConfigProvider, tenant: str) -> int | None:
    """The tenant's monthly budget from its config, as `CostMiddleware` reads it."""
    config = await configs.get_config(TenantContext(tenant_id=tenant))
    try:
        budget = parse_limits(tenant, config.get("limits")).monthly_budget_usd
    except ConfigError as error:
        # The spend is still worth showing: say why the budget is missing, on stderr.
        say(Console(stderr=True), f"warning: no budget shown: {error}")
        return None
    return None if budget is None else limit_micros(budget)
