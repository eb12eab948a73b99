"""Enough of the Anthropic messages API for the fake server: SSE events and errors."""

from __future__ import annotations

import json
from typing import Any

from tests.runtime.models._fake_server import (
    Answer,
    Answerable,
    Failure,
    Reply,
    StreamError,
    pieces_of,
    words,
)

PATH = "/v1/messages"


def _event(kind: str, **data: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"


def _start(model: str, answer: Answer) -> str:
    message: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            # The API counts cache reads apart from the other input tokens.
            "input_tokens": answer.input_tokens - answer.cached_tokens,
            "cache_read_input_tokens": answer.cached_tokens,
            "cache_creation_input_tokens": 0,
            "output_tokens": 1,
        },
    }
    return _event("message_start", message=message)


def _blocks(answer: Answer) -> list[str]:
    events: list[str] = []
    index = 0
    if answer.text:
        events.append(
            _event("content_block_start", index=0, content_block={"type": "text", "text": ""})
        )
        for piece in words(answer.text):
            delta = {"type": "text_delta", "text": piece}
            events.append(_event("content_block_delta", index=0, delta=delta))
        events.append(_event("content_block_stop", index=0))
        index = 1
    for offset, (call_id, name, args) in enumerate(answer.tool_calls):
        block = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
        events.append(_event("content_block_start", index=index + offset, content_block=block))
        for piece in pieces_of(args):
            delta = {"type": "input_json_delta", "partial_json": piece}
            events.append(_event("content_block_delta", index=index + offset, delta=delta))
        events.append(_event("content_block_stop", index=index + offset))
    return events


def _stream(model: str, answer: Answer) -> list[str]:
    events = [_start(model, answer), _event("ping"), *_blocks(answer)]
    if not answer.complete:
        return events
    reason = "tool_use" if answer.tool_calls else "end_turn"
    delta = {"stop_reason": reason, "stop_sequence": None}
    events.append(
        _event("message_delta", delta=delta, usage={"output_tokens": answer.output_tokens})
    )
    events.append(_event("message_stop"))
    return events


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def render(path: str, body: Any, item: Answerable) -> Reply:
    """The messages API's answer to `body` for the scripted `item`."""
    if path != PATH:
        return Reply(status=404, json_body=_error("not_found_error", f"no route {path}"))
    if isinstance(item, Failure):
        headers = dict(item.headers)
        if item.retry_after is not None:
            headers["retry-after"] = item.retry_after
        kind = "rate_limit_error" if item.status == 429 else "api_error"
        return Reply(status=item.status, headers=headers, json_body=_error(kind, "scripted"))
    model = body["model"]
    if isinstance(item, StreamError):
        events = [
            _start(model, Answer()),
            f"event: error\ndata: {json.dumps(_error(item.kind, 'scripted'))}\n\n",
        ]
        return Reply(events=events)
    if not body.get("stream"):
        return Reply(status=400, json_body=_error("invalid_request_error", "fake: stream only"))
    return Reply(events=_stream(model, item), pause_after=item.pause_after)
