"""The language's `=` (booleans never equal numbers) and Clojure's `compare` and sort order."""
from __future__ import annotations

import functools
from typing import Any, Callable

from pallet.grammar.forms import Keyword, Symbol

from ..values import ArgError
from .printing import describe, is_int, is_number


# ---- equality and ordering ----------------------------------------------------------------------


def equal(a: Any, b: Any) -> bool:
    """The language's `=`: Python equality, except that booleans never equal numbers."""
    if a is b:
        return True
    ta, tb = type(a), type(b)
    if ta is bool or tb is bool:
        return False  # not the same object, so two booleans that differ, or a bool and a non-bool
    if ta is tuple:
        return tb is tuple and len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    if ta is dict:
        if tb is not dict or len(a) != len(b):
            return False
        for k, v in a.items():
            if k not in b or not equal(v, b[k]):
                return False
            if type(k) is bool or is_int(k):  # {1 x} and {true x} share a Python key
                for k2 in b:
                    if k2 == k and (type(k2) is bool) != (type(k) is bool):
                        return False
        return True
    if ta is frozenset:
        return tb is frozenset and len(a) == len(b) and _hkey(a) == _hkey(b)
    return a == b


def _hkey(x: Any) -> Any:
    """A hashable key that keeps booleans apart from numbers, for distinct and friends."""
    t = type(x)
    if t is bool:
        return ("#bool", x)
    if t is tuple:
        return ("#vec",) + tuple(_hkey(i) for i in x)
    if t is dict:
        return ("#map", frozenset((_hkey(k), _hkey(v)) for k, v in x.items()))
    if t is frozenset:
        return ("#set", frozenset(_hkey(i) for i in x))
    return x


class _Incomparable(Exception):
    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b


def _ident_key(x):
    ns, sep, local = x.name.rpartition("/")
    return (bool(sep and ns), ns if sep else "", local if sep and ns else x.name)


def compare(a: Any, b: Any) -> int:
    """Clojure's compare: nil first, numbers, strings, keywords, symbols, booleans, and vectors
    (shorter first, then item by item)."""
    if a is None:
        return 0 if b is None else -1
    if b is None:
        return 1
    ta, tb = type(a), type(b)
    if is_number(a) and is_number(b):
        return (a > b) - (a < b)
    if ta is tb:
        if ta is str or ta is bool:
            return (a > b) - (a < b)
        if ta is Keyword or ta is Symbol:
            ka, kb = _ident_key(a), _ident_key(b)
            return (ka > kb) - (ka < kb)
        if ta is tuple:
            if len(a) != len(b):
                return -1 if len(a) < len(b) else 1
            for x, y in zip(a, b):
                c = compare(x, y)
                if c:
                    return c
            return 0
    raise _Incomparable(a, b)


def _sorted(items: tuple, index: int | None, cmp: Callable[[Any, Any], int] = compare, key=None) -> tuple:
    values = items if key is None else tuple(key(i) for i in items)
    if cmp is compare and values:
        first = type(values[0])
        if (first is str and all(type(v) is str for v in values)) or (
                first in (int, float) and all(type(v) in (int, float) for v in values)):
            if key is None:
                return tuple(sorted(items))
            order = sorted(range(len(items)), key=values.__getitem__)
            return tuple(items[i] for i in order)
    try:
        if key is None:
            return tuple(sorted(items, key=functools.cmp_to_key(cmp)))
        ck = functools.cmp_to_key(cmp)
        order = sorted(range(len(items)), key=lambda i: ck(values[i]))
        return tuple(items[i] for i in order)
    except _Incomparable as exc:
        raise ArgError(f"cannot compare {describe(exc.a)} with {describe(exc.b)}", index) from None
