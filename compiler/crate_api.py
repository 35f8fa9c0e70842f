"""Pallet's crate API, the functions of it (the forms are in crate_forms.py): settings with
Pallet's options, the session queries Pallet had (admin-user, admin-group, packager...),
pallet.utils, clojure.tools.logging, clojure.set, atoms, and slurp.

Settings follow Pallet's plan-state: each node holds, per facility and instance id (nil for
the default instance), a map. `(assoc-settings :java {...} {:instance-id :x})` merges into it,
`(get-settings :java {:instance-id :x :default d})` reads it (d when there is none),
`(update-settings :java f args...)` applies f to it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pallet.errors import PalletError
from pallet.grammar.forms import Keyword

from .values import ArgError, Builtin
from .model import NodeFacts

_MISSING = object()
_OPTION_KEYS = frozenset({Keyword("instance-id"), Keyword("default")})
_RHEL = frozenset({"rhel", "centos", "rocky", "alma", "fedora", "amzn"})


def _plan(ev):
    if ev.plan is None:
        raise ArgError("asks about the target node, so it works only inside a phase")
    return ev.plan


def _facility(value: Any, index: int = 0) -> str:
    if isinstance(value, Keyword):
        return value.name
    if isinstance(value, str) and value:
        return value
    raise ArgError(f"a facility is a keyword such as :java, not {value!r}", index)


def _is_options(value: Any) -> bool:
    """Pallet's options map ({:instance-id ... :default ...}), as opposed to this project's
    positional default (any other value)."""
    return value is None or (isinstance(value, dict) and set(value) <= _OPTION_KEYS)


def _node_settings(ev, node_name: str, facility: str, options: Any, index: int):
    store = _plan(ev).world.settings.get(node_name, {})
    if options is _MISSING:
        return store.get((facility, None))
    if _is_options(options):
        options = options or {}
        return store.get((facility, options.get(Keyword("instance-id"))),
                         options.get(Keyword("default")))
    return store.get((facility, None), options)   # (get-settings :f default)


def _get_settings(ev, form, facility, options=_MISSING):
    return _node_settings(ev, _plan(ev).node.name, _facility(facility), options, 1)


def _get_node_settings(ev, form, node, facility, options=_MISSING):
    name = node.name if isinstance(node, NodeFacts) else node
    if not isinstance(name, str):
        raise ArgError("expected a node (from nodes-in-group or nodes-with-role)", 0)
    return _node_settings(ev, name, _facility(facility, 1), options, 2)


def _instance(options: Any, index: int) -> Any:
    if options is None:
        return None
    if not isinstance(options, dict) or not set(options) <= _OPTION_KEYS:
        raise ArgError("the options of settings are a map of :instance-id", index)
    return options.get(Keyword("instance-id"))


def _assoc_settings(ev, form, facility, values, options=None):
    plan = _plan(ev)
    if values is not None and not isinstance(values, dict):
        raise ArgError("settings are a map", 1)
    key = (_facility(facility), _instance(options, 2))
    store = plan.world.settings.setdefault(plan.node.name, {})
    store[key] = {**(store.get(key) or {}), **(values or {})}   # Pallet merges
    return store[key]


def _update_settings(ev, form, facility, f_or_options, *args):
    """(update-settings :f f args...) or (update-settings :f {:instance-id i} f args...)."""
    plan = _plan(ev)
    if _is_options(f_or_options) and args:
        options, f, rest = f_or_options, args[0], args[1:]
        at = 2
    else:
        options, f, rest = None, f_or_options, args
        at = 1
    from .core import _fn
    _fn(f, at)
    key = (_facility(facility), _instance(options, 1))
    store = plan.world.settings.setdefault(plan.node.name, {})
    value = ev.apply(f, [store.get(key), *rest], form)
    if value is not None and not isinstance(value, dict):
        raise ArgError(f"the update function returned {value!r}; settings are a map", at)
    store[key] = value
    return value


def _admin_user(ev, form):
    """The user Pallet logs in to the node as: its inventory user (root for --os)."""
    return {Keyword("username"): _plan(ev).node.user}


def _admin_group(ev, form):
    return "wheel" if _plan(ev).node.os_family in _RHEL else "adm"


def _packager(ev, form):
    from .bundle import target_of
    plan = _plan(ev)
    packager = target_of(plan.node, plan.group).packager
    return Keyword(packager) if packager else None


def _os_map_lookup(ev, form, os_map):
    from .versions import VersionMap, as_version_vector
    plan = _plan(ev)
    if not isinstance(os_map, VersionMap):
        raise ArgError("takes an os-map, made with (os-map {...})", 0)
    return os_map.lookup({Keyword("os"): Keyword(plan.node.os_family),
                          Keyword("os-version"): as_version_vector(plan.node.os_version or "")})


# ---- pallet.utils -------------------------------------------------------------------------------


def _apply_map(ev, form, f, *args):
    """(apply-map f a b {:k v}): f called with a, b, :k, v (the map's pairs spread)."""
    from .core import _fn
    _fn(f, 0)
    if not args:
        raise ArgError("needs a map of options last: (apply-map f args... {:k v})")
    last = args[-1]
    if last is not None and not isinstance(last, dict):
        raise ArgError(f"the last argument is a map of options, not {last!r}", len(args))
    spread = [x for pair in (last or {}).items() for x in pair]
    return ev.apply(f, [*args[:-1], *spread], form)


def _deep_merge(*maps):
    out: dict = {}
    for m in maps:
        if m is None:
            continue
        if not isinstance(m, dict):
            raise ArgError("deep-merge takes maps")
        for k, v in m.items():
            out[k] = _deep_merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out


def _as_string(x):
    if isinstance(x, (Keyword,)):
        return x.name
    from .core import str_of
    return str_of(x)


def _dissoc_keys(m, keys):
    return {k: v for k, v in (m or {}).items() if k not in set(keys or ())}


def _maybe_assoc(m, k, v):
    return {**(m or {}), k: v} if v is not None else m


def _first_line(s):
    return str(s).split("\n", 1)[0]


# ---- atoms ---------------------------------------------------------------------------------------


@dataclass(eq=False)
class AtomRef:
    """An atom: a value that swap! and reset! change. Changes made while loading and in the
    :settings phase are seen by every node; in another phase, by that node's later phases."""

    value: Any

    def describe(self) -> str:
        return "an atom"


def _atom(ev, form, value, *options):
    ref = AtomRef(value)
    if ev.plan is None:  # the spec's own (a crate's registry): each node sees its own values
        ev.atoms.append(ref)
    return ref


def _deref(value, *timeout):
    if isinstance(value, AtomRef):
        return value.value
    if hasattr(value, "deref"):
        return value.deref()
    raise ArgError(f"deref (@) reads an atom, not {value!r}", 0)


def _atom_arg(x) -> AtomRef:
    if not isinstance(x, AtomRef):
        raise ArgError("expected an atom", 0)
    return x


def _swap(ev, form, ref, f, *args):
    ref = _atom_arg(ref)
    ref.value = ev.apply(f, [ref.value, *args], form)
    return ref.value


def _reset(ref, value):
    _atom_arg(ref).value = value
    return value


def _compare_and_set(ref, old, new):
    ref = _atom_arg(ref)
    from .core import equal
    if equal(ref.value, old):
        ref.value = new
        return True
    return False


# ---- clojure.set -----------------------------------------------------------------------------------


def _sets(name, args):
    out = []
    for i, a in enumerate(args):
        if a is None:
            a = frozenset()
        if not isinstance(a, (frozenset, set)):
            raise ArgError(f"{name} takes sets", i)
        out.append(frozenset(a))
    return out


def _union(*sets):
    return frozenset().union(*_sets("union", sets))


def _intersection(first, *rest):
    s = _sets("intersection", (first, *rest))
    return s[0].intersection(*s[1:])


def _difference(first, *rest):
    s = _sets("difference", (first, *rest))
    return s[0].difference(*s[1:])


def _subset(a, b):
    x, y = _sets("subset?", (a, b))
    return x <= y


def _superset(a, b):
    x, y = _sets("superset?", (a, b))
    return x >= y


def _map_invert(m):
    return {v: k for k, v in (m or {}).items()}


def _rename_keys(m, renames):
    out = dict(m or {})
    for old, new in (renames or {}).items():
        if old in (m or {}):
            out.pop(old, None)
    for old, new in (renames or {}).items():
        if old in (m or {}):
            out[new] = m[old]
    return out


# ---- slurp ------------------------------------------------------------------------------------------


def _slurp(ev, form, path, *options):
    """A local file's text, relative to the spec (as :local-file is): read here, when the
    spec is compiled, as Pallet read it on the machine running Pallet."""
    if not isinstance(path, str) or not path:
        raise ArgError("takes the path of a local file", 0)
    if ev.read_local is None:
        raise ArgError("reads local files, which this evaluation has no access to")
    try:
        data = ev.read_local(path)
    except PalletError as exc:
        raise ArgError(exc.message, 0) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ArgError(f"{path} is not UTF-8 text", 0) from None


def _no_op(name: str) -> Builtin:
    """clojure.tools.logging: evaluated for its arguments, and nothing is logged (compiling
    has no log; `pallet explain` shows what a spec does). spy returns its value."""
    if name in ("spy", "spyf"):
        return Builtin(name, lambda *args: args[-1] if args else None)
    return Builtin(name, lambda *args: None)


def _exception(name: str) -> Builtin:
    """(Exception. "message"), and the other java.lang exceptions crates throw: an error value,
    as ex-info makes, for throw."""
    def make(message=None, *cause):
        from .core import ExInfo, str_of
        return ExInfo(str_of(message) if message is not None else name)
    return Builtin(f"{name}.", make)


_CONTENT_OPTIONS = tuple(Keyword(k) for k in (
    "local-file remote-file url md5 content literal template values action blob blobstore "
    "insecure link").split())
_VERSION_OPTIONS = tuple(Keyword(k) for k in
                         "overwrite-changes no-versioning max-versions flag-on-changed".split())
_OWNERSHIP_OPTIONS = tuple(Keyword(k) for k in "owner group mode".split())

BUILTINS: dict[str, Any] = {
    "get-settings": Builtin("get-settings", _get_settings, True),
    "get-node-settings": Builtin("get-node-settings", _get_node_settings, True),
    "assoc-settings": Builtin("assoc-settings", _assoc_settings, True),
    "update-settings": Builtin("update-settings", _update_settings, True),
    "admin-user": Builtin("admin-user", _admin_user, True),
    "admin-group": Builtin("admin-group", _admin_group, True),
    "packager": Builtin("packager", _packager, True),
    "is-64bit?": Builtin("is-64bit?", lambda ev, form: (_plan(ev), True)[1], True),
    "pallet.version-dispatch/os-map-lookup": Builtin("os-map-lookup", _os_map_lookup, True),
    "pallet.utils/apply-map": Builtin("apply-map", _apply_map, True),
    "pallet.utils/deep-merge": Builtin("deep-merge", _deep_merge),
    "pallet.utils/as-string": Builtin("as-string", _as_string),
    "pallet.utils/underscore": Builtin("underscore", lambda s: str(s).replace("-", "_")),
    "pallet.utils/dissoc-keys": Builtin("dissoc-keys", _dissoc_keys),
    "pallet.utils/maybe-assoc": Builtin("maybe-assoc", _maybe_assoc),
    "pallet.utils/first-line": Builtin("first-line", _first_line),
    "pallet.actions/content-options": _CONTENT_OPTIONS,
    "pallet.actions/version-options": _VERSION_OPTIONS,
    "pallet.actions/ownership-options": _OWNERSHIP_OPTIONS,
    "pallet.actions/all-options": (*_CONTENT_OPTIONS, *_VERSION_OPTIONS, *_OWNERSHIP_OPTIONS,
                                   Keyword("verify")),
    "pallet.core/parallel-lift": Keyword("parallel-lift"),
    "pallet.core/parallel-adjust-node-counts": Keyword("parallel-adjust-node-counts"),
    "pallet.core/sequential-lift": Keyword("sequential-lift"),
    "pallet.core/sequential-adjust-node-counts": Keyword("sequential-adjust-node-counts"),
    "atom": Builtin("atom", _atom, True),
    "deref": Builtin("deref", _deref),
    "swap!": Builtin("swap!", _swap, True),
    "reset!": Builtin("reset!", _reset),
    "compare-and-set!": Builtin("compare-and-set!", _compare_and_set),
    "slurp": Builtin("slurp", _slurp, True),
    "clojure.set/union": Builtin("union", _union),
    "clojure.set/intersection": Builtin("intersection", _intersection),
    "clojure.set/difference": Builtin("difference", _difference),
    "clojure.set/subset?": Builtin("subset?", _subset),
    "clojure.set/superset?": Builtin("superset?", _superset),
    "clojure.set/map-invert": Builtin("map-invert", _map_invert),
    "clojure.set/rename-keys": Builtin("rename-keys", _rename_keys),
    **{f"{n}.": _exception(n) for n in (
        "Exception RuntimeException IllegalArgumentException IllegalStateException "
        "UnsupportedOperationException Error AssertionError").split()},
    **{f"clojure.tools.logging/{n}": _no_op(n) for n in (
        "trace debug info warn error fatal tracef debugf infof warnf errorf fatalf log logf "
        "logp spy spyf").split()},
}
