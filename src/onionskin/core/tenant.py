"""Who a run belongs to (seed 000's `TenantContext`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from onionskin.core.errors import TenantError

# Ids travel into store keys, file names and SQL settings: letters, digits and a few
# separators only, so that no id can smuggle a path or a key separator.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}")


def check_tenant_id(value: object, field: str = "tenant_id") -> None:
    """Refuse (with a `TenantError`) a value that is not a valid `TenantContext.<field>` id.

    The one place the id rule lives: `TenantContext` checks its fields with it, and stores
    check a bare tenant id with it without building a `TenantContext`.
    """
    if not isinstance(value, str) or not _SAFE_ID.fullmatch(value) or ".." in value:
        raise TenantError(
            f"TenantContext.{field} must be 1-128 characters of letters, digits and _ . @ -, "
            f"starting with a letter or digit; got {value!r}"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantContext:
    """The tenant identity a run carries through every layer (seed 000).

    All data is isolated at the `tenant_id` level; `workspace_id` segments an organisation;
    `user_id` is who started the run, kept for audit trails.
    """

    tenant_id: str
    """Organization identifier. All data is isolated at this level."""
    workspace_id: str | None = None
    """Workspace within the organization. Enables sub-org segmentation."""
    user_id: str | None = None
    """The user who initiated the pipeline execution. Used for audit trails."""

    def __post_init__(self) -> None:
        check_tenant_id(self.tenant_id)
        if self.workspace_id is not None:
            check_tenant_id(self.workspace_id, "workspace_id")
        if self.user_id is not None:
            check_tenant_id(self.user_id, "user_id")
