"""Over budget → approval queue → operator approves → the run resumes from its checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from onionskin import Orchestrator, TenantContext
from onionskin.core.errors import (
    ApprovalDecidedError,
    ApprovalNotFoundError,
    ApprovalRequiredError,
    StoreError,
)
from onionskin.middleware.checkpoint import CheckpointMiddleware
from onionskin.middleware.cost import CostMiddleware
from onionskin.pricing import from_micros
from onionskin.stores.approvals import MemoryApprovalQueue
from onionskin.stores.checkpoints import MemoryCheckpointStore
from onionskin.stores.ledger import MemoryCostLedger
from onionskin.tenancy.approvals import resume_approved
from onionskin.tenancy.cost import current_period
from tests.middleware._research import EXPECTED_OUTPUT, build

ACME = TenantContext(tenant_id="acme")
PRICE = 10_000  # USD per million tokens: each scripted call costs a fraction of a dollar


@dataclass
class Stopped:
    orchestrator: Orchestrator
    approvals: MemoryApprovalQueue
    ledger: MemoryCostLedger
    store: MemoryCheckpointStore
    log: Path
    approval_id: str


async def stopped_run(tmp_path: Path) -> Stopped:
    """A run stopped for approval at its third model call; returns what the test needs."""
    ledger, approvals, store = MemoryCostLedger(), MemoryApprovalQueue(), MemoryCheckpointStore()
    priced = MemoryCostLedger()
    reference = build(middleware=[CostMiddleware(priced)], price_per_mtok=PRICE)
    await reference.execute("research", state={"tone": "calm"}, context=ACME)
    newest_first = await priced.entries(tenant_id="acme", period=current_period_now())
    two_calls = from_micros(sum(entry.cost_micros for entry in newest_first[-2:]))
    log = tmp_path / "log"
    middleware: list[object] = [
        CheckpointMiddleware(store),
        # Two calls fit; the third finds the budget spent.
        CostMiddleware(ledger, budget_limit_usd=two_calls, approvals=approvals),
    ]
    orchestrator = build(log, middleware=middleware, price_per_mtok=PRICE)
    with pytest.raises(ApprovalRequiredError) as stopped:
        await orchestrator.execute("research", state={"tone": "calm"}, context=ACME, run_id="r1")
    return Stopped(orchestrator, approvals, ledger, store, log, stopped.value.approval_id)


async def test_an_approved_run_resumes_from_its_checkpoint_without_repeating_steps(
    tmp_path: Path,
) -> None:
    run = await stopped_run(tmp_path)
    orchestrator, approvals, ledger, store, log = (
        run.orchestrator,
        run.approvals,
        run.ledger,
        run.store,
        run.log,
    )
    approval_id = run.approval_id
    request = await approvals.get(approval_id, tenant_id="acme")
    latest = await store.latest_checkpoint("r1", tenant_id="acme")
    assert request is not None
    assert latest is not None
    assert request.status == "pending"
    assert request.run_id == "r1"
    # The request names the last step that finished before the refused call.
    assert request.checkpoint_id == latest.parent_id
    before = log.read_text().splitlines()

    await approvals.approve(approval_id, tenant_id="acme", operator="ops@acme")
    result = await resume_approved(orchestrator, approvals, approval_id, context=ACME)

    assert result.output == EXPECTED_OUTPUT
    after = log.read_text().splitlines()[len(before) :]
    assert after == ["model:researcher:3", "model:writer"]
    totals = await ledger.totals(tenant_id="acme", period=current_period_now())
    assert totals.calls == 4  # every model call billed exactly once across both attempts


def current_period_now() -> str:
    from onionskin.core.clock import SystemClock

    return current_period(SystemClock())


async def test_a_pending_or_denied_request_does_not_resume(tmp_path: Path) -> None:
    run = await stopped_run(tmp_path)
    orchestrator, approvals, log, approval_id = (
        run.orchestrator,
        run.approvals,
        run.log,
        run.approval_id,
    )
    lines = log.read_text().splitlines()

    with pytest.raises(StoreError, match="still pending"):
        await resume_approved(orchestrator, approvals, approval_id, context=ACME)
    await approvals.deny(approval_id, tenant_id="acme", operator="ops@acme")
    with pytest.raises(ApprovalDecidedError, match="denied"):
        await resume_approved(orchestrator, approvals, approval_id, context=ACME)
    assert log.read_text().splitlines() == lines


async def test_another_tenant_cannot_resume_the_run(tmp_path: Path) -> None:
    run = await stopped_run(tmp_path)
    orchestrator, approvals, approval_id = run.orchestrator, run.approvals, run.approval_id
    await approvals.approve(approval_id, tenant_id="acme", operator="ops@acme")

    with pytest.raises(ApprovalNotFoundError):
        await resume_approved(
            orchestrator, approvals, approval_id, context=TenantContext(tenant_id="globex")
        )
