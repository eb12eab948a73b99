"""Wire-format edge cases the fake servers do not script: read straight from SDK objects."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.types import (
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawMessageDeltaEvent,
    RawMessageStopEvent,
    RawMessageStreamEvent,
)
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from onionskin import ConfigError, Message, ModelError, TextPart, ToolCallPart
from onionskin.runtime.models._anthropic_messages import wire_messages as anthropic_messages
from onionskin.runtime.models._anthropic_replies import EventAssembler, stream_error_status
from onionskin.runtime.models._openai_messages import wire_messages as openai_messages
from onionskin.runtime.models._openai_replies import ChunkAssembler, completion_response
from onionskin.runtime.models.resolve import register_provider, scripted_stand_in


def completion(message: dict[str, Any], usage: dict[str, Any] | None = None) -> ChatCompletion:
    choices = [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop"}]
    return ChatCompletion.model_validate(
        {
            "id": "c",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": choices if message else [],
            "usage": usage,
        }
    )


def chunk(*choices: dict[str, Any]) -> ChatCompletionChunk:
    return ChatCompletionChunk.model_validate(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, **choice} for choice in choices],
        }
    )


# --- OpenAI ----------------------------------------------------------------------------------


def test_a_completion_without_choices_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="no choices"):
        completion_response("m", completion({}))


def test_a_refusal_is_the_answer_text_and_missing_usage_is_zero() -> None:
    response = completion_response("m", completion({"content": None, "refusal": "I can't."}))

    assert response.message == Message.assistant("I can't.")
    assert response.usage.total_tokens == 0


def test_a_custom_tool_call_is_refused() -> None:
    call = {"id": "x", "type": "custom", "custom": {"name": "grammar", "input": "text"}}

    with pytest.raises(ModelError, match="'custom' tool call"):
        completion_response("m", completion({"content": None, "tool_calls": [call]}))


def test_stream_tool_calls_without_ids_get_one_and_other_choices_are_ignored() -> None:
    assembler = ChunkAssembler("m")
    call = {"index": 0, "function": {"name": "lookup", "arguments": '{"q": 1}'}}

    texts = [
        assembler.add(chunk({"delta": {"content": "a"}}, {"index": 1, "delta": {"content": "X"}})),
        assembler.add(chunk({"delta": {"tool_calls": [call]}})),
        assembler.add(chunk({"delta": {"tool_calls": [{"index": 0}]}})),
    ]
    response = assembler.response()

    assert texts == ["a", "", ""]
    assert response.message.text == "a"
    [made] = response.message.tool_calls
    assert (made.tool_name, made.args) == ("lookup", {"q": 1})
    assert made.call_id.startswith("call_")


def test_a_streamed_tool_call_without_a_name_is_a_model_error() -> None:
    assembler = ChunkAssembler("m")
    assembler.add(chunk({"delta": {"tool_calls": [{"index": 0, "id": "c1"}]}}))

    with pytest.raises(ModelError, match="without naming it"):
        assembler.response()


def test_an_assistant_message_with_neither_text_nor_calls_sends_empty_content() -> None:
    assert openai_messages("m", [Message("assistant", [])]) == [
        {"role": "assistant", "content": ""}
    ]


def test_an_assistant_message_sends_its_text_beside_its_tool_calls() -> None:
    message = Message("assistant", [TextPart("Looking."), ToolCallPart("find", {"q": "é"}, "c")])

    assert openai_messages("m", [message]) == [
        {
            "role": "assistant",
            "content": "Looking.",
            "tool_calls": [
                {
                    "id": "c",
                    "type": "function",
                    "function": {"name": "find", "arguments": '{"q": "é"}'},
                }
            ],
        }
    ]


# --- Anthropic -------------------------------------------------------------------------------


def test_empty_turns_are_left_out_and_adjacent_turns_merge() -> None:
    messages = [
        Message.user("one"),
        Message("assistant", [TextPart("")]),
        Message.user("two"),
        Message("assistant", [TextPart("three"), ToolCallPart("t", {}, "c")]),
    ]

    system, wire = anthropic_messages("m", messages)

    assert system == ""
    assert wire == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "three"},
                {"type": "tool_use", "id": "c", "name": "t", "input": {}},
            ],
        },
    ]


def test_events_update_usage_skip_unkept_blocks_and_join_adjacent_texts() -> None:
    assembler = EventAssembler("m")
    events: list[RawMessageStreamEvent] = [
        RawContentBlockStartEvent.model_validate(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""},
            }
        ),
        RawContentBlockDeltaEvent.model_validate(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "hm"},
            }
        ),
        RawContentBlockStartEvent.model_validate(
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "text", "text": "Hel"},
            }
        ),
        RawContentBlockStartEvent.model_validate(
            {
                "type": "content_block_start",
                "index": 2,
                "content_block": {"type": "text", "text": "lo"},
            }
        ),
        RawMessageDeltaEvent.model_validate(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {
                    "output_tokens": 5,
                    "input_tokens": 10,
                    "cache_read_input_tokens": 4,
                    "cache_creation_input_tokens": 2,
                },
            }
        ),
        RawMessageStopEvent.model_validate({"type": "message_stop"}),
    ]

    texts = [assembler.add(event) for event in events]
    response = assembler.response()

    assert texts == ["", "", "Hel", "lo", "", ""]
    assert response.message.parts == [TextPart("Hello")]
    usage = response.usage
    assert (usage.input_tokens, usage.cached_tokens, usage.output_tokens) == (16, 4, 5)
    assert assembler.finished


@pytest.mark.parametrize(
    ("status", "body", "meant"),
    [
        (200, {"type": "error", "error": {"type": "overloaded_error"}}, 529),
        (200, {"type": "error", "error": {"type": "brand_new_error"}}, 500),
        (200, "not json", 200),
        (404, {"type": "error", "error": {"type": "rate_limit_error"}}, 404),
    ],
)
def test_stream_error_status_reads_the_error_type_only_under_a_success_status(
    status: int, body: object, meant: int
) -> None:
    assert stream_error_status(status, body) == meant


# --- resolver --------------------------------------------------------------------------------


def test_a_provider_prefix_must_be_a_plain_name() -> None:
    with pytest.raises(ConfigError, match="plain name"):
        register_provider("open ai", lambda name, options: scripted_stand_in(name), unavailable="")
