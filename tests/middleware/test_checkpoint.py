"""CheckpointMiddleware: a checkpoint per step, then resume, replay and fork from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from onionskin import ConfigError, StoreError, TenantContext
from onionskin.middleware.checkpoint import CheckpointMiddleware
from onionskin.stores.checkpoints import Checkpoint, MemoryCheckpointStore
from tests.middleware._research import EXPECTED_OUTPUT, STEP_KINDS, build

ACME = TenantContext(tenant_id="acme")
GLOBEX = TenantContext(tenant_id="globex")


class FailOnce:
    """A middleware that fails the n-th model call of the process, once."""

    def __init__(self, at_call: int) -> None:
        self.at_call = at_call
        self.calls = 0

    async def wrap_model_call(self, request: object, call_next: object) -> object:
        self.calls += 1
        if self.calls == self.at_call:
            raise RuntimeError("provider went away")
        return await call_next(request)  # type: ignore[operator]  # the chain's next


def log_lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


async def test_every_step_is_checkpointed_in_order(tmp_path: Path) -> None:
    store = MemoryCheckpointStore()
    orchestrator = build(middleware=[CheckpointMiddleware(store)])

    result = await orchestrator.execute("research", state={"tone": "calm"}, context=ACME)

    assert result.output == EXPECTED_OUTPUT
    saved = await store.get_checkpoints(result.run_id, tenant_id="acme")
    assert [checkpoint.kind for checkpoint in saved] == STEP_KINDS
    assert [checkpoint.step for checkpoint in saved] == list(range(len(STEP_KINDS)))
    assert [c.parent_id for c in saved] == [None, *(c.checkpoint_id for c in saved[:-1])]
    assert {c.tenant_id for c in saved} == {"acme"}
    assert [c.status for c in saved][-2:] == ["running", "completed"]
    assert saved[-1].data["output"] == EXPECTED_OUTPUT
    # The first model checkpoint holds the turn so far, including the reply asking for tools.
    first_model = saved[1]
    assert [m["role"] for m in first_model.messages] == ["system", "user", "assistant"]
    assert first_model.agent == "researcher"
    # The second tool checkpoint holds both results of that reply.
    assert [r["content"] for r in saved[3].data["tool_returns"]] == ["alpha=1", "beta=2"]
    assert saved[7].data["outputs"] == {"researcher": "facts: alpha=1; beta=2; gamma=3"}


async def test_a_failed_run_resumes_without_rerunning_finished_steps(tmp_path: Path) -> None:
    store = MemoryCheckpointStore()
    log = tmp_path / "log"
    failing = build(log, middleware=[CheckpointMiddleware(store), FailOnce(at_call=3)])

    with pytest.raises(RuntimeError, match="provider went away"):
        await failing.execute("research", state={"tone": "calm"}, context=ACME, run_id="r1")
    before = log_lines(log)
    saved = await store.get_checkpoints("r1", tenant_id="acme")
    assert (saved[-1].kind, saved[-1].status) == ("end", "failed")
    assert saved[-1].data["error"] == {"type": "RuntimeError", "message": "provider went away"}

    fresh = build(log, middleware=[CheckpointMiddleware(store)])
    result = await fresh.resume("r1", context=ACME)

    assert result.output == EXPECTED_OUTPUT
    assert result.run_id == "r1"
    after = log_lines(log)[len(before) :]
    # The third model call failed: it and what follows run; nothing before it runs again.
    assert before == [
        "model:researcher:0",
        "tool:alpha",
        "tool:beta",
        "model:researcher:2",
        "tool:gamma",
    ]
    assert after == ["model:researcher:3", "model:writer"]
    history = await store.get_checkpoints("r1", tenant_id="acme")
    assert [c.step for c in history] == list(range(len(history)))
    assert history[-1].status == "completed"


async def test_resume_restores_usage_and_cost_so_far() -> None:
    store = MemoryCheckpointStore()
    plain = await build(middleware=[]).execute("research", state={"tone": "calm"})
    failing = build(middleware=[CheckpointMiddleware(store), FailOnce(at_call=3)])
    with pytest.raises(RuntimeError):
        await failing.execute("research", state={"tone": "calm"}, run_id="r2")

    resumed = await build(middleware=[CheckpointMiddleware(store)]).resume("r2")

    assert resumed.usage == plain.usage
    assert {name: s.model_calls for name, s in resumed.agents.items()} == {
        "researcher": 3,
        "writer": 1,
    }


async def test_a_completed_run_cannot_be_resumed() -> None:
    store = MemoryCheckpointStore()
    orchestrator = build(middleware=[CheckpointMiddleware(store)])
    result = await orchestrator.execute("research", state={"tone": "calm"})

    with pytest.raises(StoreError, match="completed: nothing to resume"):
        await orchestrator.resume(result.run_id)


async def test_another_tenant_can_neither_resume_nor_fork_a_run() -> None:
    store = MemoryCheckpointStore()
    orchestrator = build(middleware=[CheckpointMiddleware(store), FailOnce(at_call=2)])
    with pytest.raises(RuntimeError):
        await orchestrator.execute("research", state={"tone": "calm"}, context=ACME, run_id="a1")
    saved = await store.get_checkpoints("a1", tenant_id="acme")

    with pytest.raises(StoreError, match="no checkpoints of run 'a1'"):
        await orchestrator.resume("a1", context=GLOBEX)
    with pytest.raises(StoreError, match="no checkpoint"):
        await orchestrator.fork(saved[1].checkpoint_id, context=GLOBEX)
    with pytest.raises(StoreError, match="no checkpoints"):
        await orchestrator.resume("a1")  # the untenanted partition is another partition
    assert await store.get_checkpoints("a1", tenant_id="acme") == saved


async def test_replay_from_any_checkpoint_gives_the_same_result(tmp_path: Path) -> None:
    store = MemoryCheckpointStore()
    log = tmp_path / "log"
    orchestrator = build(log, middleware=[CheckpointMiddleware(store)])
    original = await orchestrator.execute("research", state={"tone": "calm"})
    saved = await store.get_checkpoints(original.run_id, tenant_id=None)

    for k, checkpoint in enumerate(saved[:-1]):
        replayed = await orchestrator.replay(checkpoint.checkpoint_id)
        assert replayed.output == EXPECTED_OUTPUT, f"replay from step {k}"
        assert replayed.run_id != original.run_id
        branch = await store.get_checkpoints(replayed.run_id, tenant_id=None)
        assert branch[0].parent_id == checkpoint.checkpoint_id
        assert branch[0].step == k + 1
        assert branch[0].data["forked_from"] == checkpoint.checkpoint_id
    # The original history is untouched by its replays.
    assert await store.get_checkpoints(original.run_id, tenant_id=None) == saved


async def test_fork_with_edited_state_changes_what_follows(tmp_path: Path) -> None:
    store = MemoryCheckpointStore()
    log = tmp_path / "log"
    orchestrator = build(log, middleware=[CheckpointMiddleware(store)])
    original = await orchestrator.execute("research", state={"tone": "calm"})
    saved = await store.get_checkpoints(original.run_id, tenant_id=None)
    after_research = next(c for c in saved if c.kind == "agent")
    calls_before = len(log_lines(log))

    forked = await orchestrator.fork(after_research.checkpoint_id, state={"tone": "urgent"})

    assert forked.output == "[urgent] report on: facts: alpha=1; beta=2; gamma=3"
    assert log_lines(log)[calls_before:] == ["model:writer"]
    assert forked.state["tone"] == "urgent"
    assert original.output == EXPECTED_OUTPUT


async def test_resume_needs_a_checkpoint_middleware() -> None:
    with pytest.raises(ConfigError, match="add a CheckpointMiddleware"):
        await build(middleware=[]).resume("r1")


async def test_a_tampered_checkpoint_is_refused_clearly() -> None:
    store = MemoryCheckpointStore()
    orchestrator = build(middleware=[CheckpointMiddleware(store)])
    original = await orchestrator.execute("research", state={"tone": "calm"})
    model_step = (await store.get_checkpoints(original.run_id, tenant_id=None))[1]
    broken = Checkpoint(
        **{
            **{name: getattr(model_step, name) for name in Checkpoint.__dataclass_fields__},
            "checkpoint_id": "tampered-1",
            "messages": [{"role": "wizard", "parts": []}],
        }
    )
    await store.save_checkpoint(broken)

    with pytest.raises(StoreError, match="known role"):
        await orchestrator.replay("tampered-1")
