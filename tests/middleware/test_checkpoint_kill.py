"""A worker SIGKILLed mid-run; another process resumes the run from its last checkpoint."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sys
from pathlib import Path

import pytest

from onionskin import TenantContext
from onionskin.middleware.checkpoint import CheckpointMiddleware
from onionskin.stores.checkpoints import Checkpoint, CheckpointStore
from onionskin.stores.sql_checkpoints import open_checkpoint_store
from tests.middleware._research import EXPECTED_OUTPUT, STEP_KINDS, build

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

TENANT = TenantContext(tenant_id="acme")


class KillAfter:
    """A checkpoint store that SIGKILLs its own process right after the n-th save."""

    def __init__(self, store: CheckpointStore, saves: int) -> None:
        self.store = store
        self.saves = saves

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        await self.store.save_checkpoint(checkpoint)
        self.saves -= 1
        if self.saves == 0:
            os.kill(os.getpid(), signal.SIGKILL)


def run_until_killed(url: str, log: str, saves: int) -> None:
    """Worker: run the pipeline with checkpoints on `url`; die after `saves` checkpoints."""

    async def main() -> None:
        store = await open_checkpoint_store(url)
        orchestrator = build(Path(log), middleware=[CheckpointMiddleware(KillAfter(store, saves))])  # type: ignore[arg-type]  # a store by duck typing
        await orchestrator.execute("research", state={"tone": "calm"}, context=TENANT, run_id="k1")

    asyncio.run(main())


@pytest.mark.parametrize("saves", [2, 3, 5, 7, 9])
async def test_a_killed_run_resumes_exactly_where_it_stopped(tmp_path: Path, saves: int) -> None:
    url = f"sqlite:///{tmp_path}/checkpoints.db"
    log = tmp_path / "log"
    worker = multiprocessing.get_context("spawn").Process(
        target=run_until_killed, args=(url, str(log), saves)
    )
    worker.start()
    await asyncio.to_thread(worker.join, 60)
    assert worker.exitcode == -signal.SIGKILL

    store = await open_checkpoint_store(url)
    try:
        kept = await store.get_checkpoints("k1", tenant_id="acme")
        assert [c.kind for c in kept] == STEP_KINDS[:saves]

        result = await build(log, middleware=[CheckpointMiddleware(store)]).resume(
            "k1", context=TENANT
        )

        assert result.output == EXPECTED_OUTPUT
        everything = log.read_text().splitlines()
        reference = tmp_path / "reference"
        await build(reference, middleware=[]).execute("research", state={"tone": "calm"})
        # No completed step ran twice and none was lost: the two processes together did
        # exactly what one uninterrupted run does.
        assert everything == reference.read_text().splitlines()
        history = await store.get_checkpoints("k1", tenant_id="acme")
        assert [c.kind for c in history] == STEP_KINDS
        assert [c.step for c in history] == list(range(len(STEP_KINDS)))
    finally:
        await store.aclose()
