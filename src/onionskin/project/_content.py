"""Seed 002's content dict, to and from the agent's input `Message`.

```python
{"role": "user", "parts": [{"text": "..."}, {"data": b"...", "mime_type": "application/pdf"}]}
```
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from onionskin.core.errors import InvalidInputError
from onionskin.core.messages import DataPart, Message, TextPart
from onionskin.project.errors import ProjectError
from onionskin.runtime._input import parts_from_dicts


def content_dict(message: Message) -> dict[str, Any]:
    """A fresh content dict for `message` (a hook may change it freely; Any: seed's shape)."""
    parts: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            parts.append({"text": part.text})
        elif isinstance(part, DataPart):
            parts.append({"data": part.data, "mime_type": part.mime_type})
        else:
            # An agent's input is what a user sends: text and files. Tool traffic never is.
            raise InvalidInputError(
                f"an agent's input may hold text and data parts only, got {type(part).__name__}"
            )
    return {"role": message.role, "parts": parts}


def content_message(content: object, source: str) -> Message:
    """The `Message` a `before()` hook's returned content stands for.

    Raises:
        ProjectError: naming `source`, when the content is not a valid content dict.
    """
    if content is None:
        raise ProjectError(
            source,
            "before() returned None; return the content (the dict it was given, changed or not)",
        )
    if not isinstance(content, Mapping) or "parts" not in content:
        raise ProjectError(
            source,
            'before() must return the content dict {"role": "user", "parts": [...]}, '
            f"got {content!r:.80}",
        )
    role = content.get("role", "user")
    if role != "user":
        raise ProjectError(
            source, f"before() returned content with role {role!r}; an agent's input is 'user'"
        )
    try:
        return Message("user", parts_from_dicts(content["parts"]))
    except InvalidInputError as error:
        raise ProjectError(source, f"before() returned invalid content: {error}") from error
