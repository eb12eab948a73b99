"""PII redaction: find emails, phones, cards and custom patterns; redact, mask, hash or block.

`PIIRedactor` is the detection: pure, sync, its regexes compiled once. Traces use it too
(`TraceConfig(redactor=...)`). `PIIRedactionMiddleware` applies it to model inputs (the
text parts of the request's messages) and tool inputs (the call's arguments), to model
outputs (the response's text) and to tool results (`ToolResult.value` when text or
JSON-like), each switchable. It never mutates the caller's objects: a changed message, call
or result is a new one built with `dataclasses.replace`.

About 230 lines: config, detector and middleware are one feature, read together;
the patterns, masks and walkers are in `_pii_patterns`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from onionskin.core.calls import ModelRequest, ModelResponse, ToolCall, ToolResult
from onionskin.core.errors import ConfigError
from onionskin.core.messages import Message, Part, TextPart
from onionskin.middleware import _pii_patterns as pat
from onionskin.middleware._config import require_bool
from onionskin.middleware._pii_patterns import BUILTIN_KINDS, Action, Blocked, raise_blocked

_OWNER = "PIIRedactionConfig"


@dataclass(frozen=True, slots=True, kw_only=True)
class PIIRedactionConfig:
    """What counts as personal data, what to do with it, and where to look."""

    kinds: tuple[str, ...] = BUILTIN_KINDS
    """Built-in kinds to detect: `"email"`, `"phone"`, `"card"` (Luhn-checked)."""
    patterns: Mapping[str, str | re.Pattern[str]] = field(default_factory=dict)
    """Custom kinds: name to regex (`{"employee_id": r"EMP-\\d{6}"}`); always detected."""
    action: Action = "redact"
    """What to do with a match: `redact` (`[EMAIL]`), `mask` (`j***@e***.com`), `hash`
    (`[EMAIL:ab12cd34]`) or `block` (raise `InvalidInputError`)."""
    actions: Mapping[str, Action] = field(default_factory=dict)
    """Per-kind overrides of `action` (`{"card": "block"}`)."""
    salt: str = ""
    """Key of the `hash` action's HMAC; required when any kind is hashed."""
    inputs: bool = True
    """Scan model request messages' text parts and tool call arguments."""
    outputs: bool = True
    """Scan the model response's text."""
    tool_results: bool = True
    """Scan `ToolResult.value` when it is text or JSON-like."""

    def __post_init__(self) -> None:
        kinds: object = self.kinds
        if not isinstance(kinds, tuple | list) or any(k not in BUILTIN_KINDS for k in kinds):
            raise ConfigError(f"{_OWNER}.kinds must hold only {BUILTIN_KINDS}, got {kinds!r}")
        compiled = pat.compile_patterns(_OWNER, self.patterns)
        if not kinds and not compiled:
            raise ConfigError(f"{_OWNER}.kinds is empty and no patterns are given")
        pat.check_actions(_OWNER, self.action, self.actions, (*kinds, *compiled))
        hashed = self.action == "hash" or "hash" in self.actions.values()
        salt: object = self.salt
        if not isinstance(salt, str) or (hashed and not salt):
            raise ConfigError(f"{_OWNER}.salt must be a non-empty str when an action is 'hash'")
        for name in ("inputs", "outputs", "tool_results"):
            require_bool(_OWNER, name, getattr(self, name))
        # Freeze what a caller (or the YAML it came from) could still change under us.
        object.__setattr__(self, "kinds", tuple(kinds))
        object.__setattr__(self, "patterns", MappingProxyType(dict(self.patterns)))
        object.__setattr__(self, "actions", MappingProxyType(dict(self.actions)))


@dataclass(frozen=True, slots=True, kw_only=True)
class PIIMatch:
    """One piece of personal data found in a text."""

    kind: str
    """`"email"`, `"phone"`, `"card"` or a custom pattern's name."""
    start: int
    """Where the match starts in the text."""
    end: int
    """Where it ends (exclusive)."""
    text: str
    """What matched."""


class PIIRedactor:
    """Finds personal data in text and rewrites it by its kind's action; pure and sync."""

    def __init__(self, config: PIIRedactionConfig | None = None) -> None:
        if config is not None and not isinstance(config, PIIRedactionConfig):
            raise ConfigError(f"config must be a PIIRedactionConfig, got {config!r}")
        self.config = config = config or PIIRedactionConfig()
        self._detectors: tuple[tuple[str, re.Pattern[str]], ...] = (
            *((kind, pat.REGEXES[kind]) for kind in config.kinds),
            *pat.compile_patterns(_OWNER, config.patterns).items(),
        )
        self._actions: dict[str, Action] = {
            kind: config.actions.get(kind, config.action) for kind, _ in self._detectors
        }
        self._salt = config.salt.encode()
        # Most text holds nothing: one cheap search rules it out before any regex runs.
        self._may_match = pat.prefilter(config.kinds, bool(config.patterns))

    def find(self, text: str) -> list[PIIMatch]:
        """Every match in `text`, in order; where matches overlap the earliest, longest wins."""
        found: list[PIIMatch] = []
        if not self._may_match(text):
            return found
        for kind, regex in self._detectors:
            if pat.may_hold(kind, text):
                for hit in regex.finditer(text):
                    if hit.end() > hit.start() and pat.accepts(kind, hit.group()):
                        start, end = hit.span()
                        found.append(PIIMatch(kind=kind, start=start, end=end, text=hit.group()))
        if len(found) < 2:  # nothing to order, nothing overlaps
            return found
        found.sort(key=lambda match: (match.start, match.start - match.end))
        kept: list[PIIMatch] = []
        for match in found:
            if not kept or match.start >= kept[-1].end:
                kept.append(match)
        return kept

    def scrub(self, text: str) -> str:
        """`text` with every match rewritten, `block` kinds redacted: for traces and logs."""
        return self.rewrite(text, "", None)

    def redact(self, value: Any, *, path: str = "") -> Any:
        """Rewrite the text in `value`: a str, or mappings and lists of them at any depth.

        Returns a new value, or `value` itself when nothing matched; other objects pass
        unchanged. Any: the value is the caller's, of any JSON-like shape.

        Raises:
            InvalidInputError: a `block` kind was found; `errors` holds one `(path, kind)`
                pair per find (`("messages.0.text", "email")`).
        """
        blocked: Blocked = []
        result = self.rewrite_value(value, path, blocked)
        raise_blocked(blocked)
        return result

    def rewrite(self, text: str, path: str, blocked: Blocked | None) -> str:
        """Rewrite `text`; a `block` find is appended to `blocked` (redacted if it is None)."""
        matches = self.find(text)
        if not matches:
            return text
        out: list[str] = []
        position = 0
        for match in matches:
            action = self._actions[match.kind]
            if action == "block" and blocked is not None:
                blocked.append((path, match.kind))
            out.append(text[position : match.start])
            if action == "mask":
                out.append(pat.mask(match.kind, match.text))
            elif action == "hash":
                out.append(pat.fingerprint(match.kind, match.text, self._salt))
            else:  # redact, or block while scrubbing or collecting
                out.append(pat.placeholder(match.kind))
            position = match.end
        out.append(text[position:])
        return "".join(out)

    def rewrite_value(self, value: Any, path: str, blocked: Blocked | None) -> Any:
        """`redact` without raising: `block` finds are appended to `blocked`."""
        return pat.walk(
            value, path, lambda text, where: self.rewrite(text, where, blocked), self._may_match
        )


class PIIRedactionMiddleware:
    """Rewrites personal data in model and tool inputs, model outputs and tool results."""

    def __init__(self, config: PIIRedactionConfig | None = None) -> None:
        self.redactor = PIIRedactor(config)  # checks the config's type
        self.config = self.redactor.config

    def _message(self, message: Message, path: str, blocked: Blocked) -> Message:
        parts: list[Part] = []
        for part in message.parts:
            if type(part) is TextPart:
                text = self.redactor.rewrite(part.text, path, blocked)
                part = part if text is part.text else replace(part, text=text)
            parts.append(part)
        changed = any(new is not old for new, old in zip(parts, message.parts, strict=True))
        return replace(message, parts=parts) if changed else message

    async def wrap_model_call(
        self, request: ModelRequest, next: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        """Rewrite the request's text before the model sees it, and the answer's after."""
        blocked: Blocked = []
        if self.config.inputs:
            old = request.messages
            new = [self._message(m, f"messages.{i}.text", blocked) for i, m in enumerate(old)]
            raise_blocked(blocked)
            if any(a is not b for a, b in zip(new, old, strict=True)):
                request = replace(request, messages=new)
        response = await next(request)
        if self.config.outputs:
            message = self._message(response.message, "message.text", blocked)
            raise_blocked(blocked)
            if message is not response.message:
                response = replace(response, message=message)
        return response

    async def wrap_tool_call(
        self, call: ToolCall, next: Callable[[ToolCall], Awaitable[ToolResult]]
    ) -> ToolResult:
        """Rewrite the call's arguments before the tool runs, and its value after."""
        blocked: Blocked = []
        if self.config.inputs:
            kwargs = self.redactor.rewrite_value(call.kwargs, "kwargs", blocked)
            args = self.redactor.rewrite_value(call.args, "args", blocked)
            if blocked:
                raise_blocked(blocked)
            if kwargs is not call.kwargs or args is not call.args:
                call = replace(call, kwargs=dict(kwargs), args=tuple(args))
        result = await next(call)
        if self.config.tool_results:
            value = self.redactor.rewrite_value(result.value, "value", blocked)
            raise_blocked(blocked)
            if value is not result.value:
                result = replace(result, value=value)
        return result
