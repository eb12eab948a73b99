from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from onionskin import (
    ConfigError,
    DataPart,
    GuardError,
    InvalidInputError,
    Message,
    ModelRequest,
    Orchestrator,
    RunEvent,
    TextPart,
    current_context,
)
from onionskin.runtime.models.scripted import ScriptItem
from tests.conftest import OrchestratorFactory

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"


def recording(seen: list[ModelRequest], answer: str = "ok") -> Callable[[ModelRequest], ScriptItem]:
    """A function script that records every request and answers `answer`."""

    def script(request: ModelRequest) -> ScriptItem:
        seen.append(request)
        return answer

    return script


@pytest.fixture
def seen() -> list[ModelRequest]:
    return []


@pytest.fixture
def orchestrator(
    orchestrator_factory: OrchestratorFactory, seen: list[ModelRequest]
) -> Orchestrator:
    return orchestrator_factory(recording(seen))


def first_message(seen: list[ModelRequest]) -> Message:
    assert len(seen) == 1
    return seen[0].messages[-1]


# --- accepted input --------------------------------------------------------------------------


async def test_text_becomes_the_users_message(
    orchestrator: Orchestrator, seen: list[ModelRequest]
) -> None:
    result = await orchestrator.execute("Where is my parcel?")

    assert first_message(seen) == Message("user", [TextPart("Where is my parcel?")])
    assert result.state["input"] == "Where is my parcel?"
    assert result.output == "ok"


async def test_empty_text_is_a_valid_message(
    orchestrator: Orchestrator, seen: list[ModelRequest]
) -> None:
    result = await orchestrator.execute("")

    assert first_message(seen) == Message.user("")
    assert result.state["input"] == ""


async def test_message_is_passed_on_as_given(
    orchestrator: Orchestrator, seen: list[ModelRequest]
) -> None:
    message = Message("user", [TextPart("Look:"), DataPart(b"\x89PNG", "image/png")])

    result = await orchestrator.execute(message)

    assert first_message(seen) == Message(
        "user", [TextPart("Look:"), DataPart(b"\x89PNG", "image/png")]
    )
    assert result.state["input"] == "Look:"


async def test_mapping_with_message_gives_the_text_and_seeds_state_with_the_rest(
    orchestrator_factory: OrchestratorFactory, seen: list[ModelRequest]
) -> None:
    orchestrator = orchestrator_factory(recording(seen), instructions="Help {user} ({plan}).")

    result = await orchestrator.execute({"message": "Cancel my order", "user": "Ada", "plan": 2})

    assert seen[0].messages == [
        Message.system("Help Ada (2)."),
        Message.user("Cancel my order"),
    ]
    assert result.state == {"user": "Ada", "plan": 2, "input": "Cancel my order", "assistant": "ok"}
    assert "message" not in result.state


async def test_explicit_state_overrides_keys_seeded_by_the_input(
    orchestrator: Orchestrator,
) -> None:
    result = await orchestrator.execute(
        {"message": "hi", "user": "Ada", "input": "from the mapping"},
        state={"user": "Bob", "extra": True},
    )

    assert result.state["user"] == "Bob"
    assert result.state["extra"] is True
    assert result.state["input"] == "from the mapping"


async def test_mapping_keys_are_turned_into_strings(orchestrator: Orchestrator) -> None:
    result = await orchestrator.execute({"message": "hi", 7: "seven"})

    assert result.state["7"] == "seven"


async def test_mapping_without_message_is_sent_as_json_and_seeds_state(
    orchestrator: Orchestrator, seen: list[ModelRequest]
) -> None:
    result = await orchestrator.execute({"city": "Paris", "days": 2, "tags": ["art"]})

    assert first_message(seen) == Message.user('{"city":"Paris","days":2,"tags":["art"]}')
    assert result.state["city"] == "Paris"
    assert result.state["days"] == 2
    assert result.state["tags"] == ["art"]
    assert result.state["input"] == '{"city":"Paris","days":2,"tags":["art"]}'


async def test_content_dict_reaches_the_model_as_text_and_data_parts(
    orchestrator: Orchestrator, seen: list[ModelRequest]
) -> None:
    content = {
        "role": "user",
        "parts": [
            {"text": "Summarise this contract."},
            {"data": PDF, "mime_type": "application/pdf"},
        ],
    }

    result = await orchestrator.execute(content)

    message = first_message(seen)
    assert message.role == "user"
    assert message.parts == [
        TextPart("Summarise this contract."),
        DataPart(PDF, "application/pdf"),
    ]
    data = message.parts[1]
    assert isinstance(data, DataPart)
    assert data.data == PDF
    assert result.state["input"] == "Summarise this contract."
    assert "parts" not in result.state
    assert "role" not in result.state


async def test_content_dict_without_role_is_the_users(
    orchestrator: Orchestrator, seen: list[ModelRequest]
) -> None:
    await orchestrator.execute({"parts": [{"text": "one"}, {"text": "two"}]})

    assert first_message(seen) == Message("user", [TextPart("one"), TextPart("two")])


async def test_content_dict_with_only_data_has_empty_input_text(
    orchestrator: Orchestrator, seen: list[ModelRequest]
) -> None:
    result = await orchestrator.execute(
        {"role": "user", "parts": [{"data": PDF, "mime_type": "application/pdf"}]}
    )

    assert first_message(seen).parts == [DataPart(PDF, "application/pdf")]
    assert result.state["input"] == ""


async def test_run_context_keeps_the_original_input(
    orchestrator_factory: OrchestratorFactory,
) -> None:
    received: list[object] = []

    def script(request: ModelRequest) -> ScriptItem:
        received.append(current_context().input_data)
        return "ok"

    content = {"message": "hi", "user": "Ada"}
    await orchestrator_factory(script).execute(content)

    assert received == [content]


# --- refused input ---------------------------------------------------------------------------


BAD_INPUTS: list[tuple[str, Any, str]] = [
    ("int", 42, "got int"),
    ("none", None, "got NoneType"),
    ("float", 1.5, "got float"),
    ("bytes", b"hello", "got bytes"),
    ("list", ["hello"], "got list"),
    ("parts-str", {"parts": "hello"}, "'parts' must be a list, got str"),
    ("parts-tuple", {"parts": ({"text": "x"},)}, "'parts' must be a list, got tuple"),
    ("parts-none", {"role": "user", "parts": None}, "'parts' must be a list"),
    ("empty-part", {"parts": [{}]}, "content part 0"),
    ("second-part", {"parts": [{"text": "ok"}, {"image": "x"}]}, "content part 1"),
    ("text-not-str", {"parts": [{"text": 3}]}, "content part 0"),
    ("part-not-dict", {"parts": ["just text"]}, "content part 0"),
    ("data-not-bytes", {"parts": [{"data": "abc", "mime_type": "text/plain"}]}, "content part 0"),
    ("data-no-mime", {"parts": [{"data": PDF}]}, "content part 0"),
    ("mime-not-str", {"parts": [{"data": PDF, "mime_type": None}]}, "content part 0"),
    ("role-model", {"role": "model", "parts": [{"text": "x"}]}, "role 'user', got 'model'"),
    ("role-assistant", {"role": "assistant", "parts": [{"text": "x"}]}, "got 'assistant'"),
    ("role-system", {"role": "system", "parts": [{"text": "x"}]}, "got 'system'"),
    ("message-int", {"message": 42}, "'message' must be text, got int"),
    ("message-list", {"message": ["hi"]}, "'message' must be text, got list"),
    ("message-bytes", {"message": b"hi"}, "'message' must be text, got bytes"),
]


@pytest.mark.parametrize(
    ("input_data", "reason"),
    [(value, reason) for _, value, reason in BAD_INPUTS],
    ids=[name for name, _, _ in BAD_INPUTS],
)
async def test_bad_input_is_refused_before_the_model_is_called(
    orchestrator: Orchestrator, seen: list[ModelRequest], input_data: Any, reason: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        await orchestrator.execute(input_data)

    assert reason in str(info.value)
    assert isinstance(info.value, GuardError)
    assert seen == []


async def test_message_none_is_refused_like_any_non_text_message(
    orchestrator: Orchestrator, seen: list[ModelRequest]
) -> None:
    with pytest.raises(InvalidInputError, match="'message' must be text"):
        await orchestrator.execute({"message": None, "user": "Ada"})

    assert seen == []


async def test_bad_input_is_refused_by_the_streaming_run_too(
    orchestrator: Orchestrator, seen: list[ModelRequest]
) -> None:
    events: list[RunEvent] = []

    async def drain() -> None:
        async for event in orchestrator.run({"role": "model", "parts": [{"text": "x"}]}):
            events.append(event)

    with pytest.raises(InvalidInputError, match="role 'user'"):
        await drain()

    assert events == []
    assert seen == []


async def test_bad_input_does_not_reach_on_error_hooks(
    orchestrator_factory: OrchestratorFactory, seen: list[ModelRequest]
) -> None:
    errors: list[BaseException] = []

    class Watch:
        def on_error(self, context: object, error: BaseException) -> None:
            errors.append(error)

    orchestrator = orchestrator_factory(recording(seen), middleware=[Watch()])

    with pytest.raises(InvalidInputError):
        await orchestrator.execute(12)

    assert errors == []
    assert seen == []


async def test_state_that_is_not_a_mapping_is_a_config_error(
    orchestrator: Orchestrator, seen: list[ModelRequest]
) -> None:
    state: Any = [("user", "Ada")]

    with pytest.raises(ConfigError, match="state must be a mapping, got list"):
        await orchestrator.execute("hi", state=state)

    assert seen == []
