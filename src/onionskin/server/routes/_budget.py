"""A tenant's monthly budget as the server knows it, and money as the API writes it.

The budget is the `limits.monthly_budget_usd` of the tenant's config in the tenant config
table (what `CostMiddleware` applies through `TenantConfigMiddleware`, and what `onionskin
costs` shows). The server's own `CostMiddleware` is built without a budget of its own, so
there is no other source today. A config whose limits do not parse shows no budget; the
reason goes to the log, not to the client.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from fastapi import Request

from onionskin.core.errors import ConfigError
from onionskin.core.tenant import TenantContext
from onionskin.middleware._tenant_limits import parse_limits
from onionskin.pricing import limit_micros
from onionskin.stores.sql_tenant_config import SqlTenantConfigProvider

logger = logging.getLogger("onionskin.server")


def usd(micros: int) -> str:
    """Whole micro-dollars as exact USD with six decimals: `12345` is `"0.012345"`."""
    return f"{Decimal(micros).scaleb(-6):.6f}"


async def monthly_budget(request: Request, tenant_id: str) -> int | None:
    """The tenant's monthly budget in whole micro-dollars, or None when it has none."""
    configs: SqlTenantConfigProvider = request.app.state.tenant_configs  # set by the lifespan
    config = await configs.get_config(TenantContext(tenant_id=tenant_id))
    try:
        budget = parse_limits(tenant_id, config.get("limits")).monthly_budget_usd
    except ConfigError as error:
        logger.warning("no budget for tenant %r: %s", tenant_id, error)
        return None
    return None if budget is None else limit_micros(budget)
