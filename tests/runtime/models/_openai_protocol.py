"""Enough of the OpenAI chat completions API for the fake server: JSON, SSE chunks, errors."""

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

PATH = "/v1/chat/completions"


def _usage(answer: Answer) -> dict[str, Any]:
    return {
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": answer.output_tokens,
        "total_tokens": answer.input_tokens + answer.output_tokens,
        "prompt_tokens_details": {"cached_tokens": answer.cached_tokens},
    }


def _completion(model: str, answer: Answer) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.text or None}
    if answer.tool_calls:
        message["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
            for call_id, name, args in answer.tool_calls
        ]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if answer.tool_calls else "stop",
            }
        ],
        "usage": _usage(answer),
    }


def _chunk(model: str, delta: dict[str, Any] | None, **extra: Any) -> str:
    choices = [] if delta is None else [{"index": 0, "delta": delta, **extra}]
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": choices,
    }
    return f"data: {json.dumps(body)}\n\n"


def _tool_chunks(model: str, answer: Answer) -> list[str]:
    chunks = []
    for index, (call_id, name, args) in enumerate(answer.tool_calls):
        first = {"index": index, "id": call_id, "type": "function"}
        first["function"] = {"name": name, "arguments": ""}
        chunks.append(_chunk(model, {"tool_calls": [first]}))
        for piece in pieces_of(args):
            call = {"index": index, "function": {"arguments": piece}}
            chunks.append(_chunk(model, {"tool_calls": [call]}))
    return chunks


def _stream(model: str, body: Any, answer: Answer) -> list[str]:
    events = [_chunk(model, {"role": "assistant", "content": ""})]
    events += [_chunk(model, {"content": piece}) for piece in words(answer.text)]
    events += _tool_chunks(model, answer)
    if not answer.complete:
        return events
    reason = "tool_calls" if answer.tool_calls else "stop"
    events.append(_chunk(model, {}, finish_reason=reason))
    if (body.get("stream_options") or {}).get("include_usage"):
        usage_chunk = json.loads(_chunk(model, None)[len("data: ") :])
        usage_chunk["usage"] = _usage(answer)
        events.append(f"data: {json.dumps(usage_chunk)}\n\n")
    events.append("data: [DONE]\n\n")
    return events


def render(path: str, body: Any, item: Answerable) -> Reply:
    """The chat completions API's answer to `body` for the scripted `item`."""
    if path != PATH:
        return Reply(status=404, json_body={"error": {"message": f"no route {path}"}})
    if isinstance(item, Failure):
        headers = dict(item.headers)
        if item.retry_after is not None:
            headers["Retry-After"] = item.retry_after
        error = {"message": f"scripted failure {item.status}", "type": "server_error"}
        return Reply(status=item.status, headers=headers, json_body={"error": error})
    if isinstance(item, StreamError):
        error = {"message": f"scripted {item.kind}", "type": item.kind}
        return Reply(events=[f"data: {json.dumps({'error': error})}\n\n"])
    model = body["model"]
    if body.get("stream"):
        return Reply(events=_stream(model, body, item), pause_after=item.pause_after)
    return Reply(json_body=_completion(model, item))
