"""`TenantMiddleware`: every run belongs to a tenant (seed 000)."""

from __future__ import annotations

from onionskin.core.context import RunContext
from onionskin.core.errors import TenantError
from onionskin.core.middleware import BaseMiddleware
from onionskin.core.tenant import TenantContext


class TenantMiddleware(BaseMiddleware):
    """Puts a tenant on every run, from the run's context or its request metadata.

    The tenant given to `run(..., context=TenantContext(...))` wins; otherwise the request
    metadata's `tenant_id` (and `workspace_id`, `user_id`) are used. Metadata naming another
    tenant than the context is refused, never silently resolved. With `required=True` (the
    default) a run without a tenant is refused with `TenantError` before anything executes.
    """

    def __init__(self, *, required: bool = True) -> None:
        self.required = required

    def before_pipeline(self, context: RunContext) -> None:
        """Resolve the run's tenant, or refuse the run."""
        claimed = context.metadata.get("tenant_id")
        if context.tenant is not None:
            if claimed is not None and claimed != context.tenant.tenant_id:
                raise TenantError(
                    f"the run's tenant is {context.tenant.tenant_id!r} but its request "
                    f"metadata names {claimed!r}; refusing a run with two tenants"
                )
            return
        if claimed is not None:
            context.tenant = TenantContext(
                tenant_id=claimed,
                workspace_id=context.metadata.get("workspace_id"),
                user_id=context.metadata.get("user_id"),
            )
        elif self.required:
            raise TenantError(
                "this run has no tenant: pass run(..., context=TenantContext(tenant_id=...)) "
                "or bind request metadata with a 'tenant_id'"
            )
