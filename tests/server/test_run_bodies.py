"""The JSON of a checkpoint: any stored shape reads as text, and failures stay generic."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from onionskin.server.routes._run_bodies import checkpoint_body, run_body, summarize
from onionskin.stores.checkpoints import Checkpoint, CheckpointKind, RunStatus


def checkpoint(
    kind: CheckpointKind = "model",
    *,
    messages: list[Any] | None = None,
    data: dict[str, Any] | None = None,
    status: RunStatus = "running",
) -> Checkpoint:
    return Checkpoint(
        checkpoint_id="c1",
        run_id="r1",
        tenant_id="acme",
        parent_id=None,
        pipeline_id="p",
        step=0,
        kind=kind,
        agent="writer",
        status=status,
        state={},
        messages=messages or [],
        data=data or {},
        created_at=datetime(2025, 3, 1, 12, tzinfo=UTC),
    )


def test_every_part_of_a_message_reads_as_a_line_of_text() -> None:
    stored = [
        {
            "role": "tool",
            "parts": [
                {"type": "text", "text": "see below"},
                {"type": "data", "data": "AAAA", "mime_type": "application/pdf"},
                {
                    "type": "tool_return",
                    "tool_name": "fetch",
                    "content": "timeout",
                    "is_error": True,
                },
                {"type": "tool_call", "tool_name": "fetch", "args": {"url": "x"}, "call_id": "1"},
                {"type": "from-the-future"},
                "not a part",
            ],
        },
        "not a message",
        {"parts": "not a list"},
    ]

    body = checkpoint_body(checkpoint(messages=stored))

    assert [(m.role, m.text) for m in body.messages] == [
        ("tool", "see below\n[application/pdf]\nfetch error timeout\ncalls fetch(url='x')"),
        ("unknown", ""),
        ("unknown", ""),
    ]


def test_a_failure_the_api_would_not_show_is_generic_in_the_summary() -> None:
    hidden = checkpoint("end", data={"error": {"type": "OperationalError", "message": "db://pw"}})
    shown = checkpoint("end", data={"error": {"type": "BudgetExceededError", "message": "spent"}})

    assert checkpoint_body(hidden).summary.startswith("failed: ServerError: the run failed")
    assert checkpoint_body(shown).summary.startswith("failed: BudgetExceededError: spent")


def test_a_completed_run_ended_by_a_middleware_is_stopped() -> None:
    end = checkpoint("end", data={"stopped": True}, status="completed")
    answered = checkpoint("end", data={"output": "hi"}, status="completed")

    assert run_body(summarize([end]), end).status == "stopped"
    assert run_body(summarize([answered]), answered).status == "completed"
    assert run_body(summarize([answered]), None).last_step is None
