"""A checkpoint for people: one line of what had just happened, and its messages as text.

Shared by the CLI (`onionskin checkpoints RUN`) and the HTTP API (`GET .../checkpoints`),
so both describe a step in the same words. A checkpoint's messages and data are JSON the
runtime chose (see `onionskin.middleware._checkpoint_snapshot`); a store may also hold
checkpoints other code wrote, so every read here is defensive and a shape it does not know
gives a plainer line, never an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, assert_never

from onionskin.stores.checkpoints import Checkpoint

# Any below: a checkpoint's payloads are JSON values of the runtime's choosing (as typed there).


def clip(text: str, width: int = 60) -> str:
    """`text` on one line, at most `width` characters (an ellipsis marks a cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def summary(checkpoint: Checkpoint) -> str:
    """What the checkpoint shows, in a line: the input, a reply, a tool result, an output."""
    data = checkpoint.data
    match checkpoint.kind:
        case "input":
            text = _message_text(data.get("input"))
            detail = f"input: {text}" if text else "input"
        case "model":
            detail = _reply(checkpoint.messages)
        case "tool":
            detail = _tool_return(data.get("tool_returns"))
        case "agent":
            outputs = data.get("outputs")
            output = outputs.get(checkpoint.agent) if isinstance(outputs, Mapping) else None
            detail = f"output: {_text(output)}" if output is not None else "turn finished"
        case "end":
            detail = _end(data)
        case unknown:
            assert_never(unknown)
    return clip(f"{detail} [{_state(checkpoint.state)}]", 100)


def _end(data: Mapping[str, Any]) -> str:
    error = data.get("error")
    if isinstance(error, Mapping):
        return f"failed: {error.get('type', 'error')}: {_text(error.get('message', ''))}"
    if data.get("stopped"):
        return "stopped"
    return f"output: {_text(data.get('output'))}"


def _reply(messages: Sequence[Mapping[str, Any]]) -> str:
    if not messages:
        return "model answered"
    last = messages[-1]
    calls = [
        f"{part.get('tool_name')}({_args(part.get('args'))})"
        for part in _parts(last)
        if part.get("type") == "tool_call"
    ]
    if calls:
        return "calls " + ", ".join(calls)
    return f"{last.get('role', 'message')}: {_message_text(last)}"


def _tool_return(returns: object) -> str:
    if not isinstance(returns, Sequence) or not returns or not isinstance(returns[-1], Mapping):
        return "tool returned"
    last = returns[-1]
    marker = "error" if last.get("is_error") else "→"
    return f"{last.get('tool_name', 'tool')} {marker} {_text(last.get('content'))}"


def plain_text(message: object) -> str:
    """A stored message's parts as plain text, one line per part, nothing cut.

    Text as written; a tool call as `calls tool(args)`; a tool result as `tool → content`
    (`tool error content` when it failed); binary data as `[mime/type]`.
    """
    lines: list[str] = []
    for part in _parts(message):
        match part.get("type"):
            case "text":
                lines.append(str(part.get("text", "")))
            case "tool_call":
                lines.append(f"calls {part.get('tool_name')}({_args(part.get('args'))})")
            case "tool_return":
                marker = "error" if part.get("is_error") else "→"
                lines.append(f"{part.get('tool_name', 'tool')} {marker} {part.get('content', '')}")
            case "data":
                lines.append(f"[{part.get('mime_type', 'data')}]")
    return "\n".join(lines)


def _parts(message: object) -> list[Mapping[str, Any]]:
    parts = message.get("parts") if isinstance(message, Mapping) else None
    if not isinstance(parts, Sequence):
        return []
    return [part for part in parts if isinstance(part, Mapping)]


def _message_text(message: object) -> str:
    return " ".join(str(p.get("text", "")) for p in _parts(message) if p.get("type") == "text")


def _args(args: object) -> str:
    if not isinstance(args, Mapping):
        return ""
    return ", ".join(f"{key}={value!r}" for key, value in args.items())


def _text(value: object) -> str:
    return clip(value if isinstance(value, str) else repr(value), 60)


def _state(state: Mapping[str, Any]) -> str:
    keys = sorted(state)
    return "state: " + (", ".join(keys) if keys else "empty")
