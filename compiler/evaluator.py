"""The evaluator of the spec language: forms -> values.

A small Clojure: special forms are methods of `Evaluator`, the core library lives in core/,
the spec constructors in specs.py and the actions in the plan context (plan.py). Files and
crate namespaces are loaded through a `loader` the caller provides, so evaluation itself does
no I/O of its own.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Mapping

from pallet.errors import InternalError, PalletError, Span
from pallet.grammar.forms import (Atom, Form, Keyword, ListForm, MapForm, SetForm, Symbol,
                                  VectorForm, show, span_of)
from pallet.grammar.cache import read, read_cached
from pallet.stevedore.script_lib import LibRef

from .core import _arity_text, describe
from .crate_forms import SPECIAL_FORMS as _CRATE_FORMS
from .crate_forms import Macro, expand
from .multimethods import SPECIAL_FORMS as _MULTIMETHODS
from .namespaces import SCRIPT_LIB, builtin_namespace
from .pallet_api import CLOJURE_UNSUPPORTED, PALLET_NAMESPACES, SpecialRef, unsupported_name
from .secrets import call_revealed, reads_secret
from .special_forms import SPECIAL_FORMS as _LANGUAGE_FORMS
from .special_forms import key_of
from .spelling import did_you_mean
from .values import ArgError, Builtin, Env, Fn, KeyMap, Namespace

# Every special form: the language's, Pallet's crate forms, and multimethods.
SPECIAL_FORMS = {**_LANGUAGE_FORMS, **_CRATE_FORMS, **_MULTIMETHODS}


class Recur(Exception):
    pass


_MISSING = object()


class Evaluator:
    """Evaluates forms. `loader(name, relative_to)` returns (display name, text) for a file
    or crate namespace, or raises PalletError."""

    # Every special form by name (namespaces.py refers Pallet's names to them).
    special_forms = SPECIAL_FORMS

    def __init__(self, core: dict[str, Any], loader: Callable[[str, str | None], tuple[str, str]],
                 environ: Mapping[str, str] | None = None):
        self.core = Env(dict(core))
        self.loader = loader
        # The controller's environment, for (env "NAME"): handed in, never read here.
        self.environ = environ
        self.secrets = None       # a secrets.SecretRegistry once a (secret ...) was made
        self.namespaces: dict[str, Namespace] = {}
        self._loading: list[str] = []
        self.plan = None          # the PlanContext while a phase runs (plan.py)
        self.operations: list[Any] = []   # converge/lift forms met while loading
        self.calls: list[str] = []        # crate functions being called, for Action.via
        # The crate function calls being evaluated, innermost last: (qualified name, call form)
        self.crate_calls: list[tuple[str, ListForm | None]] = []
        self.atoms: list[Any] = []        # every atom made, for each node's own timeline (plan.py)
        # Reads a local file for slurp (relative to the spec), given by the caller; None: none.
        self.read_local: Callable[[str], bytes] | None = None

    # ---- loading ----------------------------------------------------------------------------

    def load_text(self, text: str, name: str, ns_name: str = "user",
                  cache: bool = False) -> Namespace:
        """Evaluate a file's text in a new namespace. With `cache`, for files (a spec, a
        crate), what was read is kept on disk (grammar/cache.py) for the next run."""
        ns = Namespace(ns_name, Env({}, self.core), name)
        ns.env.ns = ns
        self.namespaces[ns_name] = ns
        forms = read_cached(text, name, ns_name) if cache else read(text, name, ns_name)
        for index, form in enumerate(forms):
            try:
                self.eval(form, ns.env)
            except RecursionError:
                raise PalletError("nested too deeply to evaluate", span_of(form)) from None
            except PalletError as exc:
                better = _defined_later(exc, forms, index, name)
                if better is None:
                    raise
                raise better from None
        return ns

    def require(self, target: str, span: Span | None, relative_to: str | None) -> Namespace:
        if target in self.namespaces:
            return self.namespaces[target]
        if target in self._loading:
            raise PalletError(f"require cycle: {' -> '.join(self._loading + [target])}", span)
        builtin = builtin_namespace(self, target)
        if builtin is not None:
            self.namespaces[target] = builtin
            return builtin
        try:
            display, text = self.loader(target, relative_to)
        except PalletError as exc:
            if target == "lib":  # as in scripts, lib/ is Pallet's script library
                return self.require(SCRIPT_LIB, span, relative_to)
            if target in PALLET_NAMESPACES or (target.startswith("pallet.")
                                                and not target.startswith("pallet.crate.")):
                raise PalletError(f"{target} is a Pallet namespace not yet supported here",
                                  span) from None
            if target.startswith("pallet.crate."):  # one of Pallet's separate crates?
                raise PalletError(exc.message + "; a crate of Pallet's own repositories is not "
                                  "bundled here: put its .clj file on --crate-path", span) from None
            raise PalletError(exc.message, span) from None
        self._loading.append(target)
        try:
            ns_name = target if not target.endswith(".pallet") else display
            ns = self.load_text(text, display, ns_name, cache=True)
        finally:
            self._loading.pop()
        self.namespaces[target] = ns
        return ns

    # ---- evaluation -------------------------------------------------------------------------

    def eval(self, form: Form, env: Env) -> Any:
        # The common forms by exact type first (a call, a name, a literal): the isinstance
        # chain below costs more than the rest of evaluating a small call.
        kind = type(form)
        if kind is ListForm:
            return self._eval_list(form, env)
        if kind is Symbol:
            found, value = env.lookup(form.name)
            return value if found else self.resolve(form, env)
        if isinstance(form, Atom):
            return form.value
        if isinstance(form, Keyword):
            return form
        if isinstance(form, Symbol):
            return self.resolve(form, env)
        if isinstance(form, VectorForm):
            return tuple(self.eval(f, env) for f in form.items)
        if isinstance(form, MapForm):
            out: dict = {}
            for k, v in form.pairs:
                key = self.eval(k, env)
                if type(key) is dict or type(key) is tuple:
                    key = KeyMap.of(key)   # a map as a key: {{:os :linux} [6]}
                out[key_of(key, k, "a map key")] = self.eval(v, env)
            return out
        if isinstance(form, SetForm):
            return frozenset(key_of(KeyMap.of(self.eval(f, env)), f, "a set member") for f in form.items)
        if isinstance(form, ListForm):
            return self._eval_list(form, env)
        raise PalletError(f"cannot evaluate {show(form)}", span_of(form))

    def _eval_list(self, form: ListForm, env: Env) -> Any:
        if not form.items:
            return ()
        try:
            head = form.items[0]
            if isinstance(head, Symbol):
                special = SPECIAL_FORMS.get(head.name)
                if special is not None and not env.lookup(head.name)[0]:
                    return special(self, form, env)
            fn = self.eval(head, env)
            kind = type(fn)
            if kind is SpecialRef:  # (api/plan-fn ...), or a special form referred by name
                return SPECIAL_FORMS[fn.name](self, form, env)
            if kind is Macro:
                return self.eval(expand(self, fn, form, env), env)
            return self.apply(fn, [self.eval(a, env) for a in form.items[1:]], form)
        except (PalletError, Recur, RecursionError):
            raise
        except ArgError as exc:  # a helper's complaint, met outside a builtin's call
            raise PalletError(exc.message, span_of(form)) from None
        except Exception as exc:  # noqa: BLE001 - the last line of defence: never a traceback
            raise InternalError(f"cannot evaluate {_head_text(form)}", span_of(form)) from exc

    def resolve(self, sym: Symbol, env: Env) -> Any:
        found, value = env.lookup(sym.name)
        if found:
            return value
        if sym.namespace:
            ns_name = env.ns.aliases.get(sym.namespace, sym.namespace) if env.ns else sym.namespace
            ns = self.namespaces.get(ns_name)
            if ns is None and _JAVA_CLASS.match(ns_name):
                raise PalletError(f"{sym.name} is Java interop (a static member of a Java class), "
                                  "which this dialect cannot run", sym.span)
            if ns is None:  # bundled crates are reachable by their namespace without require
                ns = self.require(ns_name, sym.span, env.ns.file if env.ns else None)
            found, value = ns.env.lookup(sym.local)
            if found and sym.local in ns.env.vars:
                return value
            if sym.local in ns.pallet_names:
                raise PalletError(f"{ns.name}/{sym.local} is a Pallet name not yet supported here",
                                  sym.span)
            raise PalletError(f"{ns_name} has no {sym.local!r}" + did_you_mean(sym.local, ns.env.vars),
                              sym.span)
        if sym.name in SPECIAL_FORMS:
            raise PalletError(f"{sym.name} is a special form; call it as ({sym.name} ...)", sym.span)
        raise PalletError(_unknown_symbol(sym.name, env), sym.span)

    def apply(self, fn: Any, args: list[Any], form: ListForm | None = None) -> Any:
        span = span_of(form)
        if isinstance(fn, Builtin):
            if self.secrets is not None and reads_secret(fn, args):
                return call_revealed(self, fn, args, form)
            try:
                if fn.contextual:
                    return fn.fn(self, form, *args)
                return fn.fn(*args)
            except ArgError as exc:
                where = span
                if exc.index is not None and form is not None and exc.index + 1 < len(form.items):
                    where = span_of(form.items[exc.index + 1]) or span
                raise PalletError(f"{fn.name}: {exc.message}", where) from None
            except (PalletError, Recur, RecursionError):
                raise
            except Exception as exc:  # noqa: BLE001 - said in the language's words, never Python's
                raise builtin_failed(fn, args, exc, span) from None
        if isinstance(fn, Fn):
            return self.call_fn(fn, args, span, form)
        if isinstance(fn, Keyword):  # (:key map) and (:key map default)
            if len(args) not in (1, 2):
                raise PalletError(f"{fn} as a function takes a map (and a default)", span)
            default = args[1] if len(args) == 2 else None
            if isinstance(args[0], dict):
                return args[0].get(fn, default)
            if isinstance(args[0], frozenset):  # (:jre #{:jre}) is :jre, as in Clojure
                return fn if fn in args[0] else default
            return default
        if isinstance(fn, (dict, set, frozenset)):  # ({:a 1} :a), (#{:a} :a)
            what = "a map" if isinstance(fn, dict) else "a set"
            if len(args) not in (1, 2) or (len(args) == 2 and not isinstance(fn, dict)):
                raise PalletError(f"{what} as a function takes a key" +
                                  (" (and a default)" if isinstance(fn, dict) else ""), span)
            try:
                if isinstance(fn, dict):
                    return fn.get(args[0], args[1] if len(args) == 2 else None)
                return args[0] if args[0] in fn else None
            except TypeError:  # an unhashable key (a map) is in no map or set
                return args[1] if len(args) == 2 else None
        if type(fn) is LibRef:  # (lib/user-home "u") in spec code: its text
            from .script_words import lib_call
            try:
                return lib_call(self, fn, args, form)
            except ArgError as exc:
                raise PalletError(f"{SCRIPT_LIB}/{fn.name}: {exc.message}", span) from None
        if hasattr(fn, "invoke"):  # phase functions and other callable values
            return fn.invoke(self, args, form)
        raise PalletError(f"{describe(fn)} is not a function", span)

    def call_fn(self, fn: Fn, args: list[Any], span: Span | None,
                call: ListForm | None = None) -> Any:
        env = fn.env.child()
        crate = fn.kind == "crate-fn"
        qualified = fn.name
        if crate:
            ns = fn.env.ns.name if fn.env.ns else ""
            qualified = f"{ns}/{fn.name}" if ns and ns != "user" else fn.name
        params, body, pre, post = (fn.params, fn.body, fn.pre, fn.post) if not fn.arities \
            else _arity(fn, len(args), qualified, span)
        self.bind(params, tuple(args), env, qualified, span)
        result = None
        if crate:
            self.calls.append(f"{qualified} ({span})")
            self.crate_calls.append((qualified, call))
        try:
            if pre:
                self._conditions(pre, env, qualified, span, "precondition")
            for form in body:
                result = self.eval(form, env)
            if post:
                self._conditions(post, env.child({"%": result}), qualified, span, "postcondition")
        except RecursionError:
            raise PalletError(f"{fn.name}: calls nest too deeply (endless recursion?)", span) from None
        except PalletError as exc:
            # An error inside a crate function (its checks of the arguments, a `fail`) is
            # shown at the call in the caller's file, where it can be put right; the note
            # keeps the place inside the crate.
            if not crate or exc.span is None or span is None or exc.span.file == span.file:
                raise
            raise PalletError(exc.message, span,
                              (f"  in {qualified}, at {exc.span}", *exc.notes)) from None
        finally:
            if crate:
                self.calls.pop()
                self.crate_calls.pop()
        return result

    def _conditions(self, forms, env, name, span, what) -> None:
        for form in forms:
            if not _truthy(self.eval(form, env)):
                raise PalletError(f"{name}: {what} {show(form)} does not hold", span,
                                  (f"  the condition is at {span_of(form)}",))

    # ---- destructuring ----------------------------------------------------------------------

    def bind(self, pattern: Form, value: Any, env: Env, fn_name: str = "", span: Span | None = None) -> None:
        if isinstance(pattern, Symbol):
            env.vars[pattern.name] = value
            return
        if isinstance(pattern, VectorForm):
            fixed, rest, as_name, names = _vector_shape(pattern)
            seq = tuple(value) if value is not None else ()
            if fn_name and (len(seq) < len(fixed) or (rest is None and len(seq) > len(fixed))):
                raise PalletError(f"{fn_name} takes {len(fixed)}{' or more' if rest is not None else ''} "
                                  f"arguments, got {len(seq)}", span)
            if names is not None:  # [a b c], the usual parameters: bound at once
                vars_ = env.vars
                for i, name in enumerate(names):
                    vars_[name] = seq[i] if i < len(seq) else None
                return
            for i, p in enumerate(fixed):
                self.bind(p, seq[i] if i < len(seq) else None, env)
            if rest is not None:
                remaining = seq[len(fixed):]
                if isinstance(rest, MapForm):  # & {:keys [a b]}: keyword arguments
                    self.bind(rest, _keyword_args(remaining, fn_name, span), env, fn_name, span)
                else:
                    self.bind(rest, remaining or None, env)
            if as_name is not None:
                self.bind(as_name, value, env)
            return
        if isinstance(pattern, MapForm):
            value = value or {}
            if not isinstance(value, dict):
                raise PalletError(f"cannot destructure {describe(value)} as a map", span_of(pattern))
            defaults: dict[str, Any] = {}
            for k, v in pattern.pairs:
                if k == Keyword("or") and isinstance(v, MapForm):
                    defaults = {s.name: self.eval(d, env) for s, d in v.pairs if isinstance(s, Symbol)}
            for k, v in pattern.pairs:
                if k == Keyword("keys"):
                    if fn_name:
                        known = {Keyword(s.name) for s in v.items if isinstance(s, Symbol)}
                        for key in value:
                            if key not in known:
                                raise PalletError(
                                    f"{fn_name}: unknown option {key}" + did_you_mean(
                                        str(key), {str(x) for x in known}), span)
                    for s in v.items:
                        env.vars[s.name] = value.get(Keyword(s.name), defaults.get(s.name))
                elif k == Keyword("strs"):
                    for s in v.items:
                        env.vars[s.name] = value.get(s.name, defaults.get(s.name))
                elif k == Keyword("as"):
                    self.bind(v, value, env)
                elif k == Keyword("or"):
                    pass
                else:
                    self.bind(k, value.get(self.eval(v, env)), env)
            return
        raise PalletError(f"cannot bind to {show(pattern)}", span_of(pattern))

    def script_resolver(self, env: Env) -> Callable[[Form], Any]:
        """`~x` inside a script reaches the values of the spec code around it, and the node
        being planned (scripts are lowered after the phase has run); a script made outside a
        phase, the node of the phase it is made text in (str)."""
        plan = self.plan

        def resolve(form: Form) -> Any:
            saved = self.plan
            self.plan = plan if plan is not None else saved
            try:
                return self.eval(form, env)
            finally:
                self.plan = saved

        def lib_function(sym: Symbol, unquoted: bool) -> str | None:
            """The function of Pallet's script library a script's head names through this
            namespace: an alias (`sl/rm`) or a referred name (`rm`, `~rm`)."""
            if sym.namespace:
                if env.ns is not None and env.ns.aliases.get(sym.namespace) == SCRIPT_LIB:
                    return sym.local
                return None
            found, value = env.lookup(sym.name)
            return value.name if found and type(value) is LibRef else None

        resolve.lib_function = lib_function  # type: ignore[attr-defined]
        return resolve


def _truthy(value: Any) -> bool:
    return value is not None and value is not False


def _arity(fn: Fn, count: int, name: str, span: Span | None):
    """The arity of a multi-arity fn that takes `count` arguments: the one of exactly that
    many fixed parameters, else the variadic one whose fixed ones it covers."""
    variadic = None
    for arity in fn.arities:
        items = arity[0].items
        if Symbol("&") in items:
            if count >= items.index(Symbol("&")):
                variadic = arity
        elif len(items) == count:
            return arity
    if variadic is not None:
        return variadic
    counts = []
    for params, *_ in fn.arities:
        items = params.items
        counts.append(f"{items.index(Symbol('&'))} or more" if Symbol("&") in items else str(len(items)))
    raise PalletError(f"{name} takes {', '.join(counts[:-1]) + ' or ' + counts[-1] if len(counts) > 1 else counts[0]} "
                      f"arguments, got {count}", span)


def _unknown_symbol(name: str, env: Env) -> str:
    """Why a name is unknown: one of Pallet's this project lacks (referred, or bare), Clojure
    this dialect cannot run, Java interop, or a misspelling."""
    pallet = env.ns.unsupported.get(name) if env.ns else None
    if pallet is None and not name.startswith("."):
        pallet = unsupported_name(name)
    if pallet is not None:
        return f"{name} is a Pallet name ({pallet}) not yet supported here"
    if name in CLOJURE_UNSUPPORTED:
        return f"{name} {CLOJURE_UNSUPPORTED[name]}"
    if _JAVA.match(name):
        return (f"{name} is Java interop ({'a method call' if name.startswith('.') else 'a class'}),"
                " which this dialect cannot run")
    return f"unknown symbol {name!r}" + did_you_mean(name, env.names() | set(SPECIAL_FORMS))


_JAVA_CLASS = re.compile(r"[A-Z][A-Za-z0-9_]*$|(java|javax|clojure\.lang)\.")
# .method, Class. (a constructor), java.lang.Class or Class/staticField
_JAVA = re.compile(r"\.[A-Za-z_]|[A-Z][A-Za-z0-9_]*\.$|[a-z]+(\.[a-z0-9]+)+\.[A-Z]|[A-Z][A-Za-z0-9]*/")


_DEFINERS = ("def", "defn", "defn-", "def-crate-fn", "defplan")
_UNKNOWN = re.compile(r"unknown symbol '([^']+)'")


def _defined_name(form: Form) -> str | None:
    if (isinstance(form, ListForm) and len(form.items) > 1 and isinstance(form.items[0], Symbol)
            and form.items[0].name in _DEFINERS and isinstance(form.items[1], Symbol)):
        return form.items[1].name
    return None


def _symbols(form: Form) -> set[str]:
    if isinstance(form, Symbol):
        return {form.name}
    out: set[str] = set()
    for item in getattr(form, "items", ()):
        out |= _symbols(item)
    return out


def _defined_later(exc: PalletError, forms: tuple[Form, ...], index: int,
                   file: str) -> PalletError | None:
    """An unknown symbol of this file that a later top-level form defines: say so, and name
    the cycle when the definitions refer to each other (two specs extending each other)."""
    m = _UNKNOWN.match(exc.message)
    if m is None or exc.span is None or exc.span.file != file:
        return None
    missing = m.group(1)
    later = {n: f for f in forms[index + 1:] if (n := _defined_name(f)) is not None}
    if missing not in later:
        return None
    where = span_of(later[missing].items[1])
    current = _defined_name(forms[index])
    if current is not None:  # a path missing -> ... -> current through the later definitions
        paths = {missing: [missing]}
        queue = [missing]
        while queue:
            n = queue.pop(0)
            for ref in sorted(_symbols(later[n]) - {n}):
                if ref == current:
                    cycle = " -> ".join([current, *paths[n], current])
                    return PalletError(f"a cycle: {cycle}; definitions (such as specs in "
                                       f":extends) cannot refer to each other ({missing} is "
                                       f"defined at {where})", exc.span, exc.notes)
                if ref in later and ref not in paths:
                    paths[ref] = paths[n] + [ref]
                    queue.append(ref)
    return PalletError(f"unknown symbol {missing!r}: it is defined later, at {where}; "
                       "define it before it is used", exc.span, exc.notes)


def _vector_shape(pattern: VectorForm) -> tuple:
    """(fixed patterns, the `& rest` pattern or None, the `:as` name or None, and the names
    when the fixed patterns are plain names and there is no rest or :as, else None): read
    once per vector and kept on it, as each call of a function binds its parameters."""
    shape = pattern.__dict__.get("_shape")
    if shape is None:
        items, rest, as_name = pattern.items, None, None
        if len(items) >= 2 and items[-2] == Keyword("as"):
            as_name, items = items[-1], items[:-2]
        fixed = items
        if Symbol("&") in items:
            i = items.index(Symbol("&"))
            fixed, rest = items[:i], items[i + 1] if i + 1 < len(items) else None
        plain = rest is None and as_name is None and all(type(p) is Symbol for p in fixed)
        shape = (fixed, rest, as_name, tuple(p.name for p in fixed) if plain else None)
        object.__setattr__(pattern, "_shape", shape)   # not a field: not in ==, hash, repr
    return shape


def _keyword_args(remaining: tuple, fn_name: str, span: Span | None) -> dict:
    """`:key value` pairs as a map; as in Clojure 1.11, a map may come last, or alone, in
    place of (some of) the pairs."""
    pairs, last = remaining, {}
    if len(remaining) % 2 and isinstance(remaining[-1], dict):
        pairs, last = remaining[:-1], remaining[-1]
    if len(pairs) % 2:
        raise PalletError(f"{fn_name or 'call'}: keyword options come in pairs", span)
    out: dict = {}
    for key, value in zip(pairs[::2], pairs[1::2]):
        if not isinstance(key, (Keyword, str)):
            raise PalletError(f"{fn_name or 'call'}: expected an option keyword, got "
                              f"{describe(key)}", span)
        out[key] = value
    out.update(last)
    return out


def _head_text(form: ListForm) -> str:
    head = form.items[0]
    return f"({show(head)} ...)" if isinstance(head, (Symbol, Keyword)) else "this call"


def arity_of(fn: Builtin) -> tuple[int, int | None] | None:
    """How many arguments a builtin takes (least, most or None), read from its Python
    function (past the evaluator and call form a contextual one receives); None when the
    function takes any number and checks them itself."""
    import inspect
    target = getattr(fn.fn, "__wrapped__", fn.fn)
    try:
        params = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return None
    if fn.contextual:
        params = params[2:]
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        if not params or all(p.kind is p.VAR_POSITIONAL for p in params):
            return None
        most = None
    else:
        most = len(params)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    least = sum(1 for p in positional if p.default is p.empty)
    return least, most


def builtin_failed(fn: Builtin, args: list[Any], exc: Exception, span: Span | None) -> PalletError:
    """A builtin that failed with a Python exception, in the language's words: the number of
    arguments it takes, when that is what was wrong; else what it was given."""
    arity = arity_of(fn)
    if arity is not None and isinstance(exc, TypeError):
        least, most = arity
        if len(args) < least or (most is not None and len(args) > most):
            return PalletError(f"{fn.name} {_arity_text(least, most, len(args))}", span)
    if isinstance(exc, ZeroDivisionError):
        return PalletError(f"{fn.name}: division by zero", span)
    if isinstance(exc, OverflowError):
        return PalletError(f"{fn.name}: number too large", span)
    given = ", ".join(describe(a) for a in args) if args else "no arguments"
    return PalletError(f"{fn.name} cannot take {given}", span)
