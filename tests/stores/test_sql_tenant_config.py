"""Tenant configs and prompts in SQL: round trips, isolation, RLS, the cache and bad input."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from onionskin import ConfigError, StoreError, TenantError
from onionskin.stores._migrations import migrate
from onionskin.stores._sql import SqlDatabase
from onionskin.stores.sql_tenant_config import (
    TENANT_CONFIG_COMPONENT,
    TENANT_CONFIG_MIGRATIONS,
    SqlTenantConfigProvider,
    SqlTenantPromptContributor,
    TenantCache,
)
from onionskin.tenancy.config import ConfigRequest, PromptContext
from onionskin.testing import FakeClock
from tests.conftest import SQL_BACKENDS

Factory = Callable[[str], SqlDatabase]


def request(tenant: str | None) -> ConfigRequest:
    return ConfigRequest(
        PromptContext(tenant_id=tenant, session_id=f"{tenant or ''}:s1", run_id="r1")
    )


async def database(backend: str, factory: Factory) -> SqlDatabase:
    db = factory(backend)
    if backend == "postgres":
        # As a deploy would: PostgreSQL stores never create their own tables.
        await migrate(db, TENANT_CONFIG_COMPONENT, TENANT_CONFIG_MIGRATIONS)
    return db


@pytest.mark.parametrize("backend", SQL_BACKENDS)
async def test_a_config_round_trips(backend: str, database_factory: Factory) -> None:
    provider = SqlTenantConfigProvider(await database(backend, database_factory))
    config = {
        "model": "large",
        "settings": {"temperature": 0.25, "max_tokens": 800, "stop": ["\n\n"]},
        "budget_limit_usd": Decimal("1.50"),
        "features": {"beta": True},
    }
    await provider.set_config("acme", config)
    assert await provider.get_config(request("acme")) == {
        **config,
        "budget_limit_usd": "1.50",  # money travels as an exact decimal string
    }
    assert provider.priority() == 100


@pytest.mark.parametrize("backend", SQL_BACKENDS)
async def test_a_tenant_is_never_served_another_tenants_config(
    backend: str, database_factory: Factory
) -> None:
    db = await database(backend, database_factory)
    provider = SqlTenantConfigProvider(db)
    await provider.set_config("acme", {"model": "acme-model"})
    await provider.set_config("globex", {"model": "globex-model"})
    for _ in range(2):  # cold, then warm cache
        assert await provider.get_config(request("acme")) == {"model": "acme-model"}
        assert await provider.get_config(request("globex")) == {"model": "globex-model"}
        assert await provider.get_config(request("initech")) == {}
    await provider.set_config("globex", {"model": "changed"})
    assert await provider.get_config(request("acme")) == {"model": "acme-model"}
    assert await provider.get_config(request("globex")) == {"model": "changed"}


@pytest.mark.parametrize("backend", SQL_BACKENDS)
async def test_an_inactive_config_is_not_served(backend: str, database_factory: Factory) -> None:
    provider = SqlTenantConfigProvider(await database(backend, database_factory))
    await provider.set_config("acme", {"model": "large"}, active=False)
    assert await provider.get_config(request("acme")) == {}
    await provider.set_config("acme", {"model": "large"})
    assert await provider.get_config(request("acme")) == {"model": "large"}


async def test_a_run_without_a_tenant_gets_nothing_and_queries_nothing(
    database_factory: Factory,
) -> None:
    # Not migrated: any query would fail with "schema is behind".
    db = database_factory("postgres")
    assert await SqlTenantConfigProvider(db).get_config(request(None)) == {}
    assert await SqlTenantPromptContributor(db).get_contribution(request(None).context) == ""


async def test_postgres_refuses_a_schema_that_is_behind(database_factory: Factory) -> None:
    provider = SqlTenantConfigProvider(database_factory("postgres"))
    with pytest.raises(StoreError, match="onionskin db migrate"):
        await provider.get_config(request("acme"))


@pytest.mark.parametrize("backend", SQL_BACKENDS)
async def test_another_workers_change_shows_after_the_ttl(
    backend: str, database_factory: Factory
) -> None:
    db = await database(backend, database_factory)
    clock = FakeClock()
    worker = SqlTenantConfigProvider(db, clock=clock, ttl=30)
    admin = SqlTenantConfigProvider(db, clock=clock)
    await admin.set_config("acme", {"model": "old"})
    assert await worker.get_config(request("acme")) == {"model": "old"}
    await admin.set_config("acme", {"model": "new"})
    clock.advance(29.9)
    assert await worker.get_config(request("acme")) == {"model": "old"}
    clock.advance(0.2)
    assert await worker.get_config(request("acme")) == {"model": "new"}
    # The instance that writes sees its own change at once.
    await worker.set_config("acme", {"model": "newest"})
    assert await worker.get_config(request("acme")) == {"model": "newest"}


async def test_a_zero_ttl_reads_the_database_every_time(database_factory: Factory) -> None:
    db = await database("sqlite", database_factory)
    worker, admin = SqlTenantConfigProvider(db, ttl=0), SqlTenantConfigProvider(db)
    await admin.set_config("acme", {"model": "old"})
    assert await worker.get_config(request("acme")) == {"model": "old"}
    await admin.set_config("acme", {"model": "new"})
    assert await worker.get_config(request("acme")) == {"model": "new"}


async def test_changing_a_served_config_does_not_change_the_cache(
    database_factory: Factory,
) -> None:
    provider = SqlTenantConfigProvider(await database("sqlite", database_factory))
    await provider.set_config("acme", {"settings": {"temperature": 0.1}})
    served = await provider.get_config(request("acme"))
    served["settings"]["temperature"] = 9
    assert await provider.get_config(request("acme")) == {"settings": {"temperature": 0.1}}


def test_a_read_in_flight_during_an_invalidation_is_not_cached() -> None:
    clock = FakeClock()
    cache: TenantCache[str] = TenantCache(ttl=30, clock=clock)
    since = cache.begin()
    cache.invalidate("acme")  # a write lands while the read is on its way
    cache.put("acme", "stale", since=since)
    assert cache.get("acme") is None
    cache.put("acme", "fresh", since=cache.begin())
    assert cache.get("acme") == "fresh"
    clock.advance(30)
    assert cache.get("acme") is None


def test_the_cache_stays_bounded() -> None:
    cache: TenantCache[int] = TenantCache(ttl=30, clock=FakeClock(), max_tenants=2)
    for index, tenant in enumerate(["a", "b", "c"]):
        cache.put(tenant, index, since=cache.begin())
    assert [cache.get(tenant) for tenant in "abc"] == [None, None, 2]


@pytest.mark.parametrize("backend", SQL_BACKENDS)
async def test_delete_removes_the_config(backend: str, database_factory: Factory) -> None:
    provider = SqlTenantConfigProvider(await database(backend, database_factory))
    await provider.set_config("acme", {"model": "large"})
    await provider.set_config("globex", {"model": "small"})
    assert await provider.get_config(request("acme")) == {"model": "large"}
    assert await provider.delete("acme") is True
    assert await provider.delete("acme") is False
    assert await provider.get_config(request("acme")) == {}
    assert await provider.get_config(request("globex")) == {"model": "small"}


BAD_CONFIGS: list[tuple[Any, str]] = [
    (["model", "large"], "must be a JSON object"),
    ({1: "x"}, "must be a JSON object"),
    ({"x": float("nan")}, "must be JSON"),
    ({"x": object()}, "must be JSON"),
    ({"model": 5}, "'model' must be a model name"),
    ({"model": ""}, "'model' must be a model name"),
    ({"settings": "hot"}, "'settings' must be a JSON object"),
    ({"budget_limit_usd": -1}, "'budget_limit_usd' must be USD >= 0"),
    ({"budget_limit_usd": "lots"}, "'budget_limit_usd' must be USD >= 0"),
    ({"budget_limit_usd": True}, "'budget_limit_usd' must be USD >= 0"),
    ({"budget_limit_usd": float("inf")}, "'budget_limit_usd' must be USD >= 0"),
]


@pytest.mark.parametrize(("config", "message"), BAD_CONFIGS)
async def test_a_bad_config_is_refused_and_changes_nothing(
    config: Any, message: str, database_factory: Factory
) -> None:
    provider = SqlTenantConfigProvider(await database("sqlite", database_factory))
    await provider.set_config("acme", {"model": "large"})
    with pytest.raises(ConfigError, match=message):
        await provider.set_config("acme", config)
    assert await provider.get_config(request("acme")) == {"model": "large"}


@pytest.mark.parametrize("tenant", ["", "../etc", "a b", "x" * 200, None])
async def test_a_bad_tenant_id_is_refused(tenant: Any, database_factory: Factory) -> None:
    db = await database("sqlite", database_factory)
    with pytest.raises(TenantError, match="tenant_id"):
        await SqlTenantConfigProvider(db).set_config(tenant, {})
    with pytest.raises(TenantError, match="tenant_id"):
        await SqlTenantPromptContributor(db).set_prompt(tenant, "hi")
    with pytest.raises(TenantError, match="tenant_id"):
        await SqlTenantPromptContributor(db).delete(tenant)


async def test_a_non_bool_active_flag_is_refused(database_factory: Factory) -> None:
    provider = SqlTenantConfigProvider(await database("sqlite", database_factory))
    with pytest.raises(ConfigError, match="active must be True or False"):
        await provider.set_config("acme", {}, active="yes")  # type: ignore[arg-type]  # bad
    assert await provider.get_config(request("acme")) == {}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ttl": -1}, "ttl must be seconds >= 0"),
        ({"ttl": True}, "ttl must be seconds >= 0"),
        ({"priority": "high"}, "priority must be an int"),
    ],
)
def test_bad_options_are_refused(
    options: dict[str, Any], message: str, database_factory: Factory
) -> None:
    db = database_factory("sqlite")
    with pytest.raises(ConfigError, match=message):
        SqlTenantConfigProvider(db, **options)
    with pytest.raises(ConfigError, match=message):
        SqlTenantPromptContributor(db, **options)


def test_a_store_needs_a_database() -> None:
    with pytest.raises(ConfigError, match="needs a SqlDatabase"):
        SqlTenantConfigProvider("sqlite:///x.db")  # type: ignore[arg-type]  # the point


async def test_writes_record_when_they_happened(database_factory: Factory) -> None:
    db = await database("sqlite", database_factory)
    await SqlTenantConfigProvider(db, clock=FakeClock(start=86_400.0)).set_config("acme", {})
    async with db.transaction() as connection:
        stamp = (
            await connection.execute(text("SELECT updated_at FROM onionskin_tenant_configs"))
        ).scalar_one()
    assert stamp == "1970-01-02T00:00:00+00:00"


# --- prompts ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", SQL_BACKENDS)
async def test_prompts_round_trip_per_tenant(backend: str, database_factory: Factory) -> None:
    contributor = SqlTenantPromptContributor(await database(backend, database_factory))
    assert contributor.priority() == 80
    await contributor.set_prompt("acme", "Answer as ACME's assistant. {not a placeholder}")
    await contributor.set_prompt("globex", "Answer as Globex's assistant.")
    for _ in range(2):  # cold, then warm cache
        acme = await contributor.get_contribution(request("acme").context)
        assert acme == "Answer as ACME's assistant. {not a placeholder}"
        globex = await contributor.get_contribution(request("globex").context)
        assert globex == "Answer as Globex's assistant."
        assert await contributor.get_contribution(request("initech").context) == ""
    await contributor.set_prompt("acme", "Replaced.")
    assert await contributor.get_contribution(request("acme").context) == "Replaced."
    assert await contributor.delete("acme") is True
    assert await contributor.delete("acme") is False
    assert await contributor.get_contribution(request("acme").context) == ""
    assert await contributor.get_contribution(request("globex").context) != ""


async def test_a_bad_prompt_is_refused_and_changes_nothing(database_factory: Factory) -> None:
    contributor = SqlTenantPromptContributor(await database("sqlite", database_factory))
    await contributor.set_prompt("acme", "Keep me.")
    with pytest.raises(ConfigError, match="prompt template must be a str"):
        await contributor.set_prompt("acme", ["not", "text"])  # type: ignore[arg-type]  # bad
    assert await contributor.get_contribution(request("acme").context) == "Keep me."


# --- row-level security ----------------------------------------------------------------


async def test_row_level_security_shows_a_tenant_only_its_rows(
    database_factory: Factory,
) -> None:
    db = await database("postgres", database_factory)
    provider, contributor = SqlTenantConfigProvider(db), SqlTenantPromptContributor(db)
    for tenant in ("acme", "globex"):
        await provider.set_config(tenant, {"model": f"{tenant}-model"})
        await contributor.set_prompt(tenant, f"{tenant} prompt")
    async with db.transaction(tenant_id="acme") as connection:
        # No WHERE clause: the policies alone filter.
        configs = (
            (await connection.execute(text("SELECT tenant_id FROM onionskin_tenant_configs")))
            .scalars()
            .all()
        )
        prompts = (
            (await connection.execute(text("SELECT prompt_template FROM onionskin_tenant_prompts")))
            .scalars()
            .all()
        )
    assert (configs, prompts) == (["acme"], ["acme prompt"])


@pytest.mark.parametrize("table", ["onionskin_tenant_configs", "onionskin_tenant_prompts"])
async def test_row_level_security_refuses_writing_another_tenants_row(
    table: str, database_factory: Factory
) -> None:
    db = await database("postgres", database_factory)
    column, value = (
        ("config", "'{}'::jsonb")
        if table == "onionskin_tenant_configs"
        else ("prompt_template", "'x'")
    )

    async def write_for_globex_as_acme() -> None:
        async with db.transaction(tenant_id="acme", write=True) as connection:
            await connection.exec_driver_sql(
                f"INSERT INTO {table} (tenant_id, {column}, updated_at) "
                f"VALUES ('globex', {value}, 'now')"
            )

    with pytest.raises(StoreError, match="row-level security"):
        await write_for_globex_as_acme()
    assert await SqlTenantConfigProvider(db).get_config(request("globex")) == {}
