"""What a run's input becomes: the first agent's message, and keys for the run's state."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic_core

from onionskin.core.errors import InvalidInputError
from onionskin.core.messages import DataPart, Message, Part, TextPart


def parts_from_dicts(parts: object) -> list[Part]:
    """Seed 002's part dicts (`{"text": ...}` or `{"data": ..., "mime_type": ...}`) as parts."""
    if not isinstance(parts, list):
        raise InvalidInputError(f"content 'parts' must be a list, got {type(parts).__name__}")
    converted: list[Part] = []
    for index, part in enumerate(parts):
        if isinstance(part, Mapping) and isinstance(part.get("text"), str):
            converted.append(TextPart(part["text"]))
        elif (
            isinstance(part, Mapping)
            and isinstance(part.get("data"), bytes)
            and isinstance(part.get("mime_type"), str)
        ):
            converted.append(DataPart(part["data"], part["mime_type"]))
        else:
            raise InvalidInputError(
                f"content part {index} must be {{'text': str}} or "
                f"{{'data': bytes, 'mime_type': str}}, got {part!r:.80}"
            )
    return converted


def input_message(input_data: object) -> tuple[Message, dict[str, Any]]:
    """Turn `run()`'s input into the first agent's message and the state it seeds.

    A string is the user's message. A `Message` is used as is. A mapping with `parts` is
    seed 002's content dict; a mapping with `message` gives the text, and its other keys
    seed the state; any other mapping is sent as JSON and all its keys seed the state.
    (State values are JSON-like: Any.)
    """
    if isinstance(input_data, str):
        return Message.user(input_data), {}
    if isinstance(input_data, Message):
        return input_data, {}
    if isinstance(input_data, Mapping):
        data = {str(key): value for key, value in input_data.items()}
        if "parts" in data:
            role = data.get("role", "user")
            if role != "user":
                raise InvalidInputError(f"a run's content must have role 'user', got {role!r}")
            return Message("user", parts_from_dicts(data["parts"])), {}
        if "message" not in data:
            text = pydantic_core.to_json(input_data, fallback=str).decode()
            return Message.user(text), data
        message = data.pop("message")
        if not isinstance(message, str):
            raise InvalidInputError(f"input 'message' must be text, got {type(message).__name__}")
        return Message.user(message), data
    raise InvalidInputError(
        "a run's input must be text, a Message, or a mapping (with 'message' or seed 002's "
        f"'parts'); got {type(input_data).__name__}"
    )
