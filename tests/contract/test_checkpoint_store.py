"""One suite for every `CheckpointStore`: memory, SQLite and PostgreSQL behave the same."""

from __future__ import annotations

import asyncio
import multiprocessing
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from onionskin.core.errors import ConfigError, StoreError, TenantError
from onionskin.core.ids import new_id
from onionskin.stores._migrations import migrate
from onionskin.stores._sql import SqlDatabase
from onionskin.stores.checkpoints import (
    Checkpoint,
    CheckpointStore,
    MemoryCheckpointStore,
    RunSummary,
)
from onionskin.stores.sql_checkpoints import (
    CHECKPOINT_MIGRATIONS,
    SqlCheckpointStore,
    open_checkpoint_store,
)
from tests.conftest import SQL_BACKENDS

Factory = Callable[[str], SqlDatabase]
BACKENDS = ("memory", *SQL_BACKENDS)
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


async def open_store(backend: str, database_factory: Factory) -> CheckpointStore:
    """A fresh store on `backend`; PostgreSQL is migrated first, as a deploy would."""
    if backend == "memory":
        return MemoryCheckpointStore()
    database = database_factory(backend)
    if database.dialect == "postgresql":
        await migrate(database, "checkpoints", CHECKPOINT_MIGRATIONS)
    return await SqlCheckpointStore.open(database)


@pytest.fixture(params=BACKENDS)
async def store(
    request: pytest.FixtureRequest, database_factory: Factory
) -> AsyncIterator[CheckpointStore]:
    opened = await open_store(request.param, database_factory)
    yield opened
    await opened.aclose()


def make(run_id: str, step: int, **fields: Any) -> Checkpoint:
    """A valid checkpoint of `run_id` at `step`, taken `step` seconds after T0."""
    values: dict[str, Any] = {
        "checkpoint_id": new_id(),
        "run_id": run_id,
        "tenant_id": None,
        "parent_id": None,
        "pipeline_id": "pipe",
        "step": step,
        "kind": "model",
        "agent": "writer",
        "status": "running",
        "state": {"step": step},
        "messages": [{"role": "user", "content": f"hi {step}"}],
        "data": {},
        "created_at": T0 + timedelta(seconds=step),
    }
    values.update(fields)
    return Checkpoint(**values)


async def test_a_saved_checkpoint_reads_back_equal(store: CheckpointStore) -> None:
    saved = make("run-1", 0, tenant_id="acme", parent_id="p-0", kind="input", agent=None)
    await store.save_checkpoint(saved)

    assert await store.get_checkpoint(saved.checkpoint_id, tenant_id="acme") == saved
    assert await store.get_checkpoints("run-1", tenant_id="acme") == [saved]
    assert await store.latest_checkpoint("run-1", tenant_id="acme") == saved


async def test_checkpoints_come_back_in_step_order(store: CheckpointStore) -> None:
    steps = [make("run-1", step) for step in range(6)]
    for checkpoint in random.Random(7).sample(steps, k=len(steps)):
        await store.save_checkpoint(checkpoint)
    await store.save_checkpoint(make("run-2", 9))

    assert await store.get_checkpoints("run-1", tenant_id=None) == steps
    assert await store.latest_checkpoint("run-1", tenant_id=None) == steps[-1]


async def test_unknown_ids_read_as_nothing(store: CheckpointStore) -> None:
    await store.save_checkpoint(make("run-1", 0))
    assert await store.get_checkpoint(new_id(), tenant_id=None) is None
    assert await store.get_checkpoints("run-2", tenant_id=None) == []
    assert await store.latest_checkpoint("run-2", tenant_id=None) is None
    assert await store.delete_checkpoints("run-2", tenant_id=None) == 0
    assert await store.list_runs(tenant_id="acme") == []


async def test_payloads_round_trip_through_json(store: CheckpointStore) -> None:
    state = {
        "zeta": 1,
        "alpha": {"nested": [1, 2.5, None, True, False, "x"], "deep": {"deeper": {"n": [[]]}}},
        "text": 'héllo ✓ 🧅 \u0000 \n "quoted" \\ end',
        "big": 10**30,
        "small": 1e-300,
        "tenth": 0.1,
        "empty": {},
    }
    messages = [
        {"role": "user", "content": "question"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "args": {"q": 1}}]},
    ]
    saved = make("run-1", 0, state=state, messages=messages, data={"outputs": {"a": "b"}})
    await store.save_checkpoint(saved)

    loaded = await store.get_checkpoint(saved.checkpoint_id, tenant_id=None)

    assert loaded == saved
    assert list(loaded.state) == list(state)  # key order is kept
    assert list(loaded.state["alpha"]) == ["nested", "deep"]


async def test_tuples_and_other_mappings_are_stored_as_json(store: CheckpointStore) -> None:
    saved = make(
        "run-1",
        0,
        state=MappingProxyType({"pair": (1, 2)}),
        messages=(MappingProxyType({"role": "user"}),),
    )
    await store.save_checkpoint(saved)

    loaded = await store.get_checkpoint(saved.checkpoint_id, tenant_id=None)

    assert loaded is not None
    assert loaded.state == {"pair": [1, 2]}
    assert loaded.messages == [{"role": "user"}]


async def test_callers_cannot_change_stored_checkpoints(store: CheckpointStore) -> None:
    state: dict[str, Any] = {"items": [1]}
    saved = make("run-1", 0, state=state)
    await store.save_checkpoint(saved)
    state["items"].append(2)
    read = await store.get_checkpoint(saved.checkpoint_id, tenant_id=None)
    assert read is not None
    read.state["items"].append(3)

    again = await store.get_checkpoint(saved.checkpoint_id, tenant_id=None)

    assert again is not None
    assert again.state == {"items": [1]}


async def test_created_at_comes_back_in_utc(store: CheckpointStore) -> None:
    local = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    saved = make("run-1", 0, created_at=local)
    await store.save_checkpoint(saved)

    loaded = await store.get_checkpoint(saved.checkpoint_id, tenant_id=None)

    assert loaded is not None
    assert loaded.created_at == local
    assert loaded.created_at.utcoffset() == timedelta(0)


async def test_a_checkpoint_id_is_saved_once(store: CheckpointStore) -> None:
    first = make("run-1", 0, state={"v": 1})
    await store.save_checkpoint(first)

    for again in (
        replace(first, state={"v": 2}),
        replace(first, run_id="run-2", step=5),
        replace(first, tenant_id="acme"),
    ):
        with pytest.raises(StoreError, match="already exists and checkpoints are never overw"):
            await store.save_checkpoint(again)

    assert await store.get_checkpoints("run-1", tenant_id=None) == [first]
    assert await store.get_checkpoints("run-2", tenant_id=None) == []
    assert await store.list_runs(tenant_id="acme") == []


async def test_delete_removes_only_that_run(store: CheckpointStore) -> None:
    for step in range(3):
        await store.save_checkpoint(make("run-1", step))
    kept = make("run-2", 0)
    await store.save_checkpoint(kept)

    assert await store.delete_checkpoints("run-1", tenant_id=None) == 3
    assert await store.delete_checkpoints("run-1", tenant_id=None) == 0

    assert await store.get_checkpoints("run-1", tenant_id=None) == []
    assert await store.get_checkpoints("run-2", tenant_id=None) == [kept]
    assert [run.run_id for run in await store.list_runs(tenant_id=None)] == ["run-2"]


async def test_list_runs_shows_newest_first_with_counts_and_status(
    store: CheckpointStore,
) -> None:
    later = T0 + timedelta(hours=1)
    await store.save_checkpoint(make("old", 0, pipeline_id="p-old"))
    await store.save_checkpoint(make("old", 1, pipeline_id="p-old", status="failed", kind="end"))
    for step in range(3):
        await store.save_checkpoint(
            make("new", step, tenant_id=None, created_at=later + timedelta(seconds=step))
        )
    await store.save_checkpoint(
        make("new", 3, status="completed", kind="end", created_at=later + timedelta(minutes=5))
    )

    runs = await store.list_runs(tenant_id=None)

    assert runs == [
        RunSummary(
            run_id="new",
            tenant_id=None,
            pipeline_id="pipe",
            checkpoints=4,
            last_step=3,
            status="completed",
            started_at=later,
            updated_at=later + timedelta(minutes=5),
        ),
        RunSummary(
            run_id="old",
            tenant_id=None,
            pipeline_id="p-old",
            checkpoints=2,
            last_step=1,
            status="failed",
            started_at=T0,
            updated_at=T0 + timedelta(seconds=1),
        ),
    ]


async def test_list_runs_names_the_tenant_and_keeps_to_the_limit(store: CheckpointStore) -> None:
    for index in range(5):
        started = T0 + timedelta(minutes=index)
        await store.save_checkpoint(make(f"run-{index}", 0, tenant_id="acme", created_at=started))

    runs = await store.list_runs(tenant_id="acme", limit=2)

    assert [run.run_id for run in runs] == ["run-4", "run-3"]
    assert {run.tenant_id for run in runs} == {"acme"}
    assert len(await store.list_runs(tenant_id="acme", limit=1000)) == 5


BAD_CHECKPOINTS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"checkpoint_id": ""}, StoreError, "checkpoint_id must be a non-empty string"),
    ({"checkpoint_id": "x" * 256}, StoreError, "at most 255 printable"),
    ({"run_id": "run\x00one"}, StoreError, "run_id must be"),
    ({"run_id": 7}, StoreError, "run_id must be"),
    ({"pipeline_id": "line\nbreak"}, StoreError, "pipeline_id must be"),
    ({"parent_id": ""}, StoreError, "parent_id must be"),
    ({"agent": "\t"}, StoreError, "agent must be"),
    ({"tenant_id": ""}, TenantError, "tenant_id must be 1-128 characters"),
    ({"tenant_id": "../other"}, TenantError, "tenant_id must be"),
    ({"step": -1}, StoreError, "step must be a whole number"),
    ({"step": True}, StoreError, "step must be a whole number"),
    ({"step": 2**31}, StoreError, "step must be a whole number"),
    ({"kind": "bogus"}, StoreError, "kind must be one of"),
    ({"status": "paused"}, StoreError, "status must be one of"),
    ({"created_at": datetime(2026, 1, 1)}, StoreError, "aware datetime"),
    ({"created_at": "2026-01-01"}, StoreError, "aware datetime"),
    ({"state": {"when": T0}}, StoreError, r"state\['when'\] is a datetime, not a JSON value"),
    ({"state": {"ids": {1, 2}}}, StoreError, r"state\['ids'\] is a set"),
    ({"state": {1: "one"}}, StoreError, "has the key 1: JSON object keys must be strings"),
    ({"state": {"x": float("nan")}}, StoreError, "which JSON cannot hold"),
    ({"data": {"a": [0, float("inf")]}}, StoreError, r"data\['a'\]\[1\] is inf"),
    ({"state": ["not", "a", "mapping"]}, StoreError, "state must be a Mapping"),
    ({"messages": "hello"}, StoreError, "messages must be a Sequence"),
    ({"messages": [{"ok": 1}, "text"]}, StoreError, r"messages\[1\] must be a mapping"),
    ({"data": {"b": b"raw"}}, StoreError, "is a bytes"),
]


async def test_bad_checkpoints_are_refused_and_nothing_is_stored(store: CheckpointStore) -> None:
    for fields, error, message in BAD_CHECKPOINTS:
        checkpoint = replace(make("run-bad", 0), **fields)
        with pytest.raises(error, match=message):
            await store.save_checkpoint(checkpoint)
    with pytest.raises(StoreError, match="takes a Checkpoint, got dict"):
        await store.save_checkpoint({"checkpoint_id": "x"})  # type: ignore[arg-type]

    assert await store.get_checkpoints("run-bad", tenant_id=None) == []
    assert await store.list_runs(tenant_id=None) == []


async def test_payloads_that_nest_too_deep_or_contain_themselves_are_refused(
    store: CheckpointStore,
) -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(150):
        node["n"] = {}
        node = node["n"]
    looped: list[Any] = []
    looped.append(looped)
    for state in (deep, {"loop": looped}):
        with pytest.raises(StoreError, match="nests deeper than 100 levels"):
            await store.save_checkpoint(make("run-deep", 0, state=state))
    assert await store.list_runs(tenant_id=None) == []


async def test_bad_arguments_are_refused(store: CheckpointStore) -> None:
    kept = make("run-1", 0, tenant_id="acme")
    await store.save_checkpoint(kept)
    with pytest.raises(StoreError, match="checkpoint_id must be"):
        await store.get_checkpoint("", tenant_id="acme")
    with pytest.raises(StoreError, match="run_id must be"):
        await store.get_checkpoints("x" * 256, tenant_id="acme")
    with pytest.raises(StoreError, match="run_id must be"):
        await store.latest_checkpoint("\x00", tenant_id="acme")
    with pytest.raises(StoreError, match="run_id must be"):
        await store.delete_checkpoints("", tenant_id="acme")
    with pytest.raises(TenantError, match="tenant_id must be"):
        await store.delete_checkpoints("run-1", tenant_id="")
    with pytest.raises(TenantError, match="tenant_id must be"):
        await store.get_checkpoints("run-1", tenant_id="acme/../x")
    for limit in (0, 1001, True, "5", 2.0):
        with pytest.raises(StoreError, match="limit must be a whole number from 1 to 1000"):
            await store.list_runs(tenant_id="acme", limit=limit)  # type: ignore[arg-type]

    assert await store.get_checkpoints("run-1", tenant_id="acme") == [kept]


async def test_concurrent_saves_all_land_in_order(store: CheckpointStore) -> None:
    checkpoints = [make("run-1", step) for step in range(40)]

    await asyncio.gather(*(store.save_checkpoint(c) for c in reversed(checkpoints)))

    assert await store.get_checkpoints("run-1", tenant_id=None) == checkpoints
    [summary] = await store.list_runs(tenant_id=None)
    assert (summary.checkpoints, summary.last_step) == (40, 39)


async def test_concurrent_saves_of_one_id_store_it_once(store: CheckpointStore) -> None:
    checkpoint = make("run-1", 0)

    results = await asyncio.gather(
        *(store.save_checkpoint(replace(checkpoint, step=n)) for n in range(8)),
        return_exceptions=True,
    )

    assert sum(result is None for result in results) == 1
    assert all(isinstance(r, StoreError) for r in results if r is not None)
    assert len(await store.get_checkpoints("run-1", tenant_id=None)) == 1


def _save_many(url: str, schema: str | None, worker: int, count: int) -> None:
    async def run() -> None:
        store = await SqlCheckpointStore.open(url, schema=schema)
        try:
            for step in range(count):
                await store.save_checkpoint(make(f"run-{worker}", step, tenant_id="acme"))
                await store.save_checkpoint(make("shared", worker * count + step, tenant_id="acme"))
        finally:
            await store.aclose()

    asyncio.run(run())


@pytest.mark.parametrize("backend", SQL_BACKENDS)
async def test_processes_saving_at_once_lose_nothing(
    backend: str, database_factory: Factory
) -> None:
    database = database_factory(backend)
    await migrate(database, "checkpoints", CHECKPOINT_MIGRATIONS)
    url = database.engine.url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_save_many, args=(url, database.schema, worker, 10))
        for worker in range(3)
    ]
    for process in workers:
        process.start()
    for process in workers:
        await asyncio.to_thread(process.join, 60)
    assert [process.exitcode for process in workers] == [0, 0, 0]

    store = await SqlCheckpointStore.open(database)
    shared = await store.get_checkpoints("shared", tenant_id="acme")
    assert [c.step for c in shared] == list(range(30))
    assert len(await store.list_runs(tenant_id="acme")) == 4


async def test_open_checkpoint_store_picks_the_backend_by_url(tmp_path: Path) -> None:
    assert isinstance(await open_checkpoint_store(None), MemoryCheckpointStore)
    assert isinstance(await open_checkpoint_store("memory://"), MemoryCheckpointStore)
    url = f"sqlite:///{tmp_path}/checkpoints.db"
    first = await open_checkpoint_store(url)
    assert isinstance(first, SqlCheckpointStore)
    saved = make("run-1", 0)
    await first.save_checkpoint(saved)
    await first.aclose()

    reopened = await open_checkpoint_store(url)
    assert await reopened.get_checkpoints("run-1", tenant_id=None) == [saved]
    await reopened.aclose()


async def test_unknown_store_urls_are_refused() -> None:
    with pytest.raises(ConfigError, match="unsupported database URL scheme 'redis'"):
        await open_checkpoint_store("redis://127.0.0.1/0")


async def test_schema_is_only_for_a_url(database_factory: Factory) -> None:
    with pytest.raises(ConfigError, match="schema= applies to a URL"):
        await SqlCheckpointStore.open(database_factory("sqlite"), schema="s")


async def test_postgres_refuses_a_schema_that_is_not_migrated(
    database_factory: Factory, postgres_url: str
) -> None:
    database = database_factory("postgres")
    with pytest.raises(StoreError, match="run `onionskin db migrate"):
        await SqlCheckpointStore.open(database)
    with pytest.raises(StoreError, match="run `onionskin db migrate"):
        await open_checkpoint_store(postgres_url, schema=database.schema)
