"""The trace file's records: what a record holds and how values are encoded.

A record has every field in a stable order (`new_record`); `JsonEncoder` turns what a call
carried into JSON values, redacting secret keys at any depth and scrubbing text. The
writer that appends records to the file is `_trace_writer`.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any, TypeAlias

from onionskin.core.context import current_context_or_none
from onionskin.core.messages import DataPart, Message, TextPart, ToolCallPart

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"
Record: TypeAlias = dict[str, JsonValue]

REDACTED = "[REDACTED]"
_MAX_DEPTH = 32
_MAX_REPR = 2_000
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
# The memo of secret keys holds names, not data: long keys and keys past the bound (a
# mapping keyed by the caller's values) are checked every time instead of remembered.
_MEMO_KEYS = 1_024
_MEMO_KEY_LENGTH = 64
_FIELDS = (
    *("run_id", "call_id", "tenant_id", "user_id", "session_id", "agent", "kind", "name"),
    *("started_at", "duration_ms", "status", "arguments", "result", "error", "tokens", "cost"),
)
# Copying a record with every field in place costs less than building one field by field.
_BLANK: dict[str, JsonValue] = {**dict.fromkeys(_FIELDS), "duration_ms": 0.0, "status": "ok"}


def key_words(key: str) -> tuple[str, ...]:
    """The lower-cased words of a key: `"X-Api-Key"` and `"apiKey"` give `("api", "key")`."""
    return tuple(word.lower() for word in _WORDS.findall(key))


def new_record(kind: str, name: str, call_id: str, session_id: str | None, started: str) -> Record:
    """A call's record before it ends: every field present, in a stable order."""
    record = _BLANK.copy()
    ctx = current_context_or_none()
    if ctx is not None:
        record["run_id"] = ctx.run_id
        record["tenant_id"] = ctx.tenant_id
        record["user_id"] = ctx.user_id
        record["agent"] = ctx.current_agent
    record["call_id"] = call_id
    record["session_id"] = session_id
    record["kind"] = kind
    record["name"] = name
    record["started_at"] = started
    return record


def message_json(message: Message) -> dict[str, Any]:
    """A message as plain values for `JsonEncoder` (Any: tool call arguments are JSON)."""
    parts: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            parts.append({"type": "text", "text": part.text})
        elif isinstance(part, ToolCallPart):
            parts.append({"type": "tool_call", "tool_name": part.tool_name, "args": part.args})
        elif isinstance(part, DataPart):
            parts.append({"type": "data", "mime_type": part.mime_type, "size": len(part.data)})
        else:
            content = {"content": _parsed(part.content), "is_error": part.is_error}
            parts.append({"type": "tool_return", "tool_name": part.tool_name, **content})
    return {"role": message.role, "parts": parts}


def _parsed(content: str) -> Any:
    """A tool's JSON answer parsed, so its secret keys get redacted (Any: any JSON)."""
    if content[:1] in ("{", "["):
        with contextlib.suppress(ValueError):
            return json.loads(content)
    return content


class JsonEncoder:
    """Turns any value into JSON values, redacting secret keys and scrubbing text."""

    def __init__(self, redact_keys: Iterable[str], scrub: Callable[[str], str] | None) -> None:
        self._secrets = frozenset(words for words in map(key_words, redact_keys) if words)
        self._lengths = sorted({len(words) for words in self._secrets})
        self._scrub = scrub
        # Every call of a tool carries the same few keys: split each into words only once.
        self._known: dict[str, bool] = {}

    def secret(self, key: str) -> bool:
        """Whether `key` holds a redacted key's words in a row (`db_password`, not `tokens`)."""
        known = self._known.get(key)
        if known is None:
            known = self._holds_secret_words(key)
            if len(key) <= _MEMO_KEY_LENGTH and len(self._known) < _MEMO_KEYS:
                self._known[key] = known
        return known

    def _holds_secret_words(self, key: str) -> bool:
        words = key_words(key)
        return any(
            words[i : i + length] in self._secrets
            for length in self._lengths
            for i in range(len(words) - length + 1)
        )

    def text(self, value: str) -> str:
        """`value` scrubbed of personal data, when a redactor was given."""
        return value if self._scrub is None else self._scrub(value)

    def __call__(self, value: object, depth: int = 0) -> JsonValue:
        """`value` as JSON: containers walked, anything else its repr (never raises)."""
        # Text and plain dicts are most of what calls carry: tested by exact type first,
        # the same outcome as the general path below, which subclasses still take.
        if type(value) is str:
            return value if self._scrub is None else self._scrub(value)
        if type(value) is dict and depth < _MAX_DEPTH:
            return self._mapping(value, depth)
        return self._convert(value, depth)

    def _convert(self, value: object, depth: int) -> JsonValue:
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else repr(value)
        if isinstance(value, str):
            return self.text(value)
        if depth >= _MAX_DEPTH:  # deep or cyclic data: its repr, which Python bounds
            return self._repr(value)
        if isinstance(value, Mapping):
            return self._mapping(value, depth)
        if isinstance(value, list | tuple | set | frozenset):
            return [self(item, depth + 1) for item in value]
        if isinstance(value, Decimal):
            return str(value)  # exact, unlike a float
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, bytes | bytearray):
            return f"<{len(value)} bytes>"
        return self._repr(value)

    def _mapping(self, value: Mapping[Any, object], depth: int) -> dict[str, JsonValue]:
        # Any: a mapping's keys can be anything; a key that is no str is written as its repr.
        out: dict[str, JsonValue] = {}
        for key, item in value.items():
            if isinstance(key, str):
                name = self.text(key)
                if self.secret(key):
                    out[name] = REDACTED
                elif type(item) is str and self._scrub is None:  # a plain text leaf, as is
                    out[name] = item
                else:
                    out[name] = self(item, depth + 1)
            else:
                name = self._repr(key)
                out[name] = self(item, depth + 1)
        return out

    def _repr(self, value: object) -> str:
        try:
            text = repr(value)
        except Exception:  # a broken __repr__ must not break the call it traces
            text = f"<{type(value).__qualname__} object>"
        if len(text) > _MAX_REPR:
            text = text[:_MAX_REPR] + "..."
        return self.text(text)
