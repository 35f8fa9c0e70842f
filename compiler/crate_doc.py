"""What `pallet doc` shows: a crate's functions, their arguments, options and defaults.

A crate is loaded with the evaluator as a spec would load it (so a crate that does not load
is reported as it would be at compile time), but none of its functions is called: no target
node is needed. The arguments come from each function's parameter vector; keyword options
and their defaults from `& {:keys [...] :or {...}}` in it. A function that parses its own
arguments (`[& args]`) can say how it is called with an attr-map before its parameters,
`{:arglists '([& {:keys [version] :or {version 17}}] [kind & {:keys [version]}])}`, as in
Clojure; `pallet doc` then reads those instead.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any

from pallet.errors import PalletError
from pallet.grammar.forms import (Form, Keyword, ListForm, MapForm, Symbol, VectorForm, show,
                                  span_of)
from pallet.grammar.reader import read

from .crates import CrateFile, CrateIndex, first_sentence, header_of
from .evaluator import Evaluator
from .spelling import closest
from .values import Fn, Namespace

_DEFINERS = {"def-crate-fn": "crate function", "defplan": "crate function",
             "defn": "function", "defn-": "private function", "def": "value"}


@dataclass
class Option:
    name: str
    default: str | None = None     # the default's source text, or None


@dataclass
class FnDoc:
    qualified: str
    kind: str                      # "crate function", "function"
    signatures: tuple[str, ...]
    arguments: tuple[str, ...]
    options: tuple[Option, ...]
    doc: str | None
    where: str
    rest: str | None = None        # `& rest` taken as it is (no options declared)

    @property
    def summary(self) -> str:
        return first_sentence(self.doc.split("\n\n")[0]) if self.doc else ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.qualified, "kind": self.kind, "signatures": list(self.signatures),
                "arguments": list(self.arguments), "rest": self.rest,
                "options": [{"name": o.name, "default": o.default} for o in self.options],
                "doc": self.doc, "where": self.where}


@dataclass
class CrateDoc:
    crate: CrateFile
    header: list[str]
    functions: list[FnDoc] = field(default_factory=list)
    values: list[str] = field(default_factory=list)


def _unquote(form: Form) -> Form:
    if (isinstance(form, ListForm) and len(form.items) == 2 and isinstance(form.items[0], Symbol)
            and form.items[0].name == "quote"):
        return form.items[1]
    return form


def _arglists(fn: Fn) -> tuple[VectorForm, ...]:
    if isinstance(fn.meta, MapForm):
        for k, v in fn.meta.pairs:
            if k == Keyword("arglists"):
                v = _unquote(v)
                if isinstance(v, (ListForm, VectorForm)):
                    lists = tuple(i for i in v.items if isinstance(i, VectorForm))
                    if lists:
                        return lists
    return (fn.params,)


def describe_fn(qualified: str, fn: Fn, kind: str, file: str | None = None) -> FnDoc:
    """The documentation of one function, from its parameters (or :arglists) and docstring."""
    arguments: list[str] = []
    options: dict[str, Option] = {}
    rest: str | None = None
    lists = _arglists(fn)
    for params in lists:
        items = list(params.items)
        if len(items) >= 2 and items[-2] == Keyword("as"):
            items = items[:-2]
        fixed, tail = items, None
        if Symbol("&") in items:
            i = items.index(Symbol("&"))
            fixed, tail = items[:i], (items[i + 1] if i + 1 < len(items) else None)
        for p in fixed:
            name = show(p)
            if name not in arguments:
                arguments.append(name)
        if isinstance(tail, MapForm):
            defaults: dict[str, str] = {}
            for k, v in tail.pairs:
                if k == Keyword("or") and isinstance(v, MapForm):
                    defaults.update({show(s): show(d) for s, d in v.pairs})
            for k, v in tail.pairs:
                if k == Keyword("keys") and isinstance(v, VectorForm):
                    for s in v.items:
                        name = show(s)
                        option = options.setdefault(name, Option(":" + name))
                        if option.default is None and name in defaults:
                            option.default = defaults[name]
        elif tail is not None and rest is None:
            rest = show(tail)
    signatures = tuple(f"({qualified}{''.join(' ' + show(i) for i in p.items)})" for p in lists)
    return FnDoc(qualified, kind, signatures, tuple(arguments), tuple(options.values()),
                 _dedent(fn.doc), _where(fn, file), rest)


def _where(fn: Fn, file: str | None) -> str:
    if fn.span is None:
        return file or ""
    return f"{file}:{fn.span.line}:{fn.span.column}" if file else str(fn.span)


def _dedent(doc: str | None) -> str | None:
    """A docstring's continuation lines are indented under its first (Clojure style)."""
    if not doc:
        return doc
    first, _, others = doc.partition("\n")
    others = textwrap.dedent(others)
    return (first.strip() + ("\n" + others if others else "")).strip()


def load_crate(index: CrateIndex, namespace: str) -> tuple[CrateFile, Namespace]:
    """Load one crate namespace, without a node and without calling its functions."""
    from .project import core_env, file_loader
    crate = index.find(namespace)
    if crate is None:
        raise PalletError(index.not_found(namespace))
    ev = Evaluator(core_env(), file_loader(index=index))
    ns = ev.require(namespace, None, None)
    return crate, ns


def definers(text: str, name: str) -> dict[str, str]:
    """Each top-level name of a crate file and the form that defined it (defn, defn-, ...)."""
    out: dict[str, str] = {}
    try:
        forms = read(text, name)
    except PalletError:
        return out
    for form in forms:
        if (isinstance(form, ListForm) and len(form.items) > 1 and isinstance(form.items[0], Symbol)
                and form.items[0].name in _DEFINERS and isinstance(form.items[1], Symbol)):
            out[form.items[1].name] = form.items[0].name
    return out


def crate_doc(index: CrateIndex, namespace: str) -> CrateDoc:
    """Every public function of a crate, crate functions first, in the order written."""
    crate, ns = load_crate(index, namespace)
    text = crate.read()
    kinds = definers(text, crate.display)
    doc = CrateDoc(crate, header_of(text))
    fns = [(n, v) for n, v in ns.env.vars.items() if isinstance(v, Fn)]
    for wanted in ("crate-fn", "fn"):
        for name, value in fns:
            if kinds.get(name) == "defn-" or (value.kind == "crate-fn") != (wanted == "crate-fn"):
                continue
            kind = "crate function" if value.kind == "crate-fn" else "function"
            doc.functions.append(describe_fn(f"{namespace}/{name}", value, kind, crate.path))
    doc.values = [n for n, v in ns.env.vars.items() if not isinstance(v, Fn)
                  and kinds.get(n) == "def"]
    return doc


def public_names(doc: CrateDoc) -> list[str]:
    return [f.qualified.rsplit("/", 1)[1] for f in doc.functions] + doc.values


def fn_doc(index: CrateIndex, namespace: str, name: str) -> tuple[CrateFile, FnDoc | None, Any]:
    """(crate, the function's documentation, or None and the var's value) for NS/NAME."""
    crate, ns = load_crate(index, namespace)
    value = ns.env.vars.get(name)
    kinds = definers(crate.read(), crate.display)
    if name not in ns.env.vars or kinds.get(name) == "defn-":
        candidates = public_names(crate_doc(index, namespace))
        close = closest(name, candidates, cutoff=0.6)
        private = " public" if name in ns.env.vars else ""
        raise PalletError(f"the crate {namespace} has no{private} function {name!r}" +
                          (f"; did you mean '{namespace}/{close}'?" if close else "") +
                          (f" (it has: {', '.join(candidates)})" if candidates else ""))
    if isinstance(value, Fn):
        kind = "crate function" if value.kind == "crate-fn" else "function"
        return crate, describe_fn(f"{namespace}/{name}", value, kind, crate.path), value
    return crate, None, value


def where_from(crate: CrateFile) -> str:
    if crate.origin == "bundled":
        return "bundled with Pallet"
    if crate.origin == "package":
        return f"package {crate.where}"
    return f"search path {crate.where}"


def render_fn(doc: FnDoc, crate: CrateFile) -> str:
    lines = [*doc.signatures, "",
             f"  {doc.kind} of the crate {crate.namespace} ({where_from(crate)}), "
             f"defined at {doc.where}"]
    if doc.arguments or doc.rest:
        lines += ["", "Arguments:"]
        lines += [f"  {a}" for a in doc.arguments]
        if doc.rest:
            lines.append(f"  & {doc.rest}    (further arguments, read by the function itself; "
                         "see below)")
    if doc.options:
        width = max(len(o.name) for o in doc.options)
        lines += ["", "Options:"]
        lines += [f"  {o.name.ljust(width)}  default: {o.default}" if o.default is not None
                  else f"  {o.name}" for o in doc.options]
    lines += ["", *(textwrap.indent(doc.doc, "  ").splitlines() if doc.doc
                    else ["  (no docstring)"])]
    return "\n".join(lines)


def render_crate(doc: CrateDoc) -> str:
    crate = doc.crate
    lines = [f"{crate.namespace}: a crate ({where_from(crate)}), {crate.path}", ""]
    lines += [f"  {h}".rstrip() for h in doc.header] or ["  (no header comment)"]
    for title, kind in (("Crate functions", "crate function"), ("Functions", "function")):
        fns = [f for f in doc.functions if f.kind == kind]
        if not fns:
            continue
        width = max(len(f.qualified) for f in fns)
        lines += ["", f"{title}:"]
        lines += [f"  {f.qualified.ljust(width)}  {f.summary or '(no docstring)'}".rstrip()
                  for f in fns]
    if doc.values:
        lines += ["", "Values:", "  " + " ".join(f"{crate.namespace}/{v}" for v in doc.values)]
    lines += ["", f"`pallet doc {crate.namespace}/NAME` shows a function's arguments and options."]
    return "\n".join(lines)


def unknown_name(index: CrateIndex, name: str) -> PalletError:
    """The error for a bare NAME that is no crate: a core function, a function of some
    crate, or a misspelt crate."""
    from .project import core_env
    if name in core_env():
        return PalletError(f"{name!r} is not a crate: it is part of the core library (an "
                           "action or a function); see docs/language.md")
    listed = index.list()
    crates = [c.crate.namespace for c in listed]
    close = closest(name, crates, cutoff=0.6)
    if close:
        return PalletError(f"no crate named {name!r}; did you mean {close!r}?")
    owners = []
    for c in listed:
        try:
            doc = crate_doc(index, c.crate.namespace)
        except PalletError:
            continue
        if name in public_names(doc):
            owners.append(f"{c.crate.namespace}/{name}")
    if owners:
        return PalletError(f"no crate named {name!r}; did you mean " +
                           " or ".join(repr(o) for o in owners) + "?")
    return PalletError(f"no crate named {name!r} (crates: {', '.join(crates) or 'none'}; "
                       "`pallet crates` lists them)")
