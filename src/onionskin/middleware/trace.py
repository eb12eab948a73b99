"""`TraceMiddleware`: one JSONL record per model and tool call, and an OpenTelemetry span.

A record holds `run_id`, `call_id`, `tenant_id`, `user_id`, `session_id`, `agent`, `kind`
(`"model"` or `"tool"`), `name` (the model's or the tool's), `started_at` (UTC ISO 8601),
`duration_ms`, `status` (`"ok"`, `"error"`, or `"stopped"` by `StopProcessing`),
`arguments`, `result`, `error` (`type` and `message`), `tokens` and `cost` (USD as a
string, exact). Values under a secret key (`password`, `api_key`, `token`, ...) become
`"[REDACTED]"` at any depth, an optional `PIIRedactor` scrubs every string, and values
that are not JSON are written as their repr. The call's own exception is re-raised
unchanged after its record is written. How the file is written and rotated: see
`_trace_writer`; the spans: see `_otel`.

About 290 lines: the config and the records of both call kinds read best together, with
the two memos that keep a record cheap (each function's signature, each second's date and
time) beside the code that uses them; the encoding is in `_trace_file`, the writer in
`_trace_writer`, the spans in `_otel`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from opentelemetry.trace import Span, TracerProvider

from onionskin.core.calls import ModelRequest, ModelResponse, ToolCall, ToolResult
from onionskin.core.clock import SYSTEM_CLOCK, Clock
from onionskin.core.errors import ConfigError, StopProcessing
from onionskin.core.ids import new_id
from onionskin.middleware import _otel
from onionskin.middleware._config import require_bool, require_int
from onionskin.middleware._trace_file import JsonEncoder, Record, message_json, new_record
from onionskin.middleware._trace_writer import JsonlWriter
from onionskin.middleware.pii import PIIRedactor

_OWNER = "TraceConfig"
DEFAULT_REDACT_KEYS: tuple[str, ...] = (
    *("password", "passwd", "pwd", "secret", "token", "api_key", "apikey"),
    *("authorization", "auth", "cookie", "credential", "credentials", "private_key"),
)
"""Keys whose values traces never show; a key matches when it holds one's words in a row."""


def _check_path(field: str, value: object) -> None:
    text = os.fspath(value) if isinstance(value, str | os.PathLike) else None
    if value is not None and not (isinstance(text, str) and text):
        raise ConfigError(f"{_OWNER}.{field} must be a non-empty str path, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceConfig:
    """Where trace records go, how big the file grows, and what they leave out."""

    path: str | os.PathLike[str] | None = None
    """The JSONL file; its folder is created. Give `path` or `directory`, not both."""
    directory: str | os.PathLike[str] | None = None
    """A folder to write `trace.jsonl` in; created if missing."""
    max_bytes: int = 10 * 1024 * 1024
    """Size at which the file is rotated (a record is never split across files)."""
    backups: int = 5
    """Rotated files kept (`trace.jsonl.1` is the newest); 0 starts the file anew."""
    redact_keys: tuple[str, ...] = DEFAULT_REDACT_KEYS
    """Keys whose values are written as `"[REDACTED]"`, at any depth (case and `-`/`_`
    insensitive: `api_key` also matches `X-Api-Key` and `apiKey`)."""
    redactor: PIIRedactor | None = None
    """Scrubs personal data from every string written (its `block` kinds are redacted)."""
    record_arguments: bool = True
    """Write the call's arguments (model messages and settings, tool arguments)."""
    record_results: bool = True
    """Write what the call answered (the model's message, the tool's value)."""
    otel: bool = True
    """Open an OpenTelemetry span per call."""

    def __post_init__(self) -> None:
        _check_path("path", self.path)
        _check_path("directory", self.directory)
        if self.path is not None and self.directory is not None:
            raise ConfigError(f"{_OWNER}.path and {_OWNER}.directory exclude each other")
        require_int(_OWNER, "max_bytes", self.max_bytes, minimum=1)
        require_int(_OWNER, "backups", self.backups, minimum=0)
        keys: object = self.redact_keys
        if not isinstance(keys, tuple | list) or not all(isinstance(k, str) and k for k in keys):
            raise ConfigError(f"{_OWNER}.redact_keys must be a tuple of keys, got {keys!r}")
        redactor: object = self.redactor
        if redactor is not None and not isinstance(redactor, PIIRedactor):
            raise ConfigError(f"{_OWNER}.redactor must be a PIIRedactor, got {redactor!r}")
        for name in ("record_arguments", "record_results", "otel"):
            require_bool(_OWNER, name, getattr(self, name))
        if self.file is None and not self.otel:
            raise ConfigError(f"{_OWNER} needs a path or a directory to write to, or otel=True")
        object.__setattr__(self, "redact_keys", tuple(keys))

    @property
    def file(self) -> Path | None:
        """The JSONL file records go to: `path`, `directory/trace.jsonl`, or None (spans only)."""
        if self.path is not None:
            return Path(self.path)
        return None if self.directory is None else Path(self.directory) / "trace.jsonl"


# Each function's signature, inspected once: binding positional arguments by name is
# otherwise most of what tracing a call costs. Weak: a traced function may be let go.
_SIGNATURES: weakref.WeakKeyDictionary[Callable[..., Any], inspect.Signature | None] = (
    weakref.WeakKeyDictionary()
)


def _signature(function: Callable[..., Any]) -> inspect.Signature | None:
    """`function`'s signature, or None when it has none (Any: any function)."""
    try:
        return _SIGNATURES[function]
    except (KeyError, TypeError):  # not seen yet, or no weak reference can hold it
        pass
    try:
        signature: inspect.Signature | None = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin or an odd callable without one
        signature = None
    with contextlib.suppress(TypeError):
        _SIGNATURES[function] = signature
    return signature


def _tool_arguments(call: ToolCall) -> dict[str, Any]:
    """A tool call's arguments by name, positional ones bound to the function's parameters.

    So a secret passed by position (`login("ann", "hunter2")`) is still under its key.
    Any: the caller's argument values.
    """
    function = getattr(call.tool, "function", None)
    if call.args and callable(function):
        signature = _signature(function)
        if signature is not None:
            try:
                return dict(signature.bind_partial(*call.args, **call.kwargs).arguments)
            except TypeError:  # arguments the function refuses
                pass
    return {"args": call.args, "kwargs": call.kwargs} if call.args else call.kwargs


@functools.lru_cache(maxsize=64)
def _utc_second(seconds: int) -> str:
    """`YYYY-MM-DDTHH:MM:SS` of a whole second since the epoch, in UTC."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")[:-6]


def _utc_iso(timestamp: float) -> str:
    """`timestamp` as UTC ISO 8601 to the microsecond, as `datetime.isoformat` writes it.

    Calls in one second share its date and time, formatted once: formatting a datetime
    costs more than the rest of a trace record. The microseconds are rounded half to even
    from the exact fraction, as `datetime.fromtimestamp` does.
    """
    seconds = int(timestamp)
    micros = round((timestamp - seconds) * 1e6)
    if timestamp < 0 or micros >= 1_000_000:  # a carry into the next second: the long way
        return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="microseconds")
    return f"{_utc_second(seconds)}.{micros:06d}+00:00"


def _model_arguments(request: ModelRequest) -> dict[str, Any]:
    # Any: plain values for the encoder; settings are the provider's JSON values.
    return {
        "messages": [message_json(message) for message in request.messages],
        "tools": [tool.name for tool in request.tools],
        "settings": request.settings,
    }


def _cost(request: ModelRequest, response: ModelResponse) -> Decimal | None:
    try:
        return request.model.cost(response.usage)
    except Exception:  # a model without a price must not fail the call it traces
        return None


class TraceMiddleware:
    """Records every model and tool call: a JSONL line each, and an OpenTelemetry span."""

    def __init__(
        self,
        config: TraceConfig | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        if config is not None and not isinstance(config, TraceConfig):
            raise ConfigError(f"config must be a TraceConfig, got {config!r}")
        self.config = config = config or TraceConfig()
        self.clock = clock
        file = config.file
        self._writer: JsonlWriter | None = None
        if file is not None:
            try:
                file.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:  # fail at start-up, not silently at every call
                raise ConfigError(f"{_OWNER}: cannot create {file.parent}: {error}") from error
            self._writer = JsonlWriter(
                file, max_bytes=config.max_bytes, backups=config.backups, monotonic=clock.monotonic
            )
        scrub = None if config.redactor is None else config.redactor.scrub
        self._encode = JsonEncoder(config.redact_keys, scrub)
        self._spans = _otel.GenAISpans(tracer_provider, enabled=config.otel)

    def _start(self, kind: str, name: str, call_id: str | None, session_id: str | None) -> Record:
        if self._writer is None:  # spans only: a record nobody writes is left empty
            return {}
        started = _utc_iso(self.clock.time())
        return new_record(kind, name, call_id or new_id(), session_id, started)

    def _write(self, record: Record, began: float) -> None:
        if self._writer is not None:
            record["duration_ms"] = round((self.clock.monotonic() - began) * 1000.0, 3)
            self._writer.write(record)

    def _failed(self, span: Span, record: Record, began: float, error: BaseException) -> None:
        if isinstance(error, StopProcessing):  # a signal that ends the run as completed
            record["status"] = "stopped"
            self._write(record, began)
            return
        try:
            message = self._encode.text(str(error))
        except Exception:  # a broken __str__ must not replace the call's own error
            message = ""
        _otel.failed(span, type(error).__qualname__, message)
        record["status"] = "error"
        record["error"] = {"type": type(error).__qualname__, "message": message}
        self._write(record, began)

    def _answered(self, record: Record, response: ModelResponse, cost: Decimal | None) -> None:
        if self.config.record_results:
            result = {"model": response.model_name, "message": message_json(response.message)}
            record["result"] = self._encode(result)
        usage = response.usage
        tokens = (usage.input_tokens, usage.output_tokens, usage.cached_tokens)
        record["tokens"] = dict(zip(("input", "output", "cached"), tokens, strict=True))
        record["cost"] = None if cost is None else str(cost)

    async def wrap_model_call(
        self, request: ModelRequest, next: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        """Trace one model call."""
        began = self.clock.monotonic()
        record = self._start("model", request.model.name, None, None)
        if self.config.record_arguments and self._writer is not None:
            record["arguments"] = self._encode(_model_arguments(request))
        with self._spans.chat(request) as span:
            try:
                response = await next(request)
            except BaseException as error:
                self._failed(span, record, began, error)
                raise
            cost = _cost(request, response)
            _otel.chat_finished(span, request, response, cost)
        if self._writer is not None:
            self._answered(record, response, cost)
            self._write(record, began)
        return response

    async def wrap_tool_call(
        self, call: ToolCall, next: Callable[[ToolCall], Awaitable[ToolResult]]
    ) -> ToolResult:
        """Trace one tool call."""
        began = self.clock.monotonic()
        record = self._start("tool", call.tool_name, call.call_id, call.session_id)
        if self.config.record_arguments and self._writer is not None:
            record["arguments"] = self._encode(_tool_arguments(call))
        with self._spans.execute_tool(call) as span:
            try:
                result = await next(call)
            except BaseException as error:
                self._failed(span, record, began, error)
                raise
            _otel.tool_finished(span, result)
        if self.config.record_results and self._writer is not None:
            record["result"] = self._encode(result.value)
        if result.error is not None:
            record["status"] = "error"
            record["error"] = {"type": _otel.TOOL_ERROR, "message": self._encode.text(result.error)}
        self._write(record, began)
        return result
