"""The server's own CostMiddleware: a tenant past its monthly budget waits for an operator.

No stand-in here: the budget comes from the tenant-config table, the request is filed by the
runner's `CostMiddleware`, and approving it over the API resumes the run.
"""

from __future__ import annotations

from decimal import Decimal

from tests.server.conftest import Served, acme, globex


async def test_a_tenant_over_budget_is_queued_and_approval_resumes_the_run(
    served: Served,
) -> None:
    await served.app.state.tenant_configs.set_config(
        "acme", {"limits": {"monthly_budget_usd": "0"}}
    )

    refused = await served.client.post(
        "/api/v1/pipelines/echo/execute", json={"input": "spend"}, headers=acme()
    )
    free = await served.client.post(
        "/api/v1/pipelines/echo/execute", json={"input": "spend"}, headers=globex()
    )

    assert refused.status_code == 402, refused.text
    assert refused.json()["code"] == "approval_required"
    assert free.status_code == 200, free.text  # globex has no budget set
    waiting = (await served.client.get("/api/v1/approvals?status=pending", headers=acme())).json()
    [request] = waiting["approvals"]
    assert request["request_id"] == refused.json()["approval_id"]
    assert Decimal(request["limit_usd"]) == 0
    others = (await served.client.get("/api/v1/approvals", headers=globex())).json()
    assert others["approvals"] == []

    approved = await served.client.post(
        f"/api/v1/approvals/{request['request_id']}/approve", headers=acme()
    )

    assert approved.status_code == 200, approved.text
    run = approved.json()["run"]
    assert run["run_id"] == request["run_id"]
    assert run["output"] == "echo: spend"
    budget = (await served.client.get("/api/v1/budget", headers=acme())).json()
    assert Decimal(budget["limit_usd"]) == 0
