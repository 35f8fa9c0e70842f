"""Sequences: first, rest, take, range, partition, sort..."""
from __future__ import annotations

import math

from ..values import ArgError
from .printing import _items, describe, is_int, is_number, truthy
from .equality import _hkey, _sorted, compare, equal
from .registry import _MISSING, _RANGE_LIMIT, _at, _call, _fn, _int, _num, core, seq_of


# ---- sequences ----------------------------------------------------------------------------------


@core("seq")
def _seq(coll):
    return seq_of(coll, 0) or None


@core("count")
def _count(coll):
    if coll is None:
        return 0
    if type(coll) in (tuple, dict, frozenset, str):
        return len(coll)
    raise ArgError(f"expected a collection or a string, got {describe(coll)}", 0)


@core("empty?")
def _is_empty(coll):
    return _count(coll) == 0


@core("not-empty")
def _not_empty(coll):
    return coll if _count(coll) else None


@core("first")
def _first(coll):
    items = seq_of(coll, 0)
    return items[0] if items else None


@core("second")
def _second(coll):
    items = seq_of(coll, 0)
    return items[1] if len(items) > 1 else None


@core("last")
def _last(coll):
    items = seq_of(coll, 0)
    return items[-1] if items else None


@core("rest")
def _rest(coll):
    return seq_of(coll, 0)[1:]


@core("next")
def _next(coll):
    return seq_of(coll, 0)[1:] or None


@core("butlast")
def _butlast(coll):
    return seq_of(coll, 0)[:-1] or None


@core("cons")
def _cons(x, coll):
    return (x,) + seq_of(coll, 1)


@core("nth")
def _nth(coll, i, default=_MISSING):
    if type(coll) not in (tuple, str) and coll is not None:
        raise ArgError(f"expected a vector or a string, got {describe(coll)}", 0)
    _int(i, 1)
    if coll is not None and 0 <= i < len(coll):
        return coll[i]
    if default is not _MISSING:
        return default
    if coll is None:
        return None
    what = _items(len(coll)) if type(coll) is tuple else f"a string of length {len(coll)}"
    raise ArgError(f"index {i} is out of range for {what}", 1)


@core("peek")
def _peek(coll):
    return _last(coll)


@core("take")
def _take(n, coll):
    _int(n, 0)
    return seq_of(coll, 1)[:max(n, 0)]


@core("drop")
def _drop(n, coll):
    _int(n, 0)
    return seq_of(coll, 1)[max(n, 0):]


@core("take-last")
def _take_last(n, coll):
    _int(n, 0)
    items = seq_of(coll, 1)
    return items[len(items) - n:] if n > 0 else ()


@core("drop-last")
def _drop_last(a, b=_MISSING):
    n, coll, ci = (1, a, 0) if b is _MISSING else (_int(a, 0), b, 1)
    items = seq_of(coll, ci)
    return items[:len(items) - n] if n > 0 else items


@core("reverse")
def _reverse(coll):
    return seq_of(coll, 0)[::-1]


@core("concat")
def _concat(*colls):
    out: tuple = ()
    for i, c in enumerate(colls):
        out += seq_of(c, i)
    return out


@core("range")
def _range(a=_MISSING, b=_MISSING, step=1):
    if a is _MISSING:
        raise ArgError("an endless range cannot be made; give an end: (range n)")
    start, end = (0, a) if b is _MISSING else (a, b)
    _num(start, 0)
    _num(end, 0 if b is _MISSING else 1)
    _num(step, 2)
    if step == 0:
        if start == end:
            return ()
        raise ArgError("a step of 0 never reaches the end", 2)
    count = max(0, math.ceil((end - start) / step))
    if count > _RANGE_LIMIT:
        raise ArgError(f"a range of {count} numbers is too large (at most {_RANGE_LIMIT})")
    if is_int(start) and is_int(end) and is_int(step):
        return tuple(range(start, end, step))
    out = []
    x = start
    while (x < end) if step > 0 else (x > end):
        out.append(x)
        x += step
    return tuple(out)


@core("repeat")
def _repeat(n, x):
    _int(n, 0)
    if n > _RANGE_LIMIT:
        raise ArgError(f"at most {_RANGE_LIMIT} repetitions", 0)
    return (x,) * max(n, 0)


@core("distinct")
def _distinct(coll):
    seen: set = set()
    out = []
    for x in seq_of(coll, 0):
        try:
            key = _hkey(x)
            if key in seen:
                continue
            seen.add(key)
        except TypeError:  # a map inside a vector, say: compare the slow way
            if any(equal(x, y) for y in out):
                continue
        out.append(x)
    return tuple(out)


@core("interpose")
def _interpose(sep, coll):
    out = []
    for i, x in enumerate(seq_of(coll, 1)):
        if i:
            out.append(sep)
        out.append(x)
    return tuple(out)


@core("interleave")
def _interleave(*colls):
    seqs = [seq_of(c, i) for i, c in enumerate(colls)]
    return tuple(x for group in zip(*seqs) for x in group)


@core("flatten")
def _flatten(x):
    if type(x) is not tuple:
        return ()
    out: list = []
    stack = [iter(x)]
    while stack:
        for item in stack[-1]:
            if type(item) is tuple:
                stack.append(iter(item))
                break
            out.append(item)
        else:
            stack.pop()
    return tuple(out)


def _partition_args(n, a, b):
    """(items, step) of (partition n coll) or (partition n step coll)."""
    step, coll, ci = (n, a, 1) if b is _MISSING else (a, b, 2)
    if _int(n, 0) <= 0:
        raise ArgError("the size must be positive", 0)
    if _int(step, 1) <= 0:
        raise ArgError("the step must be positive", 1)
    return seq_of(coll, ci), step


@core("partition")
def _partition(n, a, b=_MISSING):
    items, step = _partition_args(n, a, b)
    return tuple(items[i:i + n] for i in range(0, len(items) - n + 1, step))


@core("partition-all")
def _partition_all(n, a, b=_MISSING):
    items, step = _partition_args(n, a, b)
    return tuple(items[i:i + n] for i in range(0, len(items), step))


@core("sort", contextual=True)
def _sort(ev, form, a, b=_MISSING):
    if b is _MISSING:
        return _sorted(seq_of(a, 0), 0)
    _fn(a, 0)
    return _sorted(seq_of(b, 1), 1, _user_cmp(ev, _at(form), a))


@core("sort-by", contextual=True)
def _sort_by(ev, form, keyfn, a, b=_MISSING):
    _fn(keyfn, 0)
    at = _at(form)
    coll, ci, cmp = (a, 1, compare) if b is _MISSING else (b, 2, _user_cmp(ev, at, _fn(a, 1)))
    items = seq_of(coll, ci)
    return _sorted(items, ci, cmp, key=lambda x: _call(ev, at, keyfn, x))


def _user_cmp(ev, at, f):
    """A comparator from a function: a number (compare) or a boolean (like <)."""
    def cmp(x, y):
        r = _call(ev, at, f, x, y)
        if is_number(r):
            return (r > 0) - (r < 0)
        if truthy(r):
            return -1
        return 1 if truthy(_call(ev, at, f, y, x)) else 0
    return cmp
