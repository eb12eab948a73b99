"""The live progress of `run` and `replay`: plain lines off a terminal, a rich Live area on one."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from rich.console import Console

from onionskin.cli._progress import ProgressView, money
from onionskin.core.events import (
    CallFailed,
    CallFinished,
    CallStarted,
    RunCompleted,
    RunEvent,
    RunStarted,
    TextDelta,
)

RUN = "run-1"


def _events() -> list[RunEvent]:
    """A run of agent `writer`: a streamed model answer over three pieces, a failing tool."""
    return [
        RunStarted(run_id=RUN, tenant_id="acme", pipeline_id="report"),
        CallStarted(run_id=RUN, kind="agent", name="writer", call_id="a", agent="writer"),
        CallStarted(run_id=RUN, kind="model", name="gpt", call_id="m", agent="writer"),
        TextDelta(run_id=RUN, agent="writer", text="Hello"),
        TextDelta(run_id=RUN, agent="writer", text=" world\nsecond"),
        TextDelta(run_id=RUN, agent="writer", text=" line"),
        CallFinished(
            run_id=RUN,
            kind="model",
            name="gpt",
            call_id="m",
            duration_ms=12.4,
            input_tokens=10,
            output_tokens=5,
            cost_usd=Decimal("0.0000125"),
        ),
        CallStarted(run_id=RUN, kind="tool", name="lookup", call_id="t", agent="writer"),
        CallFailed(
            run_id=RUN,
            kind="tool",
            name="lookup",
            call_id="t",
            duration_ms=1.2,
            error_type="ToolError",
            error="no such order",
        ),
        CallFinished(run_id=RUN, kind="agent", name="writer", call_id="a", duration_ms=20.0),
        RunCompleted(
            run_id=RUN,
            output="Hello world",
            stopped=False,
            input_tokens=10,
            output_tokens=5,
            cost_usd=Decimal("0.0000125"),
            duration_ms=21.0,
        ),
    ]


EXPECTED = [
    "run run-1 started (pipeline report, tenant acme)",
    "→ agent writer",
    "  → model gpt",
    "    Hello world",
    "    second line",
    "  ← model gpt: 10 in / 5 out tokens, $0.0000125, 12 ms",
    "  → tool lookup",
    "  ✗ tool lookup failed after 1 ms: ToolError: no such order",
    "← agent writer: 20 ms",
]


def _shown(console: Console) -> str:
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


def test_off_a_terminal_the_run_is_plain_lines_with_text_as_it_streams() -> None:
    console = Console(file=io.StringIO(), force_terminal=False, width=40)
    streamed = []

    with ProgressView(console) as view:
        for event in _events():
            view(event)
            if isinstance(event, TextDelta):
                streamed.append(_shown(console))

    assert _shown(console).splitlines() == EXPECTED
    # Each piece was written when it came, not when the model call ended.
    assert streamed[0].endswith("\n    Hello")
    assert streamed[1].endswith("\n    Hello world\n    second")


def test_a_tool_that_answered_an_error_shows_it() -> None:
    console = Console(file=io.StringIO(), force_terminal=False, width=200)
    refused = CallFinished(
        run_id=RUN,
        kind="tool",
        name="lookup",
        call_id="t",
        duration_ms=0.4,
        error="lookup: order_id: Field required",
    )

    with ProgressView(console) as view:
        view(refused)

    assert _shown(console).splitlines() == [
        "  ← tool lookup: 0 ms, answered the error: lookup: order_id: Field required"
    ]


def test_text_cut_short_by_the_end_of_the_run_still_ends_its_line() -> None:
    console = Console(file=io.StringIO(), force_terminal=False)

    with ProgressView(console) as view:
        view(TextDelta(run_id=RUN, agent="writer", text="half a thought"))

    assert _shown(console) == "    half a thought\n"


def test_on_a_terminal_finished_calls_and_their_whole_text_are_printed() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=100, color_system=None)

    with ProgressView(console) as view:
        for event in _events():
            view(event)

    shown = _shown(console)
    positions = [shown.find(f"{line}\n") for line in EXPECTED]
    assert -1 not in positions, shown
    assert positions == sorted(positions)


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        (Decimal(0), "$0.000000"),
        (Decimal("1.5"), "$1.500000"),
        (Decimal("0.000123"), "$0.000123"),
        (Decimal("0.0000125"), "$0.0000125"),
        (Decimal("12.30000000"), "$12.300000"),
    ],
)
def test_money_shows_six_decimals_or_every_digit(amount: Decimal, shown: str) -> None:
    assert money(amount) == shown
