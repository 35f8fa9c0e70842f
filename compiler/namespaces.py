"""Namespaces: `(ns ...)` with its `:require`, `:use` and `:refer-clojure` clauses, and the
`require`, `use` and `refer` forms, over crate files and Pallet's namespaces (pallet_api.py).

    (ns my.crate
      (:require [pallet.actions :refer [package remote-file]]
                [pallet.crate :as crate]
                [clojure.string :as string])
      (:use [pallet.stevedore :only (script)]))

`:refer`/`:only` bind names of the other namespace in this one, `:exclude` and `:rename`
adjust them, `:as` gives an alias. A name Pallet's namespace had that this project lacks may
be referred (a Pallet file refers many it never calls), and using it is a located error that
names it; a name the namespace never had is an error where it is referred.
"""
from __future__ import annotations

from typing import Any

from pallet.errors import PalletError
from pallet.grammar.forms import Atom, Form, Keyword, ListForm, MapForm, Symbol, VectorForm, show, span_of

from .pallet_api import NAMESPACES, SpecialRef
from .spelling import did_you_mean
from .values import Env, Namespace

SCRIPT_LIB = "pallet.script.lib"
_REFER_OPTIONS = ("refer", "only", "exclude", "rename", "as", "as-alias")
_FLAGS = ("reload", "reload-all", "verbose")


def builtin_namespace(ev, name: str):
    """The Namespace of one of Pallet's (or Clojure's) namespaces this project provides, made
    for this evaluator (multimethods in it may gain methods), or None."""
    special_forms = ev.special_forms
    core = ev.core.vars
    table = NAMESPACES.get(name)
    if table is not None:
        values: dict[str, Any] = {}
        for local, key in table.names.items():
            if key in special_forms:
                values[local] = SpecialRef(key, table.qualified(local))
            elif key in core:
                values[local] = core[key]
        ns = Namespace(name, Env(values), f"<{name}>")
        ns.pallet_names = table.pallet
        return ns
    if name == SCRIPT_LIB:
        from pallet.stevedore.script_lib import FUNCTIONS, PALLET_NAMES, LibRef
        ns = Namespace(name, Env({n: LibRef(n) for n in FUNCTIONS}), f"<{name}>")
        ns.pallet_names = PALLET_NAMES
        return ns
    if name == "clojure.core":
        values = {k: v for k, v in core.items() if "/" not in k}
        values.update({k: SpecialRef(k, f"clojure.core/{k}") for k in special_forms if "/" not in k})
        return Namespace(name, Env(values), f"<{name}>")
    if name == "clojure.string":
        prefix = "clojure.string/"
        return Namespace(name, Env({k[len(prefix):]: v for k, v in core.items()
                                    if k.startswith(prefix)}), f"<{name}>")
    return None


# ---- the forms --------------------------------------------------------------------------------


def _unquoted(spec: Form) -> Form:
    if isinstance(spec, ListForm) and len(spec.items) == 2 and spec.items[0] == Symbol("quote"):
        return spec.items[1]
    return spec


def require_form(ev, form, env):
    """(require 'ns '[ns :as x] ...), (use 'ns ...), (refer 'ns :only [...])."""
    kind = form.items[0].name.rsplit("/", 1)[-1]
    if kind == "refer":
        args = [_unquoted(a) for a in form.items[1:]]
        if not args:
            raise PalletError("refer needs a namespace", form.span)
        _require_spec(ev, VectorForm(tuple(args), form.span), env, use=True)
        return None
    for spec in form.items[1:]:
        _require_spec(ev, _unquoted(spec), env, use=(kind == "use"))
    return None


def ns_form(ev, form, env):
    """(ns name "doc"? {attrs}? (:require ...) (:use ...) (:refer-clojure ...) (:import ...))."""
    if len(form.items) < 2 or not isinstance(form.items[1], Symbol):
        raise PalletError("ns needs a namespace name: (ns my.crate (:require ...))",
                          span_of(form.items[1]) if len(form.items) > 1 else form.span)
    name = form.items[1].name
    if env.ns is not None:
        ev.namespaces.setdefault(name, env.ns)   # the file's own name reaches its vars
    clauses = list(form.items[2:])
    if clauses and isinstance(clauses[0], Atom) and isinstance(clauses[0].value, str):
        clauses.pop(0)
    if clauses and isinstance(clauses[0], MapForm):
        clauses.pop(0)
    for clause in clauses:
        if not (isinstance(clause, ListForm) and clause.items and isinstance(clause.items[0], Keyword)):
            raise PalletError(f"ns takes clauses such as (:require ...) and (:use ...), found "
                              f"{show(clause)}", span_of(clause))
        key = clause.items[0].name
        if key in ("require", "require-macros"):
            for spec in clause.items[1:]:
                _require_spec(ev, spec, env, use=False)
        elif key == "use":
            for spec in clause.items[1:]:
                _require_spec(ev, spec, env, use=True)
        elif key == "refer-clojure":
            _check_options(clause.items[1:], ("exclude", "only", "rename"), "(:refer-clojure ...)")
        elif key in ("import", "gen-class"):
            pass  # Java classes: naming them does nothing; using one is Java interop, refused there
        elif key == "load":
            raise PalletError("(:load ...) loads files as code at run time, which this dialect "
                              "does not do; make the file a namespace and require it", clause.span)
        else:
            raise PalletError(f"ns: unknown clause (:{key} ...); the clauses are :require, :use, "
                              ":refer-clojure, :import and :gen-class", clause.items[0].span)
    return None


def _check_options(opts, allowed, usage: str) -> None:
    for i in range(0, len(opts), 2):
        if not (isinstance(opts[i], Keyword) and opts[i].name in allowed) or i + 1 >= len(opts):
            raise PalletError(f"{usage} takes " + " ".join(":" + a for a in allowed)
                              + " options, each with a value", span_of(opts[i]))


def _require_spec(ev, spec: Form, env, use: bool) -> None:
    if isinstance(spec, Keyword) and spec.name in _FLAGS:
        return
    if isinstance(spec, Atom) and isinstance(spec.value, str):   # a file, relative to this one
        ns = ev.require(spec.value, spec.span, _file(env))
        if use:
            _refer(env, ns, None, spec)
        return
    if isinstance(spec, Symbol):
        ns = ev.require(spec.name, spec.span, _file(env))
        if use:
            _refer(env, ns, None, spec)
        return
    if isinstance(spec, (VectorForm, ListForm)) and spec.items:
        head, rest = spec.items[0], spec.items[1:]
        name = head.name if isinstance(head, Symbol) else (
            head.value if isinstance(head, Atom) and isinstance(head.value, str) else None)
        if name is None:
            raise PalletError("require takes a namespace symbol or a file name", span_of(head))
        if rest and not isinstance(rest[0], Keyword) and isinstance(head, Symbol):
            # a prefix list: [pallet.crate [java :as java] ssh-key] is pallet.crate.java, ...
            for sub in rest:
                _require_spec(ev, _prefixed(name, sub), env, use)
            return
        opts = _options(rest, spec)
        ns = ev.require(name, spec.span, _file(env))
        if env.ns is not None:
            for key in ("as", "as-alias"):
                if key in opts:
                    alias = opts[key]
                    if not isinstance(alias, Symbol):
                        raise PalletError(f":{key} needs a symbol, found {show(alias)}", span_of(alias))
                    env.ns.aliases[alias.name] = ns.name
        names = opts.get("refer", opts.get("only"))
        if names is not None or use:
            _refer(env, ns, names, spec, opts.get("exclude"), opts.get("rename"))
        return
    raise PalletError(f"cannot require {show(spec)}", span_of(spec))


def _prefixed(prefix: str, sub: Form) -> Form:
    if isinstance(sub, Symbol):
        return Symbol(f"{prefix}.{sub.name}", sub.span)
    if isinstance(sub, (VectorForm, ListForm)) and sub.items and isinstance(sub.items[0], Symbol):
        return VectorForm((Symbol(f"{prefix}.{sub.items[0].name}", sub.items[0].span), *sub.items[1:]),
                          sub.span)
    raise PalletError(f"in a prefix list, {show(sub)} is not a namespace", span_of(sub))


def _options(rest, spec) -> dict[str, Form]:
    opts: dict[str, Form] = {}
    i = 0
    while i < len(rest):
        key = rest[i]
        if isinstance(key, Keyword) and key.name in _FLAGS:
            i += 1
            continue
        if not isinstance(key, Keyword) or key.name not in _REFER_OPTIONS:
            raise PalletError(f"require: unknown option {show(key)}; the options are "
                              + " ".join(":" + o for o in _REFER_OPTIONS), span_of(key) or spec.span)
        if i + 1 >= len(rest):
            raise PalletError(f"require: {key} needs a value", key.span)
        opts[key.name] = rest[i + 1]
        i += 2
    return opts


def _file(env) -> str | None:
    return env.ns.file if env.ns else None


def _symbols(form: Form | None, what: str) -> list[Symbol]:
    if form is None:
        return []
    if isinstance(form, (VectorForm, ListForm)) and all(isinstance(s, Symbol) for s in form.items):
        return list(form.items)
    raise PalletError(f"{what} takes a vector of names", span_of(form))


def _refer(env, ns, names: Form | None, spec: Form, exclude: Form | None = None,
           rename: Form | None = None) -> None:
    """Bind names of `ns` in the namespace of `env`: those of `names` (a vector, or :all),
    every one without it."""
    if env.ns is None:
        return
    target = env.ns
    pallet = getattr(ns, "pallet_names", frozenset())
    excluded = {s.name for s in _symbols(exclude, ":exclude")}
    renames: dict[str, str] = {}
    if rename is not None:
        if not isinstance(rename, MapForm):
            raise PalletError(":rename takes a map {old new}", span_of(rename))
        renames = {k.name: v.name for k, v in rename.pairs
                   if isinstance(k, Symbol) and isinstance(v, Symbol)}
    if names is None or names == Keyword("all"):
        chosen = [(n, None) for n in ns.env.vars if "/" not in n]
        chosen += [(n, None) for n in sorted(pallet) if n not in ns.env.vars]
    else:
        chosen = [(s.name, s) for s in _symbols(names, ":refer")]
    for local, where in chosen:
        if local in excluded:
            continue
        bound = renames.get(local, local)
        if local in ns.env.vars:
            target.env.vars[bound] = ns.env.vars[local]
            target.unsupported.pop(bound, None)
        elif local in pallet:
            target.unsupported[bound] = f"{ns.name}/{local}"
        else:
            raise PalletError(f"{ns.name} has no {local!r}" + did_you_mean(local, ns.env.vars),
                              span_of(where) or span_of(spec))
