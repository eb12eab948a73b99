"""Tenant configs and prompt templates in SQL (seed 003's `tenant_configs` recipe).

`SqlTenantConfigProvider` serves `onionskin_tenant_configs` (one JSON object per tenant,
served while `active`) and `SqlTenantPromptContributor` serves `onionskin_tenant_prompts`
(one template per tenant, added to the system prompt as written: no `{var}` is filled, so
a tenant's text can never reach into the run's state). Both query under the tenant's
row-level security on PostgreSQL and filter by tenant themselves as well (SQLite has none).

Reads are cached per tenant for `ttl` seconds (default 30) of an injected clock; the admin
methods invalidate the cache of the instance they are called on at once, other workers see
the change when their entry expires. The tables are created by `TENANT_CONFIG_MIGRATIONS`
(component `"tenant_config"`): on SQLite when first used, on PostgreSQL by
`onionskin db migrate`.

Over 200 lines: both tables share the migration, the cache, the schema check and the write
path, read side by side here.

The classes match `ConfigProvider` and `PromptContributor` by shape: the stores layer
does not import `onionskin.tenancy`, which sits above it. For the same reason the
recognised keys' shapes are checked here on write as well as by the middleware on read.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar

from onionskin.core.clock import SYSTEM_CLOCK, Clock
from onionskin.core.errors import ConfigError
from onionskin.core.tenant import TenantContext
from onionskin.stores._migrations import Migration, ensure_schema, tenant_table_policy
from onionskin.stores._sql import SqlDatabase

V = TypeVar("V")

TENANT_CONFIG_COMPONENT = "tenant_config"
"""The migration component of the tenant config tables."""

_PROMPTS = """CREATE TABLE onionskin_tenant_prompts (
    tenant_id TEXT NOT NULL PRIMARY KEY,
    prompt_template TEXT NOT NULL,
    updated_at TEXT NOT NULL
)"""


def _configs(json_type: str, true: str) -> str:
    return f"""CREATE TABLE onionskin_tenant_configs (
    tenant_id TEXT NOT NULL PRIMARY KEY,
    config {json_type} NOT NULL,
    active BOOLEAN NOT NULL DEFAULT {true},
    updated_at TEXT NOT NULL
)"""


TENANT_CONFIG_MIGRATIONS = (
    Migration(
        version=1,
        name="tenant configs and prompt templates",
        sqlite=[_configs("TEXT", "1"), _PROMPTS],
        postgresql=[
            _configs("JSONB", "TRUE"),
            *tenant_table_policy("onionskin_tenant_configs"),
            _PROMPTS,
            *tenant_table_policy("onionskin_tenant_prompts"),
        ],
    ),
)
"""The schema of the tenant config tables, for `migrate(db, "tenant_config", ...)`."""


class TenantScoped(Protocol):
    """What a read is asked with: a `ConfigRequest` or a `PromptContext` (their tenant)."""

    @property
    def tenant_id(self) -> str | None:
        """The run's tenant, or None."""
        ...


class TenantCache(Generic[V]):
    """Values by tenant, each kept `ttl` seconds of `clock`; at most `max_tenants` of them.

    A read that began before an invalidation does not store its (maybe stale) answer.
    """

    def __init__(self, *, ttl: float, clock: Clock, max_tenants: int = 4096) -> None:
        self.ttl, self.clock, self.max_tenants = ttl, clock, max_tenants
        self._entries: dict[str, tuple[float, V]] = {}
        self._generation = 0

    def get(self, tenant_id: str) -> V | None:
        """The tenant's value while it is fresh, else None."""
        entry = self._entries.get(tenant_id)
        if entry is None or entry[0] <= self.clock.monotonic():
            return None
        return entry[1]

    def begin(self) -> int:
        """Mark the start of a read: pass the result to `put(..., since=)`."""
        return self._generation

    def put(self, tenant_id: str, value: V, *, since: int) -> None:
        """Keep `value` for the tenant, unless the cache was invalidated since `since`."""
        if since != self._generation or self.ttl <= 0:
            return
        if len(self._entries) >= self.max_tenants:
            self._entries.clear()  # simple and bounded; a cold start costs one read per tenant
        self._entries[tenant_id] = (self.clock.monotonic() + self.ttl, value)

    def invalidate(self, tenant_id: str) -> None:
        """Forget the tenant's value, also one a read in flight is about to store."""
        self._generation += 1
        self._entries.pop(tenant_id, None)


def _tenant(tenant_id: object) -> str:
    # TenantContext's checks: ids reach SQL settings and keys, so only safe ones pass.
    return TenantContext(tenant_id=tenant_id).tenant_id  # type: ignore[arg-type]  # checked


def _json_default(value: object) -> str:
    if isinstance(value, Decimal) and value.is_finite():
        return str(value)  # money stays exact; the middleware reads decimal strings
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON")


def _is_usd(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        return False
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return False
    return number.is_finite() and number >= 0


def _check_known(config: Mapping[str, Any]) -> None:
    model, settings, budget = (config.get(k) for k in ("model", "settings", "budget_limit_usd"))
    if model is not None and (not isinstance(model, str) or not model):
        raise ConfigError(f"tenant config 'model' must be a model name, got {model!r}")
    if settings is not None and not isinstance(settings, Mapping):
        raise ConfigError(f"tenant config 'settings' must be a JSON object, got {settings!r}")
    if budget is not None and not _is_usd(budget):
        raise ConfigError(f"tenant config 'budget_limit_usd' must be USD >= 0, got {budget!r}")


def _encode(config: object) -> str:
    if not isinstance(config, Mapping) or not all(isinstance(key, str) for key in config):
        raise ConfigError(f"a tenant config must be a JSON object (a dict), got {config!r}")
    _check_known(config)
    try:
        return json.dumps(config, allow_nan=False, default=_json_default, sort_keys=True)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"a tenant config must be JSON: {error}") from None


class _SqlTenantTable(Generic[V]):
    """One tenant-owned table: its database, schema check, priority and read cache."""

    def __init__(self, database: SqlDatabase, *, ttl: float, clock: Clock, priority: int) -> None:
        owner = type(self).__name__
        seconds: object = ttl
        if not isinstance(database, SqlDatabase):
            raise ConfigError(f"{owner} needs a SqlDatabase, got {database!r}")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds >= 0:
            raise ConfigError(f"{owner}.ttl must be seconds >= 0 (0: no cache), got {ttl!r}")
        if type(priority) is not int:
            raise ConfigError(f"{owner}.priority must be an int, got {priority!r}")
        self.database = database
        self.cache: TenantCache[V] = TenantCache(ttl=float(ttl), clock=clock)
        self._priority = priority
        self._ready = False

    def priority(self) -> int:
        """The priority given at construction."""
        return self._priority

    async def _ensure(self) -> None:
        if not self._ready:
            await ensure_schema(self.database, TENANT_CONFIG_COMPONENT, TENANT_CONFIG_MIGRATIONS)
            self._ready = True

    async def _read(self, tenant_id: str, load: Callable[[str], Awaitable[V]]) -> V:
        cached = self.cache.get(tenant_id)
        if cached is not None:
            return cached
        since = self.cache.begin()
        await self._ensure()
        value = await load(tenant_id)
        self.cache.put(tenant_id, value, since=since)
        return value

    async def _write(self, tenant_id: str, sql: str, params: Mapping[str, Any]) -> int:
        await self._ensure()
        values = {"t": tenant_id, **params}
        try:
            return await self.database.write(
                lambda db: db.execute(sql, values).rowcount, tenant_id=tenant_id
            )
        finally:
            # Also after a failure: a write may have landed before an error on commit.
            self.cache.invalidate(tenant_id)

    def _now(self) -> str:
        return datetime.fromtimestamp(self.cache.clock.time(), UTC).isoformat()


_SELECT_CONFIG = (
    "SELECT config FROM onionskin_tenant_configs WHERE tenant_id = :t AND active = :yes"
)
_SELECT_PROMPT = "SELECT prompt_template FROM onionskin_tenant_prompts WHERE tenant_id = :t"
_UPSERT_CONFIG = """INSERT INTO onionskin_tenant_configs (tenant_id, config, active, updated_at)
VALUES (:t, {config}, :active, :now)
ON CONFLICT (tenant_id) DO UPDATE SET
    config = excluded.config, active = excluded.active, updated_at = excluded.updated_at"""


class SqlTenantConfigProvider(_SqlTenantTable[Mapping[str, Any]]):
    """Each tenant's config from `onionskin_tenant_configs` (seed 003's provider).

    Args:
        database: the SQL database holding the tables.
        ttl: seconds a tenant's config is served from this instance's cache (0: never).
        clock: where the cache reads the time.
        priority: seed 003's 100: above static defaults.
    """

    def __init__(
        self,
        database: SqlDatabase,
        *,
        ttl: float = 30.0,
        clock: Clock = SYSTEM_CLOCK,
        priority: int = 100,
    ) -> None:
        super().__init__(database, ttl=ttl, clock=clock, priority=priority)

    async def get_config(self, request: TenantScoped, /) -> dict[str, Any]:
        """The tenant's active config (a copy), or `{}` (also for a run without a tenant)."""
        tenant = request.tenant_id
        if tenant is None:
            return {}
        return copy.deepcopy(dict(await self._read(tenant, self._load)))

    async def _load(self, tenant_id: str) -> Mapping[str, Any]:
        row = await self.database.read(
            lambda db: db.execute(_SELECT_CONFIG, {"t": tenant_id, "yes": True}).first(),
            tenant_id=tenant_id,
        )
        if row is None:
            return {}
        # PostgreSQL's driver decodes JSONB itself; SQLite holds the JSON text.
        value = row[0]
        return json.loads(value) if isinstance(value, str) else dict(value)

    async def set_config(
        self, tenant_id: str, config: Mapping[str, Any], *, active: bool = True
    ) -> None:
        """Store the tenant's config, replacing any; a bad one raises and changes nothing."""
        tenant = _tenant(tenant_id)
        encoded = _encode(config)
        if not isinstance(active, bool):
            raise ConfigError(f"active must be True or False, got {active!r}")
        cast = "CAST(:config AS JSONB)" if self.database.dialect == "postgresql" else ":config"
        params = {"config": encoded, "active": active, "now": self._now()}
        await self._write(tenant, _UPSERT_CONFIG.format(config=cast), params)

    async def delete(self, tenant_id: str) -> bool:
        """Remove the tenant's config; True if there was one."""
        sql = "DELETE FROM onionskin_tenant_configs WHERE tenant_id = :t"
        return await self._write(_tenant(tenant_id), sql, {}) > 0


class SqlTenantPromptContributor(_SqlTenantTable[str]):
    """Each tenant's prompt template from `onionskin_tenant_prompts` (seed 003's contributor).

    Args:
        database: the SQL database holding the tables.
        ttl: seconds a tenant's template is served from this instance's cache (0: never).
        clock: where the cache reads the time.
        priority: seed 003's 80.
    """

    def __init__(
        self,
        database: SqlDatabase,
        *,
        ttl: float = 30.0,
        clock: Clock = SYSTEM_CLOCK,
        priority: int = 80,
    ) -> None:
        super().__init__(database, ttl=ttl, clock=clock, priority=priority)

    async def get_contribution(self, context: TenantScoped, /) -> str:
        """The tenant's template, or "" (also for a run without a tenant)."""
        tenant = context.tenant_id
        return "" if tenant is None else await self._read(tenant, self._load)

    async def _load(self, tenant_id: str) -> str:
        value = await self.database.read(
            lambda db: db.execute(_SELECT_PROMPT, {"t": tenant_id}).scalar(), tenant_id=tenant_id
        )
        return "" if value is None else str(value)

    async def set_prompt(self, tenant_id: str, template: str) -> None:
        """Store the tenant's template, replacing any; a non-str raises and changes nothing."""
        tenant = _tenant(tenant_id)
        if not isinstance(template, str):
            raise ConfigError(f"a prompt template must be a str, got {template!r}")
        sql = (
            "INSERT INTO onionskin_tenant_prompts (tenant_id, prompt_template, updated_at) "
            "VALUES (:t, :template, :now) ON CONFLICT (tenant_id) DO UPDATE SET "
            "prompt_template = excluded.prompt_template, updated_at = excluded.updated_at"
        )
        await self._write(tenant, sql, {"template": template, "now": self._now()})

    async def delete(self, tenant_id: str) -> bool:
        """Remove the tenant's template; True if there was one."""
        sql = "DELETE FROM onionskin_tenant_prompts WHERE tenant_id = :t"
        return await self._write(_tenant(tenant_id), sql, {}) > 0
