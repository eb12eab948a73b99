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
            if isinstance(part, TextPart):
                chars += len(part.text)
            elif isinstance(part, ToolReturnPart):
                chars += len(part.content)
            elif isinstance(part, ToolCallPart):
                chars += len(part.tool_name) + 8 * len(part.args)
    return chars // 4 + 4 * count
