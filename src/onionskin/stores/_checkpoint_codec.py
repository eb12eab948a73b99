"""Checks and JSON for checkpoint stores: every backend refuses the same input the same way.

Payloads (a checkpoint's state, messages and data) must be plain JSON values: dicts with
string keys, lists or tuples, strings, integers, finite floats, booleans and None. A datetime
or a set would be *encodable* (pydantic_core knows them), but it would come back as a string
or a list, and a resumed run would see different types than the run that saved it; so the
store refuses it and names where it was. Tuples are accepted and come back as lists.

Over 200 lines: every check a checkpoint must pass, for every backend, is in this one place.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias, get_args

from pydantic_core import PydanticSerializationError, from_json, to_json

from onionskin.core.errors import StoreError
from onionskin.core.tenant import check_tenant_id

if TYPE_CHECKING:
    from onionskin.stores.checkpoints import Checkpoint

MAX_ID_LENGTH = 255
"""The longest checkpoint, run, pipeline or agent id a store accepts."""
MAX_JSON_BYTES = 16 * 1024 * 1024
"""The largest encoded state, messages or data a checkpoint may carry."""
MAX_DEPTH = 100
"""How deeply a payload may nest (this also stops a payload that contains itself)."""
MAX_STEP = 2**31 - 1
"""The largest step: the SQL column is a 32-bit INTEGER."""
MAX_LIST_LIMIT = 1000
"""The most runs one `list_runs` call returns."""

_Path: TypeAlias = tuple["_Path", object] | None
"""Where a value sits in a payload, as a linked (parent, key) pair: formatted only on error."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EncodedCheckpoint:
    """A checked checkpoint, ready to store: its partition, UTC time and JSON payloads."""

    checkpoint: Checkpoint
    tenant_key: str
    """The tenant id, or `""` for a run without a tenant."""
    created_at: datetime
    state: str
    messages: str
    data: str


def encode_checkpoint(checkpoint: Checkpoint) -> EncodedCheckpoint:
    """Check every field of `checkpoint` and encode its payloads; nothing is stored on error."""
    checkpoint_type, kinds, statuses = _checkpoint_types()
    if not isinstance(checkpoint, checkpoint_type):
        raise StoreError(f"save_checkpoint() takes a Checkpoint, got {type(checkpoint).__name__}")
    tenant = tenant_key(checkpoint.tenant_id)
    for field in ("checkpoint_id", "run_id", "pipeline_id"):
        check_id(field, getattr(checkpoint, field))
    check_optional_id("parent_id", checkpoint.parent_id)
    check_optional_id("agent", checkpoint.agent)
    check_step(checkpoint.step)
    check_choice("kind", checkpoint.kind, kinds)
    check_choice("status", checkpoint.status, statuses)
    created: object = checkpoint.created_at
    if not isinstance(created, datetime) or created.utcoffset() is None:
        raise StoreError(f"created_at must be an aware datetime, got {_short(created)}")
    state = encode_json("state", checkpoint.state, top=Mapping)
    messages = encode_json("messages", checkpoint.messages, top=Sequence)
    for index, message in enumerate(checkpoint.messages):
        # `type(...) is dict` first: the common case, without the slower ABC check.
        if type(message) is not dict and not isinstance(message, Mapping):
            raise StoreError(f"messages[{index}] must be a mapping, got {type(message).__name__}")
    return EncodedCheckpoint(
        checkpoint=checkpoint,
        tenant_key=tenant,
        created_at=created.astimezone(UTC),
        state=state,
        messages=messages,
        data=encode_json("data", checkpoint.data, top=Mapping),
    )


@functools.cache
def _checkpoint_types() -> tuple[type[Checkpoint], tuple[str, ...], tuple[str, ...]]:
    """`Checkpoint` and the allowed kinds and statuses, worked out once, on first use."""
    # Imported here: the checkpoints module imports this one for its memory store.
    from onionskin.stores.checkpoints import Checkpoint, CheckpointKind, RunStatus

    return Checkpoint, get_args(CheckpointKind), get_args(RunStatus)


def check_id(field: str, value: object) -> None:
    """Refuse an id that is not a non-empty, printable string of at most 255 characters."""
    if isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH and value.isprintable():
        return
    raise StoreError(
        f"{field} must be a non-empty string of at most {MAX_ID_LENGTH} printable characters; "
        f"got {_short(value)}"
    )


def check_optional_id(field: str, value: object) -> None:
    """Like `check_id`, but None is allowed."""
    if value is not None:
        check_id(field, value)


def tenant_key(tenant_id: str | None) -> str:
    """The partition of a tenant: its id, or `""` for runs without a tenant.

    A tenant id obeys the same rule as `TenantContext.tenant_id` (a `TenantError` otherwise),
    and that rule forbids `""`, so no tenant can share the untenanted partition.
    """
    if tenant_id is None:
        return ""
    check_tenant_id(tenant_id)  # the one place the tenant-id rule lives
    return tenant_id


def check_limit(limit: object) -> None:
    """Refuse a `list_runs` limit outside 1..1000."""
    if type(limit) is not int or not 1 <= limit <= MAX_LIST_LIMIT:
        raise StoreError(f"limit must be a whole number from 1 to {MAX_LIST_LIMIT}; got {limit!r}")


def check_step(step: object) -> None:
    """Refuse a step that is not a whole number in 0..2**31-1."""
    if type(step) is not int or not 0 <= step <= MAX_STEP:
        raise StoreError(f"a checkpoint's step must be a whole number >= 0; got {step!r}")


def check_choice(field: str, value: object, choices: Collection[str]) -> None:
    """Refuse a value that is not one of `choices`."""
    if not isinstance(value, str) or value not in choices:
        raise StoreError(f"{field} must be one of {sorted(choices)}; got {_short(value)}")


def duplicate_error(checkpoint_id: str) -> StoreError:
    """The error for saving a checkpoint id that exists: it names no tenant, on purpose."""
    # The existing checkpoint may belong to another tenant: say nothing about it.
    return StoreError(
        f"checkpoint {checkpoint_id!r} already exists and checkpoints are never overwritten; "
        "give every checkpoint a new id (onionskin.core.ids.new_id())"
    )


def encode_json(field: str, value: object, *, top: type) -> str:
    """Check that `value` is a plain JSON value of type `top` and return its JSON text."""
    if not isinstance(value, top) or isinstance(value, str):
        raise StoreError(f"a checkpoint's {field} must be a {top.__name__}; got {_short(value)}")
    # The fast check accepts nearly every payload; the full walk decides the rest, and it
    # alone words the errors, so what is accepted or refused, and how, is the full walk's.
    if not _is_plain_json(value, 0):
        _check_json(field, value)
    try:
        encoded = to_json(value, fallback=_plain)
    except (PydanticSerializationError, ValueError) as error:  # pragma: no cover - checked above
        raise StoreError(f"a checkpoint's {field} is not JSON-serialisable: {error}") from None
    if len(encoded) > MAX_JSON_BYTES:
        raise StoreError(
            f"a checkpoint's {field} is {len(encoded)} bytes of JSON, over the limit of "
            f"{MAX_JSON_BYTES}; keep large values out of the run's state"
        )
    return encoded.decode()


def decode_json(text: str | bytes) -> Any:
    """Parse JSON text that `encode_json` produced.

    Returns Any: the payload is whatever JSON the run saved.
    """
    return from_json(text)


def _plain(value: object) -> object:
    # A Mapping that is not a dict (MappingProxyType, ...) is JSON to us, not to pydantic_core.
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"not a JSON value: {type(value).__name__}")  # pragma: no cover


# Any: the value is narrowed by `type(value) is ...` tests that mypy cannot follow through `kind`.
def _is_plain_json(value: Any, depth: int) -> bool:
    """True if `value` is certainly a plain JSON value, as `_check_json` would accept it.

    False means "not sure", never "refused": `_check_json` then decides, and words any error.
    Exact types only (one `type()` call, no ABC `isinstance`): subclasses, other mappings,
    enums, non-str keys, bad floats and anything too deep all take the full walk.
    """
    # Recursion, unlike `_check_json`: depth stops at MAX_DEPTH (100), far below Python's
    # recursion limit (1000), and this bound also ends a payload that contains itself.
    if depth > MAX_DEPTH:  # the same bound as `_check_json`: the top value is at depth 0
        return False
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is dict:
        for key, inner in value.items():
            if type(key) is not str or not _is_plain_json(inner, depth + 1):
                return False
        return True
    if kind is list or kind is tuple:
        for inner in value:  # noqa: SIM110 - all(generator) is slower and adds a frame a level
            if not _is_plain_json(inner, depth + 1):
                return False
        return True
    return False


def _check_json(field: str, value: object) -> None:
    # A loop with an explicit stack, not recursion: depth is bounded and reported as such.
    stack: list[tuple[object, _Path, int]] = [(value, None, 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise StoreError(
                f"a checkpoint's {field} nests deeper than {MAX_DEPTH} levels at "
                f"{_where(field, path)} (or contains itself); flatten it"
            )
        if isinstance(item, Mapping):
            for key, inner in item.items():
                if not isinstance(key, str):
                    raise StoreError(
                        f"{_where(field, path)} has the key {key!r}: JSON object keys must be "
                        "strings"
                    )
                stack.append((inner, (path, key), depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((inner, (path, index), depth + 1) for index, inner in enumerate(item))
        elif isinstance(item, float) and not math.isfinite(item):
            raise StoreError(f"{_where(field, path)} is {item!r}, which JSON cannot hold")
        elif item is not None and not isinstance(item, str | int | float):
            raise StoreError(
                f"{_where(field, path)} is a {type(item).__name__}, not a JSON value (dict, "
                "list, str, int, float, bool or None); encode it before checkpointing"
            )


def _where(field: str, path: _Path) -> str:
    keys: list[object] = []
    while path is not None:
        path, key = path
        keys.append(key)
    return field + "".join(f"[{key!r}]" for key in reversed(keys))


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
