"""One Signature per function, held weakly, and the plan that lets the guards skip pydantic."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable
from typing import Any

import pydantic
import pytest

from onionskin import RunContext
from onionskin.middleware._signature_cache import signature_of


def made(hint: type) -> Callable[..., Any]:
    """A new function per call, as tools built per agent or per request are."""

    def tool(value):  # type: ignore[no-untyped-def]  # annotated below, at run time
        return None

    tool.__annotations__ = {"value": hint, "return": None}
    return tool


def test_a_signature_is_built_once_per_function_and_never_shared() -> None:
    as_int, as_str = made(int), made(str)
    assert signature_of(as_int) is signature_of(as_int)
    assert signature_of(as_int) is not signature_of(as_str)
    assert signature_of(as_int).validate((), {"value": "7"}, strict=False) == {"value": 7}
    assert signature_of(as_str).validate((), {"value": "7"}, strict=False) == {"value": "7"}


def test_the_cache_does_not_keep_a_function_alive() -> None:
    tool = made(int)
    signature_of(tool)
    gone = weakref.ref(tool)
    del tool
    gc.collect()
    assert gone() is None


class Shop:
    def order(self, order_id: str) -> str:
        return order_id


def test_bound_methods_share_their_functions_signature_and_do_not_keep_the_instance() -> None:
    shop = Shop()
    signature = signature_of(shop.order)  # `shop.order` is a new object on every access
    assert signature_of(shop.order) is signature is signature_of(Shop().order)
    assert list(signature.signature.parameters) == ["order_id"]  # no `self`
    assert signature is not signature_of(Shop.order)  # the plain function keeps `self`
    gone = weakref.ref(shop)
    del shop
    gc.collect()
    assert gone() is None


def test_builtins_and_unhashable_callables_get_a_signature_too() -> None:
    class Adder:
        __hash__ = None  # type: ignore[assignment]  # unhashable, like a dataclass with eq

        def __call__(self, a: int) -> int:
            return a + 1

    assert signature_of(len) is signature_of(len)  # no weak reference to a builtin
    assert signature_of(Adder()).validate(("41",), {}, strict=False) == {"a": 41}


# --- the quick plan ------------------------------------------------------------------------


def lookup(order: int, ctx: RunContext, *, verbose: bool = False) -> str:
    return str(order)


LOOKUP = signature_of(lookup).quick


@pytest.mark.parametrize(
    ("args", "kwargs", "admitted"),
    [
        ((1,), {}, True),
        ((), {"order": 1, "verbose": True}, True),
        ((1, None), {}, False),  # the runtime fills the context in: validation has its say
        ((), {"order": 1, "ctx": None}, False),
    ],
)
def test_the_plan_leaves_a_run_context_argument_to_validation(
    args: tuple[Any, ...], kwargs: dict[str, Any], admitted: bool
) -> None:
    assert LOOKUP.admits(args, kwargs) is admitted


def pay(amount: int, currency: str = "EUR", *, note: Any = None, **extra: int) -> bool:
    return True


PAY = signature_of(pay).quick


@pytest.mark.parametrize(
    ("args", "kwargs", "admitted"),
    [
        ((5,), {}, True),
        ((5, "USD"), {"note": [1]}, True),
        ((), {"amount": 5, "currency": "USD"}, True),
        ((), {}, False),  # `amount` is missing
        ((5,), {"amount": 6}, False),  # given twice
        ((5, "USD", "x"), {}, False),  # a surplus positional
        ((True,), {}, False),  # a bool is no exact int
        ((5.0,), {}, False),
        ((), {"amount": 5, "tip": 1}, False),  # `**extra` takes it, but its type is checked
        ((), {"amount": 5, "currency": None}, False),
    ],
)
def test_the_plan_admits_only_exact_scalars_that_bind(
    args: tuple[Any, ...], kwargs: dict[str, Any], admitted: bool
) -> None:
    assert PAY.admits(args, kwargs) is admitted


def test_the_plan_keeps_only_results_of_exactly_the_return_type() -> None:
    assert PAY.keeps(True)
    assert not PAY.keeps(1)
    assert signature_of(made(int)).quick.keeps(None)  # `-> None`
    assert not signature_of(made(int)).quick.keeps(0)

    def anything(x: int):  # type: ignore[no-untyped-def]  # no return annotation on purpose
        return x

    def constrained(x: int) -> pydantic.PositiveInt:
        return x

    assert signature_of(anything).quick.keeps(object())
    assert not signature_of(constrained).quick.keeps(5)


def test_a_field_default_may_carry_constraints_so_it_is_not_vouched_for() -> None:
    def short(code: str = pydantic.Field(default="a", max_length=3)) -> str:
        return code

    assert not signature_of(short).quick.admits((), {"code": "abc"})
