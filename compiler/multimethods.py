"""Multimethods: Clojure's `defmulti`/`defmethod`, Pallet's `defmulti-plan`/`defmethod-plan`,
and Pallet's version dispatch, `defmulti-version`/`defmethod-version` and
`defmulti-version-plan`/`defmethod-version-plan` (pallet.version-dispatch).

A multimethod is a value of the namespace that defines it; `defmethod` adds a method to it,
also from another namespace (`(defmethod-plan crate-install/install ::rpm-bin ...)`), so
each evaluation has its own (a namespace is loaded once per evaluation).

    (defmulti-plan install (fn [facility instance-id] (:install-strategy ...)))
    (defmethod-plan install :packages [facility instance-id] ...)
    (defmulti-version-plan java-settings [version settings])
    (defmethod-version-plan java-settings {:os :debian-base :version [8]}
      [os os-version version settings] ...)

A method is chosen by the dispatch value: equal to a method's key, else a key it derives from
in the hierarchy (:hierarchy), else :default. Version dispatch picks, among the methods whose
:os the node's family derives from and whose :os-version and :version specs match, the most
specific one (pallet.version-dispatch's order).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pallet.errors import PalletError
from pallet.grammar.forms import Atom, Keyword, MapForm, Symbol, VectorForm, show, span_of

from .core import equal, pr_str
from .special_forms import _fn_from
from .versions import OS_HIERARCHY, Hierarchy, as_version_vector, best_match

_DEFAULT = Keyword("default")


@dataclass(eq=False)
class MultiFn:
    name: str
    dispatch: Any
    hierarchy: Any = None
    default: Any = _DEFAULT
    plan: bool = False                      # defmulti-plan: its methods are plan functions
    methods: list[tuple[Any, Any]] = field(default_factory=list)

    def add(self, value: Any, fn: Any) -> None:
        self.methods = [(k, f) for k, f in self.methods if not equal(k, value)] + [(value, fn)]

    def find(self, value: Any):
        for key, fn in self.methods:
            if equal(key, value):
                return fn
        if self.hierarchy is not None:
            for key, fn in self.methods:
                if self.hierarchy.isa(value, key):
                    return fn
        for key, fn in self.methods:
            if equal(key, self.default):
                return fn
        return None

    def invoke(self, ev, args, form):
        value = ev.apply(self.dispatch, list(args), form)
        method = self.find(value)
        if method is None:
            what = "defmulti-plan" if self.plan else "multimethod"
            known = " ".join(pr_str(k) for k, _ in self.methods) or "none"
            raise PalletError(f"{self.name}: no {what} method for the dispatch value "
                              f"{pr_str(value)} (methods: {known})", span_of(form))
        return ev.apply(method, list(args), form)

    def describe(self) -> str:
        return f"the multimethod {self.name}"


@dataclass(eq=False)
class VersionMulti:
    """A function dispatched on os, os-version and a version: Pallet's defmulti-version (the
    three come first among the arguments) and defmulti-version-plan (the node's os and
    os-version, and the version argument)."""

    name: str
    hierarchy: Any
    plan: bool
    arity: int                              # the arguments after version
    methods: list[tuple[dict, Any]] = field(default_factory=list)

    def invoke(self, ev, args, form):
        args = list(args)
        if self.plan:
            if ev.plan is None:
                raise PalletError(f"{self.name} dispatches on the node's os, so it works only "
                                  "inside a phase", span_of(form))
            os = Keyword(ev.plan.node.os_family)
            os_version = as_version_vector(ev.plan.node.os_version or "")
            if not args:
                raise PalletError(f"{self.name} takes a version first", span_of(form))
            version = as_version_vector(args[0])
            rest = args[1:]
        else:
            if len(args) < 3:
                raise PalletError(f"{self.name} takes os, os-version and version first", span_of(form))
            os, os_version, version = args[0], as_version_vector(args[1]), as_version_vector(args[2])
            rest = args[3:]
        found = best_match(self.hierarchy, [(k, f) for k, f in self.methods if isinstance(k, dict)],
                           os, os_version, version)
        if found is None:
            found = next(((k, f) for k, f in self.methods if k == _DEFAULT), None)
        if found is None:
            raise PalletError(f"no {self.name} method for :os {pr_str(os)} :os-version "
                              f"{pr_str(os_version)} :version {pr_str(version)}", span_of(form))
        return ev.apply(found[1], [os, os_version, version, *rest], form)

    def describe(self) -> str:
        return f"the version-dispatched function {self.name}"


# ---- the forms -------------------------------------------------------------------------------


def _name_doc_attrs(form, usage: str):
    args = list(form.items[1:])
    if not args or not isinstance(args[0], Symbol):
        raise PalletError(f"{form.items[0]} needs a name; usage: {usage}",
                          span_of(args[0]) if args else form.span)
    name = args.pop(0)
    if args and isinstance(args[0], Atom) and isinstance(args[0].value, str):
        args.pop(0)
    if args and isinstance(args[0], MapForm) and len(args) > 1:
        args.pop(0)
    return name, args


def _define(env, name: Symbol, value):
    (env.ns.env if env.ns else env).vars[name.name] = value
    return value


def _keyword_options(ev, env, forms, allowed, what):
    if len(forms) % 2:
        raise PalletError(f"{what}: options come in :key value pairs", span_of(forms[-1]))
    out = {}
    for key, value in zip(forms[::2], forms[1::2]):
        if not isinstance(key, Keyword) or key.name not in allowed:
            raise PalletError(f"{what}: unknown option {show(key)}; options: "
                              + " ".join(":" + a for a in allowed), span_of(key))
        out[key.name] = ev.eval(value, env)
    return out


def _defmulti(ev, form, env, plan=False):
    what = form.items[0].name.rsplit("/", 1)[-1]
    name, args = _name_doc_attrs(form, f"({what} name dispatch-fn & options)")
    if not args:
        raise PalletError(f"{what} {name.name} needs a dispatch function", form.span)
    dispatch = ev.eval(args[0], env)
    opts = _keyword_options(ev, env, args[1:], ("default", "hierarchy"), what)
    hierarchy = opts.get("hierarchy")
    if hierarchy is not None and not isinstance(hierarchy, Hierarchy):
        raise PalletError(f"{what}: :hierarchy is a hierarchy, such as #'os-hierarchy", form.span)
    existing = (env.ns.env if env.ns else env).vars.get(name.name)
    if isinstance(existing, MultiFn):   # as Clojure: defining it again keeps its methods
        return existing
    return _define(env, name, MultiFn(name.name, dispatch, hierarchy,
                                      opts.get("default", _DEFAULT), plan))


def _defmulti_plan(ev, form, env):
    return _defmulti(ev, form, env, plan=True)


def _method_fn(ev, form, env, tail, name: str, kind: str):
    """A method's function from `[args] body...` or `([a] ...) ([a b] ...)`."""
    return _fn_from(ev, form, env, tuple(tail), kind, name)


def _defmethod(ev, form, env, plan=False):
    what = form.items[0].name.rsplit("/", 1)[-1]
    if len(form.items) < 4:
        raise PalletError(f"usage: ({what} multifn dispatch-value [args] body...)", form.span)
    multi = ev.eval(form.items[1], env)
    if not isinstance(multi, MultiFn):
        raise PalletError(f"{what}: {show(form.items[1])} is not a multimethod "
                          f"(defmulti{'-plan' if plan else ''})", span_of(form.items[1]))
    value = ev.eval(form.items[2], env)
    fn = _method_fn(ev, form, env, form.items[3:], f"{multi.name} {pr_str(value)}",
                    "crate-fn" if plan or multi.plan else "fn")
    multi.add(value, fn)
    return multi


def _defmethod_plan(ev, form, env):
    return _defmethod(ev, form, env, plan=True)


def _defmulti_version(ev, form, env, plan=False):
    what = form.items[0].name.rsplit("/", 1)[-1]
    args = form.items[1:]
    usage = (f"({what} name [version & args])" if plan else
             f"({what} name [os os-version version & args] hierarchy)")
    if len(args) < (1 if plan else 2) or not isinstance(args[0], Symbol) \
            or not (len(args) > 1 and isinstance(args[1], VectorForm)):
        raise PalletError(f"usage: {usage}", form.span)
    hierarchy = OS_HIERARCHY
    if not plan:
        if len(args) < 3:
            raise PalletError(f"{what} needs the hierarchy to dispatch on, such as #'os-hierarchy; "
                              f"usage: {usage}", form.span)
        hierarchy = ev.eval(args[2], env)
        if not isinstance(hierarchy, Hierarchy):
            raise PalletError(f"{what}: {show(args[2])} is not a hierarchy", span_of(args[2]))
    fixed = 1 if plan else 3
    params = args[1].items
    if len(params) < fixed:
        raise PalletError(f"{what} {args[0].name}: the arguments start with "
                          + ("version" if plan else "os, os-version and version"), span_of(args[1]))
    return _define(env, args[0], VersionMulti(args[0].name, hierarchy, plan, len(params) - fixed))


def _defmulti_version_plan(ev, form, env):
    return _defmulti_version(ev, form, env, plan=True)


def _defmethod_version(ev, form, env, plan=False):
    what = form.items[0].name.rsplit("/", 1)[-1]
    if len(form.items) < 4:
        raise PalletError(f"usage: ({what} name {{:os :debian-base :version [8]}} [args] body...)",
                          form.span)
    multi = ev.eval(form.items[1], env)
    if not isinstance(multi, VersionMulti):
        raise PalletError(f"{what}: {show(form.items[1])} is not a "
                          f"defmulti-version{'-plan' if plan else ''}", span_of(form.items[1]))
    key = ev.eval(form.items[2], env)
    if isinstance(key, dict):
        os = key.get(Keyword("os"))
        if os is not None and os not in multi.hierarchy.tags():
            raise PalletError(f"{what}: {show(form.items[2])}: {os} is not part of the hierarchy",
                              span_of(form.items[2]))
    elif key != _DEFAULT:
        raise PalletError(f"{what}: the dispatch value is a map of :os, :os-version and :version",
                          span_of(form.items[2]))
    fn = _method_fn(ev, form, env, form.items[3:], f"{multi.name} {pr_str(key)}",
                    "crate-fn" if plan else "fn")
    multi.methods = [(k, f) for k, f in multi.methods if not equal(k, key)] + [(key, fn)]
    return multi


def _defmethod_version_plan(ev, form, env):
    return _defmethod_version(ev, form, env, plan=True)


SPECIAL_FORMS = {
    "defmulti": _defmulti, "defmethod": _defmethod,
    "defmulti-plan": _defmulti_plan, "defmethod-plan": _defmethod_plan,
    "defmulti-version": _defmulti_version, "defmethod-version": _defmethod_version,
    "defmulti-version-plan": _defmulti_version_plan,
    "defmethod-version-plan": _defmethod_version_plan,
}
