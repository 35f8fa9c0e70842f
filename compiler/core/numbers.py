"""Arithmetic, comparison and conversion of numbers, and parsing numbers from text."""
from __future__ import annotations

import math
import re

from ..values import ArgError
from .printing import describe, float_str, is_int, pr_str
from .equality import _Incomparable, compare
from .registry import _int, _num, _string, core


# ---- numbers ------------------------------------------------------------------------------------


@core("+")
def _add(*xs):
    total = 0
    for i, x in enumerate(xs):
        total += _num(x, i)
    return total


@core("-")
def _sub(x, *xs):
    _num(x, 0)
    if not xs:
        return -x
    for i, y in enumerate(xs, 1):
        x -= _num(y, i)
    return x


@core("*")
def _mul(*xs):
    total = 1
    for i, x in enumerate(xs):
        total *= _num(x, i)
    return total


def _div2(a, b, index):
    if b == 0:
        raise ArgError("division by zero", index)
    if is_int(a) and is_int(b):
        q, r = divmod(a, b)
        if r == 0:
            return q
    return a / b


@core("/")
def _divide(x, *xs):
    _num(x, 0)
    if not xs:
        return _div2(1, x, 0)
    for i, y in enumerate(xs, 1):
        x = _div2(x, _num(y, i), i)
    return x


def _quot(a, b):
    _num(a, 0)
    if _num(b, 1) == 0:
        raise ArgError("division by zero", 1)
    if is_int(a) and is_int(b):
        q = abs(a) // abs(b)
        return q if (a < 0) == (b < 0) else -q
    return float(math.trunc(a / b))


core("quot")(_quot)


@core("rem")
def _rem(a, b):
    q = _quot(a, b)
    if is_int(a) and is_int(b):
        return a - b * q
    return math.fmod(a, b)


@core("mod")
def _mod(a, b):
    _num(a, 0)
    if _num(b, 1) == 0:
        raise ArgError("division by zero", 1)
    return a % b


@core("inc")
def _inc(x):
    return _num(x, 0) + 1


@core("dec")
def _dec(x):
    return _num(x, 0) - 1


@core("abs")
def _abs(x):
    return abs(_num(x, 0))


@core("max")
def _max(x, *xs):
    best = _num(x, 0)
    for i, y in enumerate(xs, 1):
        if _num(y, i) > best:
            best = y
    return best


@core("min")
def _min(x, *xs):
    best = _num(x, 0)
    for i, y in enumerate(xs, 1):
        if _num(y, i) < best:
            best = y
    return best


def _chain(op):
    def compare_all(x, *xs):
        _num(x, 0)
        ok = True
        for i, y in enumerate(xs, 1):
            _num(y, i)
            if ok and not op(x, y):
                ok = False
            x = y
        return ok
    return compare_all


core("<")(_chain(lambda a, b: a < b))
core(">")(_chain(lambda a, b: a > b))
core("<=")(_chain(lambda a, b: a <= b))
core(">=")(_chain(lambda a, b: a >= b))
core("==")(_chain(lambda a, b: a == b))


@core("compare")
def _compare(a, b):
    try:
        return compare(a, b)
    except _Incomparable:
        raise ArgError(f"cannot compare {describe(a)} with {describe(b)}") from None


@core("int")
def _to_int(x):
    if is_int(x):
        return x
    if type(x) is float:
        if x != x or x in (math.inf, -math.inf):
            raise ArgError(f"cannot make an integer of {float_str(x)}", 0)
        return int(x)
    raise ArgError(f"expected a number, got {describe(x)}", 0)


@core("double", "float")
def _to_float(x):
    return float(_num(x, 0))


# ---- parsing ------------------------------------------------------------------------------------

_LONG = re.compile(r"[+-]?[0-9]+")
_DOUBLE = re.compile(r"[+-]?(?:NaN|Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)[fFdD]?")


@core("parse-long", "parse-int")
def _parse_long(s):
    _string(s, 0)
    return int(s) if _LONG.fullmatch(s) else None


@core("parse-double")
def _parse_double(s):
    _string(s, 0)
    text = s.strip()
    if not _DOUBLE.fullmatch(text):
        return None
    text = text.rstrip("fFdD")
    return float(text.replace("Infinity", "inf"))


@core("parse-boolean")
def _parse_boolean(s):
    return {"true": True, "false": False}.get(_string(s, 0))


def _java_parse(bits: int):
    def parse(s, radix=10):
        _string(s, 0)
        _int(radix, 1)
        if not 2 <= radix <= 36:
            raise ArgError(f"radix {radix} is not between 2 and 36", 1)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[:radix]
        body = s[1:] if s[:1] in "+-" else s
        if not body or any(c not in digits for c in body.lower()):
            raise ArgError(f"{pr_str(s)} is not an integer" + (f" in base {radix}" if radix != 10 else ""), 0)
        n = int(s, radix)
        if not -(1 << (bits - 1)) <= n < (1 << (bits - 1)):
            raise ArgError(f"{pr_str(s)} is out of range for a {bits}-bit integer", 0)
        return n
    return parse


core("Integer/parseInt", "Integer/valueOf")(_java_parse(32))
core("Long/parseLong", "Long/valueOf")(_java_parse(64))


@core("Double/parseDouble")
def _java_parse_double(s):
    r = _parse_double(s)
    if r is None:
        raise ArgError(f"{pr_str(s)} is not a number", 0)
    return r
