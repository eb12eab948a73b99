"""Messages to JSON-shaped dicts and back, so checkpoints can store a turn's transcript.

Binary parts travel as base64. Decoding checks every field's type: a checkpoint read back
from a store is input like any other, and a malformed one must fail clearly, not half-build
a transcript.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, get_args

from onionskin.core.errors import StoreError
from onionskin.core.messages import (
    DataPart,
    Message,
    Part,
    Role,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)

_ROLES = frozenset(get_args(Role))
JsonObject = dict[str, Any]
"""A JSON object (values: Any JSON)."""


def part_to_json(part: Part) -> JsonObject:
    """One part as a JSON object with a `type` tag."""
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, DataPart):
        return {
            "type": "data",
            "data": base64.b64encode(part.data).decode("ascii"),
            "mime_type": part.mime_type,
        }
    if isinstance(part, ToolCallPart):
        return {
            "type": "tool_call",
            "tool_name": part.tool_name,
            "args": dict(part.args),
            "call_id": part.call_id,
        }
    return {
        "type": "tool_return",
        "tool_name": part.tool_name,
        "content": part.content,
        "call_id": part.call_id,
        "is_error": part.is_error,
    }


def message_to_json(message: Message) -> JsonObject:
    """A message as a JSON object."""
    return {"role": message.role, "parts": [part_to_json(part) for part in message.parts]}


def _field(raw: Mapping[str, Any], name: str, kind: type) -> Any:  # Any: checked JSON value
    value = raw.get(name)
    if not isinstance(value, kind):
        raise StoreError(f"a stored message part has no valid {name!r}: {dict(raw)!r}")
    return value


def part_from_json(raw: Any) -> Part:  # Any: JSON read back from a store
    """Rebuild a part; `StoreError` if `raw` is not one `part_to_json` wrote."""
    if not isinstance(raw, Mapping):
        raise StoreError(f"a stored message part must be an object, got {raw!r}")
    match raw.get("type"):
        case "text":
            return TextPart(_field(raw, "text", str))
        case "data":
            try:
                data = base64.b64decode(_field(raw, "data", str), validate=True)
            except binascii.Error as error:
                raise StoreError(f"a stored binary part is not base64: {error}") from None
            return DataPart(data, _field(raw, "mime_type", str))
        case "tool_call":
            return ToolCallPart(
                _field(raw, "tool_name", str),
                dict(_field(raw, "args", Mapping)),
                _field(raw, "call_id", str),
            )
        case "tool_return":
            return tool_return_from_json(raw)
        case other:
            raise StoreError(f"a stored message part has an unknown type {other!r}")


def tool_return_from_json(raw: Any) -> ToolReturnPart:  # Any: JSON read back from a store
    """Rebuild a tool return part."""
    if not isinstance(raw, Mapping) or raw.get("type") != "tool_return":
        raise StoreError(f"expected a stored tool result, got {raw!r}")
    return ToolReturnPart(
        _field(raw, "tool_name", str),
        _field(raw, "content", str),
        _field(raw, "call_id", str),
        _field(raw, "is_error", bool),
    )


def message_from_json(raw: Any) -> Message:  # Any: JSON read back from a store
    """Rebuild a message; `StoreError` if `raw` is not one `message_to_json` wrote."""
    if not isinstance(raw, Mapping) or raw.get("role") not in _ROLES:
        raise StoreError(f"a stored message needs a known role, got {raw!r}")
    parts = raw.get("parts")
    if not isinstance(parts, list):
        raise StoreError(f"a stored message needs a list of parts, got {parts!r}")
    return Message(raw["role"], [part_from_json(part) for part in parts])
