"""The organization's spend and budget, from the cost ledger (seed 000's `TenantCostTracker`).

- `GET /api/v1/costs?period=YYYY-MM`: the month's total and calls, by agent, model and UTC
  day (calls made outside an agent count under `""`);
- `GET /api/v1/budget?period=YYYY-MM`: the monthly budget, what is spent and left, the share
  used and the alerts reached (seed 000: a warning past 80 %, exceeded at 100 %).

Each also under `/api/v1/organizations/{org_id}/...`. The period is a UTC calendar month,
the current one by default. Money is exact decimal strings, six decimals, from the ledger's
whole micro-dollars: nothing passes through a float but `utilization_pct`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from onionskin.core.clock import SYSTEM_CLOCK
from onionskin.server.auth import authenticated
from onionskin.server.routes._budget import monthly_budget, usd
from onionskin.server.routes._cost_days import daily_micros
from onionskin.server.routes._tenant_routes import READ_ERRORS, runner_of, tenant_route
from onionskin.server.tenancy import RequestTenant, request_tenant
from onionskin.tenancy.cost import current_period, utilization

router = APIRouter(prefix="/api/v1", tags=["costs"], dependencies=[Depends(authenticated)])

Tenant = Annotated[RequestTenant, Depends(request_tenant)]
Period = Annotated[
    str | None,
    Query(
        pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
        description="The UTC month, YYYY-MM (default: the current one).",
    ),
]
ALERTS = ((80, "warning"), (100, "exceeded"))
"""The budget shares (percent) at which `GET /budget` reports an alert, and its level."""


class CostsBody(BaseModel):
    """The organization's spend in one month."""

    period: str
    total_usd: str
    by_agent: dict[str, str] = Field(description='USD per agent ("": calls outside an agent).')
    by_model: dict[str, str] = Field(description="USD per model.")
    by_day: dict[str, str] = Field(description="USD per UTC day, YYYY-MM-DD.")
    calls: int = Field(description="Model calls recorded.")


class AlertBody(BaseModel):
    """One budget alert: reached once the spend is `threshold_pct` % of the budget."""

    threshold_pct: int
    level: str = Field(description="`warning` or `exceeded`.")
    reached: bool


class BudgetBody(BaseModel):
    """The organization's monthly budget against its spend."""

    period: str
    limit_usd: str | None = Field(description="The monthly budget; null when none is set.")
    spent_usd: str
    remaining_usd: str | None = Field(description="What is left (never below 0); null: no budget.")
    utilization_pct: float | None = Field(description="Spent as % of the budget (100: all).")
    alerts: list[AlertBody] = Field(description="Empty without a budget.")
    source: str | None = Field(description="Where the budget comes from: `tenant config`.")


@tenant_route(
    router,
    "GET",
    "/costs",
    operation_id="get_costs",
    org_operation_id="get_org_costs",
    response_model=CostsBody,
    responses=READ_ERRORS,
    summary="The organization's spend in a month, by agent, model and day",
)
async def get_costs(request: Request, tenant: Tenant, period: Period = None) -> CostsBody:
    """The month's spend: total, calls, and by agent, model and UTC day."""
    month = period or current_period(SYSTEM_CLOCK)
    ledger = runner_of(request).ledger
    totals = await ledger.totals(tenant_id=tenant.org_id, period=month)
    days = await daily_micros(ledger, tenant_id=tenant.org_id, period=month)
    return CostsBody(
        period=month,
        total_usd=usd(totals.total_micros),
        by_agent={name: usd(micros) for name, micros in totals.by_agent.items()},
        by_model={name: usd(micros) for name, micros in totals.by_model.items()},
        by_day={day: usd(micros) for day, micros in days.items()},
        calls=totals.calls,
    )


@tenant_route(
    router,
    "GET",
    "/budget",
    operation_id="get_budget",
    org_operation_id="get_org_budget",
    response_model=BudgetBody,
    responses=READ_ERRORS,
    summary="The organization's monthly budget: spent, left, alerts",
)
async def get_budget(request: Request, tenant: Tenant, period: Period = None) -> BudgetBody:
    """The month's budget, spend, what is left, the share used and the alerts reached."""
    month = period or current_period(SYSTEM_CLOCK)
    spent = await runner_of(request).ledger.spent(tenant_id=tenant.org_id, period=month)
    limit = await monthly_budget(request, tenant.org_id)
    if limit is None:
        return BudgetBody(
            period=month,
            limit_usd=None,
            spent_usd=usd(spent),
            remaining_usd=None,
            utilization_pct=None,
            alerts=[],
            source=None,
        )
    return BudgetBody(
        period=month,
        limit_usd=usd(limit),
        spent_usd=usd(spent),
        remaining_usd=usd(max(limit - spent, 0)),
        utilization_pct=round(utilization(spent, limit), 2),
        # Exact: spent / limit >= pct / 100, in whole micro-dollars (as the alerts fire).
        alerts=[
            AlertBody(threshold_pct=pct, level=level, reached=spent * 100 >= pct * limit)
            for pct, level in ALERTS
        ],
        source="tenant config",
    )
