"""`Event.to_dict()`: the dict `dataclasses.asdict` gave, built field by field."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any, TypedDict

import pytest

from onionskin.core.events import (
    CallFailed,
    CallFinished,
    CallStarted,
    RunCompleted,
    RunEvent,
    RunFailed,
    RunStarted,
    TextDelta,
)


def asdict_reference(event: RunEvent) -> dict[str, Any]:
    """What `to_dict` returned when it was built on `dataclasses.asdict` (the reference)."""
    data = asdict(event)
    data["type"] = event.type
    for key, value in data.items():
        if isinstance(value, Decimal):
            data[key] = str(value)
    return data


@dataclass
class Answer:
    """A structured output, as an agent with an output type returns it."""

    text: str
    scores: list[float]
    price: Decimal


class Common(TypedDict):
    """What every event carries."""

    run_id: str
    tenant_id: str
    timestamp: float


BASE: Common = {"run_id": "run-1", "tenant_id": "acme", "timestamp": 1700000000.25}
EVENTS: list[RunEvent] = [
    RunStarted(**BASE, pipeline_id="assistant"),
    CallStarted(**BASE, kind="model", name="gpt", call_id="c1", agent="assistant"),
    CallStarted(**BASE, kind="agent", name="assistant", call_id="c0"),
    CallFinished(
        **BASE,
        kind="model",
        name="gpt",
        call_id="c1",
        duration_ms=1.5,
        agent="assistant",
        input_tokens=8,
        output_tokens=9,
        cost_usd=Decimal("0.000123"),
    ),
    CallFinished(**BASE, kind="tool", name="lookup", call_id="c2", duration_ms=0.25),
    CallFailed(
        **BASE,
        kind="model",
        name="gpt",
        call_id="c3",
        duration_ms=2.0,
        error_type="ModelError",
        error="upstream said no",
    ),
    TextDelta(**BASE, agent="assistant", text="hello\nworld"),
    RunFailed(**BASE, error_type="RuntimeError", error="boom", duration_ms=3.0),
    RunCompleted(
        **BASE,
        output="found: facts",
        stopped=False,
        input_tokens=8,
        output_tokens=9,
        cost_usd=Decimal("0.5"),
        duration_ms=4.0,
    ),
    RunCompleted(
        **BASE,
        output=None,
        stopped=True,
        input_tokens=0,
        output_tokens=0,
        cost_usd=Decimal(0),
        duration_ms=0.0,
    ),
]
OUTPUTS: list[Any] = [
    {"answer": "yes", "sources": ["a", "b"], "nested": {"n": 1}},
    ["one", 2, 3.5, None, True],
    ("a", "tuple"),
    Answer(text="x", scores=[0.5, 0.25], price=Decimal("1.10")),
    [Answer(text="y", scores=[], price=Decimal(2))],
    Decimal("9.99"),
    {"price": Decimal("1.5")},
    42,
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda event: type(event).__name__)
def test_every_event_type_gives_the_dict_asdict_gave(event: RunEvent) -> None:
    data = event.to_dict()

    assert data == asdict_reference(event)
    assert list(data) == list(asdict_reference(event))  # the same key order, `type` last
    assert data["type"] == event.type


@pytest.mark.parametrize("output", OUTPUTS, ids=lambda output: type(output).__name__)
def test_any_output_is_converted_as_asdict_converted_it(output: Any) -> None:
    event = RunCompleted(
        **BASE,
        output=output,
        stopped=False,
        input_tokens=1,
        output_tokens=2,
        cost_usd=Decimal("0.01"),
        duration_ms=1.0,
    )

    data = event.to_dict()

    expected = asdict_reference(event)
    assert data == expected
    assert type(data["output"]) is type(expected["output"])


def test_the_dict_shares_no_container_with_the_event() -> None:
    output = {"items": [1, 2]}
    event = RunCompleted(
        **BASE,
        output=output,
        stopped=False,
        input_tokens=0,
        output_tokens=0,
        cost_usd=Decimal(0),
        duration_ms=0.0,
    )

    event.to_dict()["output"]["items"].append(3)

    assert output == {"items": [1, 2]}
