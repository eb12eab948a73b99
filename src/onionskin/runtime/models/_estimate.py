"""A rough token count for models that do not report usage (the scripted model)."""

from __future__ import annotations

from collections.abc import Iterable

from onionskin.core.messages import Message, TextPart, ToolCallPart, ToolReturnPart


def estimate_tokens(messages: Iterable[Message]) -> int:
    """About one token per four characters of text, plus four per message for its framing.

    Deterministic, so tests and the demo show stable figures.
    """
    chars = 0
    count = 0
    for message in messages:
        count += 1
        for part in message.parts:
            kind = type(part)
            if kind is TextPart:
                chars += len(part.text)  # type: ignore[union-attr]  # narrowed by `kind`
            elif kind is ToolReturnPart:
                chars += len(part.content)  # type: ignore[union-attr]  # narrowed by `kind`
            elif kind is ToolCallPart:
                chars += len(part.tool_name) + 8 * len(part.args)  # type: ignore[union-attr]
    return chars // 4 + 4 * count
