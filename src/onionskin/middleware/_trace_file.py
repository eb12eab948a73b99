"""The trace file: what a record holds, how values are encoded, and the rotating writer.

Writes are synchronous appends from the event loop, on purpose: one `os.write` of a line
to the page cache takes microseconds, less than a hop to a thread costs, and records stay
in call order. No fsync. The file (mode `0o600`: traces hold prompts) is opened, appended
and closed per record: no handle to leak, and a file someone moved away is recreated.
Rotation works like logging's `RotatingFileHandler` (`trace.jsonl` -> `trace.jsonl.1` ...
up to `backups`), not used as it keeps the stream open and counts characters, not bytes.
A record is never split (one over `max_bytes` gets a file to itself). One file per process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeAlias

from onionskin.core.context import current_context_or_none
from onionskin.core.messages import DataPart, Message, TextPart, ToolCallPart

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"
Record: TypeAlias = dict[str, JsonValue]

REDACTED = "[REDACTED]"
_MAX_DEPTH = 32
_MAX_REPR = 2_000
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")

logger = logging.getLogger("onionskin.trace")


def key_words(key: str) -> tuple[str, ...]:
    """The lower-cased words of a key: `"X-Api-Key"` and `"apiKey"` give `("api", "key")`."""
    return tuple(word.lower() for word in _WORDS.findall(key))


def new_record(kind: str, name: str, call_id: str, session_id: str | None, started: str) -> Record:
    """A call's record before it ends: every field present, in a stable order."""
    ctx = current_context_or_none()
    return {
        "run_id": None if ctx is None else ctx.run_id,
        "call_id": call_id,
        "tenant_id": None if ctx is None else ctx.tenant_id,
        "user_id": None if ctx is None else ctx.user_id,
        "session_id": session_id,
        "agent": None if ctx is None else ctx.current_agent,
        "kind": kind,
        "name": name,
        "started_at": started,
        "duration_ms": 0.0,
        "status": "ok",
        **dict.fromkeys(("arguments", "result", "error", "tokens", "cost")),
    }


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
        self._secrets = tuple(words for words in map(key_words, redact_keys) if words)
        self._scrub = scrub

    def secret(self, key: str) -> bool:
        """Whether `key` holds a redacted key's words in a row (`db_password`, not `tokens`)."""
        words = key_words(key)
        return any(
            words[i : i + len(target)] == target
            for target in self._secrets
            for i in range(len(words) - len(target) + 1)
        )

    def text(self, value: str) -> str:
        """`value` scrubbed of personal data, when a redactor was given."""
        return value if self._scrub is None else self._scrub(value)

    def __call__(self, value: object, depth: int = 0) -> JsonValue:
        """`value` as JSON: containers walked, anything else its repr (never raises)."""
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else repr(value)
        if isinstance(value, str):
            return self.text(value)
        if depth >= _MAX_DEPTH:  # deep or cyclic data: its repr, which Python bounds
            return self._repr(value)
        if isinstance(value, Mapping):
            return {self._key(k): self._item(k, v, depth) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self(item, depth + 1) for item in value]
        if isinstance(value, Decimal):
            return str(value)  # exact, unlike a float
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, bytes | bytearray):
            return f"<{len(value)} bytes>"
        return self._repr(value)

    def _key(self, key: object) -> str:
        return self.text(key) if isinstance(key, str) else self._repr(key)

    def _item(self, key: object, value: object, depth: int) -> JsonValue:
        if isinstance(key, str) and self.secret(key):
            return REDACTED
        return self(value, depth + 1)

    def _repr(self, value: object) -> str:
        try:
            text = repr(value)
        except Exception:  # a broken __repr__ must not break the call it traces
            text = f"<{type(value).__qualname__} object>"
        if len(text) > _MAX_REPR:
            text = text[:_MAX_REPR] + "..."
        return self.text(text)


class JsonlWriter:
    """Appends JSON records to a file, one per line, rotating it by size."""

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()  # one middleware may serve loops in several threads
        self._failing = False

    def write(self, record: Mapping[str, JsonValue]) -> None:
        """Append `record` as one line; a failed write is logged, never raised."""
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        data = (line + "\n").encode()
        try:
            with self._lock:
                self._append(data)
        except OSError as error:
            if not self._failing:  # log an outage once, not once per record
                logger.warning("trace file %s cannot be written: %s", self.path, error)
            self._failing = True
            return
        self._failing = False

    def _append(self, data: bytes) -> None:
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            size = 0
        if size and size + len(data) > self.max_bytes:
            self._rotate()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)

    def _rotate(self) -> None:
        if self.backups == 0:
            os.remove(self.path)
            return
        for index in range(self.backups - 1, 0, -1):
            source = self.backup(index)
            if source.exists():
                os.replace(source, self.backup(index + 1))
        os.replace(self.path, self.backup(1))

    def backup(self, index: int) -> Path:
        """The path of the `index`-th backup: `trace.jsonl.1` is the newest."""
        return self.path.with_name(f"{self.path.name}.{index}")
