"""The checkpoint codec: its fast check and its full walk accept and refuse exactly as one."""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import pytest

from onionskin.core.errors import StoreError, TenantError
from onionskin.core.tenant import TenantContext
from onionskin.stores import _checkpoint_codec as codec
from onionskin.stores._checkpoint_codec import MAX_DEPTH, decode_json, encode_checkpoint
from onionskin.stores.checkpoints import Checkpoint

NOT_JSON = (
    "not a JSON value (dict, list, str, int, float, bool or None); encode it before checkpointing"
)


def message(text: str) -> dict[str, Any]:
    return {
        "kind": "request",
        "parts": [
            {"part_kind": "user-prompt", "content": text, "timestamp": "2026-11-21T00:00:00Z"}
        ],
        "instructions": None,
    }


def make(**fields: Any) -> Checkpoint:
    """A realistic checkpoint: plain dicts, lists, str, int, float, bool and None only."""
    values: dict[str, Any] = {
        "checkpoint_id": "cp-1",
        "run_id": "run-1",
        "tenant_id": "acme",
        "parent_id": None,
        "pipeline_id": "pipe",
        "step": 3,
        "kind": "model",
        "agent": "writer",
        "status": "running",
        "state": {"order": "A1", "tries": 2, "score": 0.5, "done": False, "tags": ("a", "b")},
        "messages": [message("where is order A1?"), message("and A2?")],
        "data": {"usage": {"input": 120, "cached": None}, "retry": {"count": 1}},
        "created_at": datetime(2026, 11, 21, tzinfo=UTC),
    }
    values.update(fields)
    return Checkpoint(**values)


def refusal(**fields: Any) -> str:
    with pytest.raises(StoreError) as raised:
        encode_checkpoint(make(**fields))
    return str(raised.value)


def test_plain_payloads_never_take_the_full_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    def full_walk(field: str, value: object) -> None:
        raise AssertionError(f"{field} took the full walk")

    monkeypatch.setattr(codec, "_check_json", full_walk)
    encoded = encode_checkpoint(make())
    assert decode_json(encoded.state)["tags"] == ["a", "b"]
    assert decode_json(encoded.messages) == [message("where is order A1?"), message("and A2?")]
    assert encoded.tenant_key == "acme"


class Dict(dict[str, Any]):
    pass


class Text(str):
    pass


class Number(float):
    pass


class Level(enum.IntEnum):
    HIGH = 2


class Colour(enum.StrEnum):
    RED = "red"


ACCEPTED: list[tuple[Any, Any]] = [
    (MappingProxyType({"a": MappingProxyType({"b": 1})}), {"a": {"b": 1}}),
    (Dict(a=Dict(b=[1])), {"a": {"b": [1]}}),
    ({"pair": (1, (2, "x"))}, {"pair": [1, [2, "x"]]}),
    ({"text": Text("x"), Text("key"): 1}, {"text": "x", "key": 1}),
    ({"level": Level.HIGH, "colour": Colour.RED}, {"level": 2, "colour": "red"}),
    ({"number": Number(1.5)}, {"number": 1.5}),
]


@pytest.mark.parametrize(("state", "decoded"), ACCEPTED)
def test_values_the_fast_check_is_unsure_of_are_still_accepted(state: Any, decoded: Any) -> None:
    assert decode_json(encode_checkpoint(make(state=state)).state) == decoded


def test_messages_may_be_any_mappings() -> None:
    messages = (MappingProxyType({"role": "user"}), Dict(role="model"))
    encoded = encode_checkpoint(make(messages=messages))
    assert decode_json(encoded.messages) == [{"role": "user"}, {"role": "model"}]
    refused = refusal(messages=[{"role": "user"}, ["text"]])
    assert refused == "messages[1] must be a mapping, got list"


class Plain(enum.Enum):
    ONE = 1


REFUSED: list[tuple[Any, str]] = [
    ({"x": float("nan")}, "state['x'] is nan, which JSON cannot hold"),
    ({"x": [0, {"y": float("-inf")}]}, "state['x'][1]['y'] is -inf, which JSON cannot hold"),
    ({"x": Number("inf")}, "state['x'] is inf, which JSON cannot hold"),
    ({"ids": {1, 2}}, f"state['ids'] is a set, {NOT_JSON}"),
    ({"when": datetime(2026, 1, 1)}, f"state['when'] is a datetime, {NOT_JSON}"),
    ({"kind": Plain.ONE}, f"state['kind'] is a Plain, {NOT_JSON}"),
    ({"raw": (1, b"x")}, f"state['raw'][1] is a bytes, {NOT_JSON}"),
    ({"a": {1: "one"}}, "state['a'] has the key 1: JSON object keys must be strings"),
    ({True: "yes"}, "state has the key True: JSON object keys must be strings"),
    (MappingProxyType({None: 1}), "state has the key None: JSON object keys must be strings"),
]


@pytest.mark.parametrize(("state", "expected"), REFUSED)
def test_refusals_keep_the_full_walks_message(state: Any, expected: str) -> None:
    assert refusal(state=state) == expected


WRAPPERS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "dict": (lambda inner: {"n": inner}, "['n']"),
    "list": (lambda inner: [inner], "[0]"),
    "mapping": (lambda inner: MappingProxyType({"n": inner}), "['n']"),  # the full walk only
}


def nested(depth: int, leaf: Any, wrap: Callable[[Any], Any]) -> dict[str, Any]:
    """A state whose `leaf` sits `depth` levels down (the state itself is level 0)."""
    for _ in range(depth - 1):
        leaf = wrap(leaf)
    return {"n": leaf}


@pytest.mark.parametrize("leaf", [1, {}])
@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_max_depth_is_allowed_and_one_more_is_refused(leaf: Any, wrapper: str) -> None:
    wrap, step = WRAPPERS[wrapper]
    encode_checkpoint(make(state=nested(MAX_DEPTH, leaf, wrap)))
    assert refusal(state=nested(MAX_DEPTH + 1, leaf, wrap)) == (
        f"a checkpoint's state nests deeper than {MAX_DEPTH} levels at "
        f"state['n']{step * MAX_DEPTH} (or contains itself); flatten it"
    )


def test_the_fast_check_goes_as_deep_as_the_full_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    walked: list[str] = []
    monkeypatch.setattr(codec, "_check_json", lambda field, value: walked.append(field))
    dict_wrap, list_wrap = WRAPPERS["dict"][0], WRAPPERS["list"][0]
    encode_checkpoint(
        make(state=nested(MAX_DEPTH, 1, dict_wrap), data=nested(MAX_DEPTH, {}, list_wrap))
    )
    assert walked == []
    encode_checkpoint(make(state=nested(MAX_DEPTH + 1, 1, dict_wrap)))
    assert walked == ["state"]  # the spy accepts it: only the full walk may refuse


def test_payloads_that_contain_themselves_are_refused() -> None:
    looped: list[Any] = []
    looped.append(looped)
    assert refusal(state={"loop": looped}) == (
        f"a checkpoint's state nests deeper than {MAX_DEPTH} levels at "
        f"state['loop']{'[0]' * MAX_DEPTH} (or contains itself); flatten it"
    )
    itself: dict[str, Any] = {}
    itself["me"] = itself
    assert refusal(data=itself) == (
        f"a checkpoint's data nests deeper than {MAX_DEPTH} levels at "
        "data" + "['me']" * (MAX_DEPTH + 1) + " (or contains itself); flatten it"
    )


@pytest.mark.parametrize("tenant_id", ["", "../other", "a" * 129, "a..b", "-lead"])
def test_tenant_ids_are_refused_as_tenant_context_refuses_them(tenant_id: str) -> None:
    with pytest.raises(TenantError) as expected:
        TenantContext(tenant_id=tenant_id)
    with pytest.raises(TenantError) as raised:
        encode_checkpoint(make(tenant_id=tenant_id))
    assert str(raised.value) == str(expected.value)
    assert str(raised.value).startswith("TenantContext.tenant_id must be 1-128 characters")


def test_kind_and_status_name_their_choices() -> None:
    assert refusal(kind="bogus") == (
        "kind must be one of ['agent', 'end', 'input', 'model', 'tool']; got 'bogus'"
    )
    assert refusal(status="paused") == (
        "status must be one of ['completed', 'failed', 'running']; got 'paused'"
    )
    assert encode_checkpoint(make(tenant_id=None, kind="end", status="failed")).tenant_key == ""
