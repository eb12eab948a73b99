"""The execute endpoints: the JSON form, the event stream, metadata, and how runs fail."""

from __future__ import annotations

from decimal import Decimal

import pytest
from tests.server.conftest import LEAK, Serve, Served, acme, frames, globex

from onionskin.core.events import RunEvent

EXECUTE = "/api/v1/pipelines/{}/execute"


async def test_the_json_form_answers_with_the_run(served: Served) -> None:
    response = await served.client.post(
        EXECUTE.format("assistant"), json={"input": "tides"}, headers=acme()
    )

    assert response.status_code == 200
    body = response.json()
    assert body["output"] == "found: facts about tides"
    assert (body["pipeline"], body["tenant_id"], body["stopped"]) == ("assistant", "acme", False)
    usage = body["usage"]
    assert usage["input_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    # $2 and $8 per million tokens: the exact decimal string, not a float.
    expected = (Decimal(usage["input_tokens"]) * 2 + Decimal(usage["output_tokens"]) * 8) / 10**6
    assert Decimal(body["cost_usd"]) == expected
    assert isinstance(body["cost_usd"], str)


async def test_a_declared_pipeline_runs_its_agents_in_order(served: Served) -> None:
    response = await served.client.post(
        EXECUTE.format("research"), json={"input": "tides"}, headers=acme()
    )

    assert response.json()["output"] == "echo: found: facts about tides"


async def test_the_stream_sends_every_event_in_order(served: Served) -> None:
    response = await served.client.post(
        EXECUTE.format("assistant"), json={"input": "tides", "stream": True}, headers=acme()
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = frames(response.text)
    kinds = [(f.event, f.data.get("kind")) for f in events if f.event != "text_delta"]
    assert kinds == [
        ("run_started", None),
        ("call_started", "agent"),
        ("call_started", "model"),
        ("call_finished", "model"),
        ("call_started", "tool"),
        ("call_finished", "tool"),
        ("call_started", "model"),
        ("call_finished", "model"),
        ("call_finished", "agent"),
        ("run_completed", None),
    ]
    assert [f.id for f in events] == [str(n) for n in range(1, len(events) + 1)]
    assert all(f.data["type"] == f.event for f in events)
    assert {f.data["run_id"] for f in events} == {events[0].data["run_id"]}
    assert {f.data["tenant_id"] for f in events} == {"acme"}
    assert events[-1].data["output"] == "found: facts about tides"
    assert "".join(f.data["text"] for f in events if f.event == "text_delta") == (
        "found: facts about tides"
    )


async def test_the_accept_header_asks_for_the_stream_unless_the_body_says_otherwise(
    served: Served,
) -> None:
    stream = {**acme(), "Accept": "text/event-stream"}

    streamed = await served.client.post(EXECUTE.format("echo"), json={"input": "a"}, headers=stream)
    plain = await served.client.post(
        EXECUTE.format("echo"), json={"input": "a", "stream": False}, headers=stream
    )

    assert frames(streamed.text)[-1].event == "run_completed"
    assert plain.headers["content-type"] == "application/json"
    assert plain.json()["output"] == "echo: a"


async def test_content_input_and_state_reach_the_agent(served: Served) -> None:
    response = await served.client.post(
        EXECUTE.format("greeter"),
        json={"input": {"parts": [{"text": "one"}, {"text": "two"}]}, "state": {"customer": "Ada"}},
        headers=acme(),
    )

    assert response.json()["output"] == "echo: one | two"


async def test_every_middleware_sees_the_request_metadata(served: Served) -> None:
    """The project's middleware/meta.py reads current_request_metadata() into the message."""
    response = await served.client.post(
        EXECUTE.format("meta"),
        json={"input": "hi", "metadata": {"trace": "t-1"}},
        headers={**acme(), "X-Request-ID": "req-42"},
    )

    assert response.headers["X-Request-ID"] == "req-42"
    assert response.json()["output"] == (
        "echo: hi | tenant_id=acme user_id=alice org_role=admin request_id=req-42 trace=t-1"
    )


async def test_the_stream_binds_the_request_metadata_too(served: Served) -> None:
    response = await served.client.post(
        EXECUTE.format("meta"), json={"input": "hi", "stream": True}, headers=globex()
    )

    output = frames(response.text)[-1].data["output"]
    assert "tenant_id=globex user_id=bob org_role=member request_id=" in output


@pytest.mark.parametrize("key", ["tenant_id", "user_id", "org_role", "request_id"])
async def test_metadata_may_not_claim_the_servers_own_keys(served: Served, key: str) -> None:
    response = await served.client.post(
        EXECUTE.format("echo"), json={"input": "hi", "metadata": {key: "globex"}}, headers=acme()
    )

    assert response.status_code == 422
    assert key in response.json()["detail"]


@pytest.mark.parametrize("name", ["nope", "a.b", "-x", "x y", "x" * 65])
async def test_an_unknown_or_invalid_pipeline_name_is_404(served: Served, name: str) -> None:
    for stream in (False, True):
        response = await served.client.post(
            EXECUTE.format(name), json={"input": "hi", "stream": stream}, headers=acme()
        )

        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "unknown_pipeline"


async def test_a_path_trick_does_not_reach_a_pipeline(served: Served) -> None:
    for path in (
        "/api/v1/pipelines/..%2Fagents/execute",
        "/api/v1/pipelines/%2E%2E/execute",
        "/api/v1/pipelines/../echo/execute",
    ):
        response = await served.client.post(path, json={"input": "hi"}, headers=acme())

        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"


async def test_a_run_missing_a_state_key_is_400(served: Served) -> None:
    response = await served.client.post(
        EXECUTE.format("greeter"), json={"input": "hi"}, headers=acme()
    )

    assert response.status_code == 400
    assert "customer" in response.json()["detail"]


async def test_malformed_content_is_refused_before_a_stream_starts(served: Served) -> None:
    response = await served.client.post(
        EXECUTE.format("echo"),
        json={"input": {"parts": "not a list"}, "stream": True},
        headers=acme(),
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_input"


@pytest.mark.parametrize(
    ("agent", "status", "code", "retry_after"),
    [
        ("broke", 402, "budget_exceeded", None),
        ("limited", 429, "rate_limited", "3"),
        ("provider", 502, "model_failed", "7"),
        ("crash", 500, "internal_error", None),
    ],
)
async def test_a_failed_run_answers_with_its_mapped_status(
    served: Served, agent: str, status: int, code: str, retry_after: str | None
) -> None:
    response = await served.client.post(EXECUTE.format(agent), json={"input": "x"}, headers=acme())

    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["code"]) == (status, code)
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert response.headers.get("Retry-After") == retry_after
    assert LEAK not in response.text


async def test_a_refusal_keeps_its_message_and_an_internal_error_does_not(served: Served) -> None:
    broke = await served.client.post(EXECUTE.format("broke"), json={"input": "x"}, headers=acme())
    crash = await served.client.post(EXECUTE.format("crash"), json={"input": "x"}, headers=acme())

    assert "budget of tenant 'acme' would be exceeded" in broke.json()["detail"]
    assert "RuntimeError" not in crash.text
    assert "could not reach" not in crash.text


@pytest.mark.parametrize(
    ("agent", "status", "error_type"),
    [("broke", 402, "BudgetExceededError"), ("crash", 500, "ServerError")],
)
async def test_a_failed_stream_ends_with_a_filtered_run_failed(
    served: Served, agent: str, status: int, error_type: str
) -> None:
    response = await served.client.post(
        EXECUTE.format(agent), json={"input": "x", "stream": True}, headers=acme()
    )

    events = frames(response.text)
    assert response.status_code == 200
    assert events[0].event == "run_started"
    last = events[-1]
    assert last.event == "run_failed"
    assert (last.data["status"], last.data["error_type"]) == (status, error_type)
    assert last.data["run_id"] == events[0].data["run_id"]
    assert [f.event for f in events].count("run_failed") == 1
    assert LEAK not in response.text  # nor in the call_failed frames


async def test_event_sinks_get_every_event_of_every_run(serve: Serve) -> None:
    seen: list[RunEvent] = []
    server = await serve(event_sinks=[seen.append])

    await server.client.post(EXECUTE.format("echo"), json={"input": "a"}, headers=acme())
    await server.client.post(
        EXECUTE.format("echo"), json={"input": "b", "stream": True}, headers=globex()
    )

    runs = [(e.type, e.tenant_id) for e in seen if e.type in ("run_started", "run_completed")]
    assert runs == [
        ("run_started", "acme"),
        ("run_completed", "acme"),
        ("run_started", "globex"),
        ("run_completed", "globex"),
    ]


async def test_a_raising_event_sink_does_not_fail_the_run(serve: Serve) -> None:
    def explode(event: RunEvent) -> None:
        raise RuntimeError("sink down")

    server = await serve(event_sinks=[explode])

    response = await server.client.post(EXECUTE.format("echo"), json={"input": "a"}, headers=acme())

    assert response.json()["output"] == "echo: a"


async def test_orchestrators_are_built_once_per_pipeline(served: Served) -> None:
    first = served.runner.orchestrator("echo")

    await served.client.post(EXECUTE.format("echo"), json={"input": "a"}, headers=acme())
    await served.client.post(EXECUTE.format("echo"), json={"input": "b"}, headers=globex())

    assert served.runner.orchestrator("echo") is first
    assert served.runner.orchestrator("assistant") is not first
