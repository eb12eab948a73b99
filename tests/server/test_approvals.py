"""`/api/v1/approvals`: the queue of stopped calls; approve resumes the run, deny leaves it failed.

The `guarded` agent's model files its requests on the server's queue the way the runner's
`CostMiddleware` does, and refuses with `ApprovalRequiredError` until one is approved: a
stand-in that lets these tests choose each outcome (fail once approved, say). The real
`CostMiddleware` path is in `test_approvals_budget.py`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from tests.server.conftest import Models, Served, acme, globex

from onionskin import ApprovalRequiredError, BudgetExceededError, ModelRequest, current_context
from onionskin.core.calls import Model
from onionskin.project import Project, load_project
from onionskin.runtime.models.resolve import ModelOptions
from onionskin.runtime.models.scripted import ScriptedModel, ScriptItem
from onionskin.stores.approvals import ApprovalQueue


@dataclass
class Gate:
    """The `guarded` model: asks the approval queue, as `CostMiddleware` does."""

    queue: ApprovalQueue | None = None
    calls: int = 0
    fail_once_approved: bool = False

    async def answer(self, request: ModelRequest) -> ScriptItem:
        ctx, queue = current_context(), self.queue
        assert queue is not None
        self.calls += 1
        asked = await queue.list(tenant_id=ctx.tenant_id, run_id=ctx.run_id)
        if any(request.status == "approved" for request in asked):
            if self.fail_once_approved:
                raise RuntimeError("the provider is down: postgresql://admin:hunter2@db")
            return "approved: go ahead"
        if asked and all(request.status == "denied" for request in asked):
            raise BudgetExceededError(ctx.tenant_id)
        pending = [request for request in asked if request.status == "pending"]
        if pending:
            approval_id = pending[-1].approval_id
        else:
            filed = await queue.submit(
                tenant_id=ctx.tenant_id,
                run_id=ctx.run_id,
                checkpoint_id=ctx.guard_state.get("checkpoint_id"),
                reason="tenant has spent $5 of its $5 budget",
                amount_micros=1234,
            )
            approval_id = filed.approval_id
        raise ApprovalRequiredError(
            ctx.tenant_id, approval_id=approval_id, limit=Decimal(5), spent=Decimal(5)
        )


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def project(project: Project, models: Models, gate: Gate) -> Project:
    """The shared test project, with the `checked` pipeline: echo, then the guarded agent."""
    (project.path / "agents" / "guarded.yaml").write_text("model: guarded\n", encoding="utf-8")
    (project.path / "pipelines" / "checked.yaml").write_text(
        "agents: [echo, guarded]\n", encoding="utf-8"
    )

    def resolve(spec: str, options: ModelOptions) -> Model:
        if spec == "guarded":
            return ScriptedModel(gate.answer, name=spec)
        return models.resolve(spec, options)

    return load_project(project.path, model_resolver=resolve)


@pytest.fixture
def guarded(served: Served, gate: Gate) -> Served:
    """The app, with the gate filing its requests into the app's approval queue."""
    gate.queue = served.app.state.approvals
    return served


async def stopped_run(served: Served, headers: dict[str, str]) -> tuple[str, str]:
    """Run `checked` until the gate stops it: (run id, approval request id)."""
    response = await served.client.post(
        "/api/v1/pipelines/checked/execute", json={"input": "spend"}, headers=headers
    )
    assert response.status_code == 402, response.text
    body = response.json()
    assert body["code"] == "approval_required"
    listed = await served.client.get("/api/v1/runs?limit=1", headers=headers)
    run_id: str = listed.json()["runs"][0]["run_id"]
    approval_id: str = body["approval_id"]
    return run_id, approval_id


async def pending(served: Served, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await served.client.get("/api/v1/approvals?status=pending", headers=headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["approvals"]
    return found


async def test_approving_a_request_resumes_its_run_where_it_stopped(
    guarded: Served, gate: Gate, caplog: pytest.LogCaptureFixture
) -> None:
    run_id, approval_id = await stopped_run(guarded, acme())
    [waiting] = await pending(guarded, acme())
    caplog.set_level(logging.INFO, logger="onionskin.server")

    response = await guarded.client.post(
        f"/api/v1/approvals/{approval_id}/approve", json={"note": "ok, once"}, headers=acme()
    )

    assert waiting["request_id"] == approval_id
    assert waiting["run_id"] == run_id
    assert waiting["status"] == "pending"
    assert waiting["amount_usd"] == "0.001234"
    assert waiting["reason"] == "tenant has spent $5 of its $5 budget"
    assert waiting["limit_usd"] is None  # no budget in acme's config
    assert waiting["checkpoint_id"] is not None
    assert response.status_code == 200, response.text
    decided = response.json()
    assert decided["request"]["status"] == "approved"
    assert decided["request"]["decided_by"] == "alice"
    assert decided["run"]["run_id"] == run_id  # resumed under its own id
    assert decided["run"]["output"] == "approved: go ahead"
    assert decided["run_error"] is None
    assert "ok, once" in caplog.text
    assert await pending(guarded, acme()) == []
    run = (await guarded.client.get(f"/api/v1/runs/{run_id}", headers=acme())).json()
    assert run["status"] == "completed"
    steps = (await guarded.client.get(f"/api/v1/runs/{run_id}/checkpoints", headers=acme())).json()
    finished = [c["agent"] for c in steps["checkpoints"] if c["kind"] == "agent"]
    assert finished == ["echo", "guarded"]  # echo's turn was not run again
    assert gate.calls == 2


async def test_denying_a_request_leaves_its_run_failed_for_good(
    guarded: Served, gate: Gate
) -> None:
    run_id, approval_id = await stopped_run(guarded, acme())

    denied = await guarded.client.post(f"/api/v1/approvals/{approval_id}/deny", headers=acme())
    again = await guarded.client.post(f"/api/v1/approvals/{approval_id}/approve", headers=acme())

    assert denied.status_code == 200, denied.text
    assert denied.json()["request"]["status"] == "denied"
    assert denied.json()["run"] is None
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"
    assert "already denied" in again.json()["detail"]
    run = (await guarded.client.get(f"/api/v1/runs/{run_id}", headers=acme())).json()
    assert run["status"] == "failed"
    assert gate.calls == 1  # never resumed
    listed = await guarded.client.get("/api/v1/approvals?status=denied", headers=acme())
    assert [a["request_id"] for a in listed.json()["approvals"]] == [approval_id]


async def test_a_request_is_decided_once(guarded: Served, gate: Gate) -> None:
    _, approval_id = await stopped_run(guarded, acme())

    first = await guarded.client.post(f"/api/v1/approvals/{approval_id}/approve", headers=acme())
    second = await guarded.client.post(f"/api/v1/approvals/{approval_id}/approve", headers=acme())
    third = await guarded.client.post(f"/api/v1/approvals/{approval_id}/deny", headers=acme())

    assert first.status_code == 200
    assert (second.status_code, third.status_code) == (409, 409)
    assert gate.calls == 2  # resumed once
    listed = await guarded.client.get("/api/v1/approvals", headers=acme())
    assert [a["status"] for a in listed.json()["approvals"]] == ["approved"]


async def test_a_resumed_run_that_fails_is_reported_and_the_approval_stands(
    guarded: Served, gate: Gate
) -> None:
    _, approval_id = await stopped_run(guarded, acme())
    gate.fail_once_approved = True

    response = await guarded.client.post(f"/api/v1/approvals/{approval_id}/approve", headers=acme())

    assert response.status_code == 200
    decided = response.json()
    assert decided["request"]["status"] == "approved"
    assert decided["run"] is None
    assert decided["run_error"]["status"] == 500
    assert decided["run_error"]["code"] == "internal_error"
    assert "hunter2" not in response.text


async def test_another_tenants_requests_are_invisible_and_undecidable(
    guarded: Served, gate: Gate
) -> None:
    _, approval_id = await stopped_run(guarded, acme())

    listed = await guarded.client.get("/api/v1/approvals", headers=globex())
    attempts = [
        await guarded.client.post(f"/api/v1/approvals/{approval_id}/approve", headers=globex()),
        await guarded.client.post(f"/api/v1/approvals/{approval_id}/deny", headers=globex()),
        await guarded.client.post(
            f"/api/v1/organizations/globex/approvals/{approval_id}/approve", headers=globex()
        ),
    ]
    unknown = await guarded.client.post("/api/v1/approvals/nothing-here/deny", headers=globex())
    conflict = await guarded.client.post(
        f"/api/v1/organizations/acme/approvals/{approval_id}/approve", headers=globex()
    )

    assert listed.json() == {"approvals": []}
    for response in attempts:
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "not_found"
    assert unknown.json()["detail"] == attempts[0].json()["detail"].replace(
        approval_id, "nothing-here"
    )
    assert conflict.status_code == 403
    assert [a["request_id"] for a in await pending(guarded, acme())] == [approval_id]
    assert gate.calls == 1


async def test_a_budget_in_the_tenants_config_shows_with_its_requests(guarded: Served) -> None:
    await guarded.app.state.tenant_configs.set_config(
        "acme", {"limits": {"monthly_budget_usd": "5"}}
    )
    await stopped_run(guarded, acme())

    [waiting] = await pending(guarded, acme())
    spent = await guarded.runner.ledger.spent(tenant_id="acme", period=waiting["created_at"][:7])

    assert waiting["limit_usd"] == "5.000000"
    assert spent > 0  # echo's call, before the stop
    assert waiting["spent_usd"] == f"{Decimal(spent).scaleb(-6):.6f}"


@pytest.mark.parametrize("body", [{"note": 5}, {"reason": "x"}, {"note": "n" * 2001}, [1]], ids=str)
async def test_a_bad_decision_body_is_422_and_decides_nothing(guarded: Served, body: Any) -> None:
    _, approval_id = await stopped_run(guarded, acme())

    response = await guarded.client.post(
        f"/api/v1/approvals/{approval_id}/approve", json=body, headers=acme()
    )

    assert response.status_code == 422
    assert [a["request_id"] for a in await pending(guarded, acme())] == [approval_id]


@pytest.mark.parametrize("request_id", ["r" * 300, "%01"])
async def test_a_malformed_request_id_is_not_found(guarded: Served, request_id: str) -> None:
    response = await guarded.client.post(f"/api/v1/approvals/{request_id}/approve", headers=acme())

    assert response.status_code == 404


@pytest.mark.parametrize("query", ["status=waiting", "limit=0", "limit=1001"])
async def test_a_bad_list_query_is_422(guarded: Served, query: str) -> None:
    response = await guarded.client.get(f"/api/v1/approvals?{query}", headers=acme())

    assert response.status_code == 422
