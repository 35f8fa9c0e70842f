"""Maps, sets and the functions over collections as a whole (get, assoc, conj, into...)."""
from __future__ import annotations

from ..values import ArgError, KeyMap
from .printing import _items, describe, is_int, pr_str
from .registry import _MISSING, _at, _call, _fn, _hashable, _map_or_nil, core, seq_of


# ---- maps and collections -----------------------------------------------------------------------


def _bool_clash(m, k) -> bool:
    """True when k is found in m only because Python equates true with 1 (or false with 0)."""
    if k is True or k is False or (type(k) is int and (k == 0 or k == 1)):
        return not any(type(stored) is type(k) and stored == k for stored in m)
    return False


def _get(m, k, default=None):
    t = type(m)
    if t is dict:
        try:
            value = m.get(k, _MISSING)
        except TypeError:  # a map as the key: found if the map holds it (values.KeyMap)
            try:
                value = m.get(KeyMap.of(k), _MISSING)
            except TypeError:
                return default
        if value is _MISSING or _bool_clash(m, k):
            return default
        return value
    if t is tuple or t is str:
        if is_int(k) and 0 <= k < len(m):
            return m[k]
        return default
    if t is frozenset:
        try:
            return k if k in m and not _bool_clash(m, k) else default
        except TypeError:
            return default
    return default


@core("get")
def _get_fn(m, k, default=None):
    return _get(m, k, default)


@core("get-in")
def _get_in(m, ks, default=None):
    for k in seq_of(ks, 1):
        m = _get(m, k, _MISSING)
        if m is _MISSING:
            return default
    return m


def _assoc1(m, k, v, m_index, k_index):
    t = type(m)
    if m is None or t is dict:
        k = _hashable(k, k_index, "a map key")
        out = dict(m) if m else {}
        out[k] = v
        return out
    if t is tuple:
        if not is_int(k):
            raise ArgError(f"a vector is indexed by an integer, got {describe(k)}", k_index)
        if not 0 <= k <= len(m):
            raise ArgError(f"index {k} is out of range for {_items(len(m))}", k_index)
        return m + (v,) if k == len(m) else m[:k] + (v,) + m[k + 1:]
    raise ArgError(f"expected a map or a vector, got {describe(m)}", m_index)


@core("assoc")
def _assoc(m, k, v, *kvs):
    if len(kvs) % 2:
        raise ArgError("needs a value for every key", 3 + len(kvs) - 1)
    m = _assoc1(m, k, v, 0, 1)
    for i in range(0, len(kvs), 2):
        m = _assoc1(m, kvs[i], kvs[i + 1], 0, 3 + i)
    return m


def _path(ks, index):
    path = seq_of(ks, index)
    if not path:
        raise ArgError("the path of keys is empty", index)
    return path


def _in_path(m, path, depth, fn):
    """Replace the value at path[depth:] in m by fn(old value), making maps where needed."""
    k = path[depth]
    if m is not None and type(m) not in (dict, tuple):
        where = pr_str(tuple(path[:depth]))
        raise ArgError(f"cannot change {pr_str(k)} inside {describe(m)} (at {where})", 0)
    if type(m) is tuple and not (is_int(k) and 0 <= k <= len(m)):
        where = pr_str(tuple(path[:depth]))
        raise ArgError(f"cannot change {pr_str(k)} inside {_items(len(m))} (at {where})", 1)
    inner = _get(m, k)
    new = fn(inner) if depth == len(path) - 1 else _in_path(inner, path, depth + 1, fn)
    return _assoc1(m, k, new, 0, 1)


@core("assoc-in")
def _assoc_in(m, ks, v):
    return _in_path(m, _path(ks, 1), 0, lambda old: v)


@core("dissoc")
def _dissoc(m, *ks):
    if m is None:
        return None
    if type(m) is not dict:
        raise ArgError(f"expected a map, got {describe(m)}", 0)
    out = dict(m)
    _remove_each(ks, lambda k: out.pop(k, None))
    return out


def _remove_each(keys, remove) -> None:
    """remove(k) for each key; a key that cannot be one (unhashable) is in nothing."""
    for k in keys:
        try:
            remove(k)
        except TypeError:
            pass


@core("update", contextual=True)
def _update(ev, form, m, k, f, *args):
    _fn(f, 2)
    if m is not None and type(m) not in (dict, tuple):
        raise ArgError(f"expected a map or a vector, got {describe(m)}", 0)
    return _assoc1(m, k, _call(ev, _at(form), f, _get(m, k), *args), 0, 1)


@core("update-in", contextual=True)
def _update_in(ev, form, m, ks, f, *args):
    _fn(f, 2)
    at = _at(form)
    return _in_path(m, _path(ks, 1), 0, lambda old: _call(ev, at, f, old, *args))


@core("merge")
def _merge(*maps):
    out = None
    for i, m in enumerate(maps):
        if m is None:
            continue
        if type(m) is not dict:
            raise ArgError(f"expected a map, got {describe(m)}", i)
        if out is None:
            out = dict(m)
        else:
            out.update(m)
    return out


@core("merge-with", contextual=True)
def _merge_with(ev, form, f, *maps):
    _fn(f, 0)
    at = _at(form)
    out = None
    for i, m in enumerate(maps, 1):
        if m is None:
            continue
        if type(m) is not dict:
            raise ArgError(f"expected a map, got {describe(m)}", i)
        if out is None:
            out = dict(m)
            continue
        for k, v in m.items():
            out[k] = _call(ev, at, f, out[k], v) if k in out else v
    return out


def _conj1(coll, x, index):
    t = type(coll)
    if t is tuple:
        return coll + (x,)
    if t is dict:
        if type(x) is dict:
            out = dict(coll)
            out.update(x)
            return out
        if type(x) is tuple and len(x) == 2:
            out = dict(coll)
            out[_hashable(x[0], index, "a map key")] = x[1]
            return out
        if x is None:
            return coll
        raise ArgError(f"adding to a map takes [key value] pairs or maps, got {describe(x)}", index)
    if t is frozenset:
        return coll | {_hashable(x, index, "a set member")}
    raise ArgError(f"expected a vector, map or set, got {describe(coll)}", 0)


@core("conj")
def _conj(coll=(), *xs):
    if coll is None:
        return tuple(xs)
    if type(coll) is tuple:
        return coll + xs
    if type(coll) not in (dict, frozenset):
        raise ArgError(f"expected a vector, map or set, got {describe(coll)}", 0)
    for i, x in enumerate(xs, 1):
        coll = _conj1(coll, x, i)
    return coll


@core("disj")
def _disj(s, *xs):
    if s is None:
        return None
    if type(s) is not frozenset:
        raise ArgError(f"expected a set, got {describe(s)}", 0)
    out = set(s)
    _remove_each(xs, out.discard)
    return frozenset(out)


@core("into")
def _into(to, frm):
    items = seq_of(frm, 1)
    if to is None:
        return items
    t = type(to)
    if t is tuple:
        return to + items
    if t is dict:
        out = dict(to)
        for x in items:
            if type(x) is tuple and len(x) == 2:
                out[_hashable(x[0], 1, "a map key")] = x[1]
            elif type(x) is dict:
                out.update(x)
            elif x is not None:
                raise ArgError(f"into a map takes [key value] pairs or maps, got {describe(x)}", 1)
        return out
    if t is frozenset:
        return to | frozenset(_hashable(x, 1, "a set member") for x in items)
    raise ArgError(f"expected a vector, map or set, got {describe(to)}", 0)


@core("keys")
def _keys(m):
    m = _map_or_nil(m, 0)
    return tuple(m) or None


@core("vals")
def _vals(m):
    m = _map_or_nil(m, 0)
    return tuple(m.values()) or None


@core("contains?")
def _contains(coll, k):
    t = type(coll)
    if t is dict or t is frozenset:
        try:
            return k in coll and not _bool_clash(coll, k)
        except TypeError:
            return False
    if t is tuple or t is str:
        return is_int(k) and 0 <= k < len(coll)
    if coll is None:
        return False
    raise ArgError(f"expected a map, set or vector, got {describe(coll)}", 0)


@core("find")
def _find(m, k):
    m = _map_or_nil(m, 0)
    try:
        return (k, m[k]) if k in m and not _bool_clash(m, k) else None
    except TypeError:
        return None


@core("select-keys")
def _select_keys(m, ks):
    m = _map_or_nil(m, 0)
    out = {}
    for k in seq_of(ks, 1):
        try:
            if k in m:
                out[k] = m[k]
        except TypeError:
            pass
    return out


@core("zipmap")
def _zipmap(ks, vs):
    out = {}
    for k, v in zip(seq_of(ks, 0), seq_of(vs, 1)):
        out[_hashable(k, 0, "a map key")] = v
    return out


@core("update-keys", contextual=True)
def _update_keys(ev, form, m, f):
    m, at = _map_or_nil(m, 0), _at(form)
    _fn(f, 1)
    out = {}
    for k, v in m.items():
        out[_hashable(_call(ev, at, f, k), 1, "a map key")] = v
    return out


@core("update-vals", contextual=True)
def _update_vals(ev, form, m, f):
    m, at = _map_or_nil(m, 0), _at(form)
    _fn(f, 1)
    return {k: _call(ev, at, f, v) for k, v in m.items()}


@core("vec")
def _vec(coll):
    return seq_of(coll, 0)


@core("vector", "list")
def _vector(*xs):
    return xs


@core("hash-map", "array-map")
def _hash_map(*kvs):
    if len(kvs) % 2:
        raise ArgError("needs a value for every key", len(kvs) - 1)
    out = {}
    for i in range(0, len(kvs), 2):
        out[_hashable(kvs[i], i, "a map key")] = kvs[i + 1]
    return out


@core("hash-set")
def _hash_set(*xs):
    return frozenset(_hashable(x, i, "a set member") for i, x in enumerate(xs))


@core("set")
def _set(coll):
    items = seq_of(coll, 0)
    for x in items:
        _hashable(x, 0, "a set member")
    return frozenset(items)


@core("empty")
def _empty(coll):
    t = type(coll)
    if t in (tuple, dict, frozenset):
        return t()
    if coll is None or t is str:
        return None
    raise ArgError(f"expected a collection, got {describe(coll)}", 0)


@core("frequencies")
def _frequencies(coll):
    out: dict = {}
    for x in seq_of(coll, 0):
        _hashable(x, 0)
        out[x] = out.get(x, 0) + 1
    return out


@core("group-by", contextual=True)
def _group_by(ev, form, f, coll):
    _fn(f, 0)
    at = _at(form)
    out: dict = {}
    for x in seq_of(coll, 1):
        k = _hashable(_call(ev, at, f, x), 0, "a map key (group-by makes a map)")
        out[k] = out.get(k, ()) + (x,)
    return out
