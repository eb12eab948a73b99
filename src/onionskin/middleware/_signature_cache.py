"""One `Signature` per function, built on first use and held no longer than the function.

Reading a signature and building its pydantic model takes far longer than a guarded call,
so it happens once per function; functions made per agent or per request must still be
free to go, so the cache holds them weakly (a plain `lru_cache` would keep up to its size
of them, and everything they close over, alive).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from functools import lru_cache, partial
from types import MethodType
from typing import Any

from onionskin.middleware._signature_check import Signature

# Any: the keys are weak references to whatever callables tools are made of.
_FUNCTIONS: dict[weakref.ref[Any], Signature] = {}
_METHODS: dict[weakref.ref[Any], Signature] = {}  # by `__func__`: see signature_of
_strongly_cached = lru_cache(maxsize=512)(Signature)


def _forget(cache: dict[weakref.ref[Any], Signature], key: weakref.ref[Any]) -> None:
    cache.pop(key, None)


def signature_of(function: Callable[..., Any]) -> Signature:
    """The `Signature` of `function`, built once per function and held no longer than it.

    Functions made per agent or per request must not stay alive in a cache. A bound method
    is keyed by its function: `obj.method` is a new object on each access, and every one
    drops the same first parameter. Callables that take no weak reference (builtins) sit
    in a bounded LRU cache; unhashable ones are read every time.
    """
    cache, key = _FUNCTIONS, function
    if type(function) is MethodType:
        cache, key = _METHODS, function.__func__
    try:
        found = cache.get(weakref.ref(key))
    except TypeError:  # no weak reference to it, or unhashable
        try:
            return _strongly_cached(function)
        except TypeError:  # a callable object that defines __eq__ without __hash__
            return Signature(function)
    if found is None:
        found = cache[weakref.ref(key, partial(_forget, cache))] = Signature(function)
    return found
