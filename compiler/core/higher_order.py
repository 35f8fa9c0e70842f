"""Functions of functions: map, filter, reduce, apply, comp, partial..."""
from __future__ import annotations

from ..values import ArgError, Builtin
from .printing import describe, truthy
from .registry import CORE, _MISSING, _at, _call, _fn, _map_or_nil, _num, core, seq_of


# ---- functions of functions ---------------------------------------------------------------------


@core("map", contextual=True)
def _map(ev, form, f, coll, *colls):
    _fn(f, 0)
    at = _at(form)
    if not colls:
        return tuple(_call(ev, at, f, x) for x in seq_of(coll, 1))
    seqs = [seq_of(coll, 1)] + [seq_of(c, i) for i, c in enumerate(colls, 2)]
    return tuple(_call(ev, at, f, *xs) for xs in zip(*seqs))


CORE["mapv"] = Builtin("mapv", CORE["map"].fn, True)


@core("map-indexed", contextual=True)
def _map_indexed(ev, form, f, coll):
    _fn(f, 0)
    at = _at(form)
    return tuple(_call(ev, at, f, i, x) for i, x in enumerate(seq_of(coll, 1)))


@core("mapcat", contextual=True)
def _mapcat(ev, form, f, coll, *colls):
    out: tuple = ()
    for part in _map(ev, form, f, coll, *colls):
        if part is not None and type(part) not in (tuple, dict, frozenset, str):
            raise ArgError(f"the function must return a collection, got {describe(part)}", 0)
        out += seq_of(part)
    return out


@core("filter", "filterv", contextual=True)
def _filter(ev, form, pred, coll):
    _fn(pred, 0)
    at = _at(form)
    return tuple(x for x in seq_of(coll, 1) if truthy(_call(ev, at, pred, x)))


@core("remove", contextual=True)
def _remove(ev, form, pred, coll):
    _fn(pred, 0)
    at = _at(form)
    return tuple(x for x in seq_of(coll, 1) if not truthy(_call(ev, at, pred, x)))


@core("keep", contextual=True)
def _keep(ev, form, f, coll):
    _fn(f, 0)
    at = _at(form)
    return tuple(r for r in (_call(ev, at, f, x) for x in seq_of(coll, 1)) if r is not None)


@core("take-while", contextual=True)
def _take_while(ev, form, pred, coll):
    _fn(pred, 0)
    at = _at(form)
    out = []
    for x in seq_of(coll, 1):
        if not truthy(_call(ev, at, pred, x)):
            break
        out.append(x)
    return tuple(out)


@core("drop-while", contextual=True)
def _drop_while(ev, form, pred, coll):
    _fn(pred, 0)
    at = _at(form)
    items = seq_of(coll, 1)
    for i, x in enumerate(items):
        if not truthy(_call(ev, at, pred, x)):
            return items[i:]
    return ()


@core("reduce", contextual=True)
def _reduce(ev, form, f, a, b=_MISSING):
    _fn(f, 0)
    at = _at(form)
    if b is _MISSING:
        items = seq_of(a, 1)
        if not items:
            return _call(ev, at, f)
        acc, items = items[0], items[1:]
    else:
        acc, items = a, seq_of(b, 2)
    for x in items:
        acc = _call(ev, at, f, acc, x)
    return acc


@core("reduce-kv", contextual=True)
def _reduce_kv(ev, form, f, init, m):
    _fn(f, 0)
    at = _at(form)
    acc = init
    for k, v in _map_or_nil(m, 2).items():
        acc = _call(ev, at, f, acc, k, v)
    return acc


@core("some", contextual=True)
def _some(ev, form, pred, coll):
    _fn(pred, 0)
    at = _at(form)
    for x in seq_of(coll, 1):
        r = _call(ev, at, pred, x)
        if truthy(r):
            return r
    return None


@core("every?", contextual=True)
def _every(ev, form, pred, coll):
    _fn(pred, 0)
    at = _at(form)
    return all(truthy(_call(ev, at, pred, x)) for x in seq_of(coll, 1))


@core("not-every?", contextual=True)
def _not_every(ev, form, pred, coll):
    return not _every(ev, form, pred, coll)


@core("not-any?", contextual=True)
def _not_any(ev, form, pred, coll):
    return _some(ev, form, pred, coll) is None


@core("max-key", contextual=True)
def _max_key(ev, form, k, x, *xs):
    return _by_key(ev, form, k, x, xs, lambda key, best: key >= best)


@core("min-key", contextual=True)
def _min_key(ev, form, k, x, *xs):
    return _by_key(ev, form, k, x, xs, lambda key, best: key <= best)


def _by_key(ev, form, k, x, xs, better):
    """The item whose (k item) is better than every other's; on a tie the last, as Clojure."""
    _fn(k, 0)
    at = _at(form)
    best, best_key = x, _num(_call(ev, at, k, x), 1)
    for i, y in enumerate(xs, 2):
        key = _num(_call(ev, at, k, y), i)
        if better(key, best_key):
            best, best_key = y, key
    return best


@core("apply", contextual=True)
def _apply(ev, form, f, *args):
    _fn(f, 0)
    if not args:
        raise ArgError("needs a collection of arguments: (apply f args)")
    spread = args[:-1] + seq_of(args[-1], len(args))
    return _call(ev, _at(form), f, *spread)


@core("partial")
def _partial(f, *bound):
    _fn(f, 0)
    return Builtin("partial", lambda ev, form, *more: _call(ev, _at(form), f, *bound, *more), True)


@core("comp")
def _comp(*fs):
    for i, f in enumerate(fs):
        _fn(f, i)
    if not fs:
        return CORE["identity"]

    def composed(ev, form, *args):
        at = _at(form)
        result = _call(ev, at, fs[-1], *args)
        for f in reversed(fs[:-1]):
            result = _call(ev, at, f, result)
        return result
    return Builtin("comp", composed, True)


@core("constantly")
def _constantly(x):
    return Builtin("constantly", lambda *args: x)


@core("complement")
def _complement(f):
    _fn(f, 0)
    return Builtin("complement", lambda ev, form, *args: not truthy(_call(ev, _at(form), f, *args)),
                   True)


@core("juxt")
def _juxt(f, *fs):
    for i, g in enumerate((f,) + fs):
        _fn(g, i)
    return Builtin("juxt", lambda ev, form, *args: tuple(
        _call(ev, _at(form), g, *args) for g in (f,) + fs), True)


@core("fnil")
def _fnil(f, *defaults):
    _fn(f, 0)

    def patched(ev, form, *args):
        args = tuple(d if i < len(defaults) and a is None else a
                     for i, (a, d) in enumerate(zip(args, defaults + (None,) * len(args))))
        return _call(ev, _at(form), f, *args)
    return Builtin("fnil", patched, True)
