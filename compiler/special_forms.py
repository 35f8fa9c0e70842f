"""The special forms of the spec language: forms whose arguments are not simply evaluated."""
from __future__ import annotations

from typing import Any

from pallet.crates.action_options import ACTION_OPTIONS
from pallet.errors import PalletError
from pallet.grammar.forms import (Atom, Form, Keyword, ListForm, MapForm, SetForm, Symbol,
                                  VectorForm, show, span_of)
from pallet.stevedore import ScriptForms

from .core import describe, equal  # equal is the language's =: true is not 1
from .namespaces import ns_form, require_form
from .plan import record
from .values import Fn, PhaseFn


def _args(form: ListForm, low: int, high: int | None, usage: str) -> tuple[Form, ...]:
    args = form.items[1:]
    if len(args) < low or (high is not None and len(args) > high):
        raise PalletError(f"wrong number of arguments to {form.items[0]}; usage: {usage}", form.span)
    return args


def _truthy(value: Any) -> bool:
    return value is not None and value is not False


def key_of(value: Any, form: Form, role: str) -> Any:
    try:
        hash(value)
    except TypeError:
        raise PalletError(f"{describe(value)} cannot be {role}: maps, and collections holding "
                          "maps, are not hashable", span_of(form)) from None
    return value


def _def(ev, form, env):
    args = _args(form, 1, 3, "(def name value)")
    name = args[0]
    if not isinstance(name, Symbol):
        raise PalletError(f"def needs a symbol, found {show(name)}", span_of(name))
    value_form = args[-1] if len(args) > 1 else None
    try:
        value = ev.eval(value_form, env) if value_form is not None else None
    except PalletError as exc:
        if exc.message.startswith(f"unknown symbol {name.name!r}"):
            raise PalletError(f"{name.name} refers to itself while it is being defined "
                              "(a cycle, e.g. in :extends)", exc.span) from None
        raise
    if isinstance(value, (Fn, PhaseFn)) and value.name in ("fn", "phase-fn"):
        value.name = name.name  # so explain and errors can name it
    (env.ns.env if env.ns else env).vars[name.name] = value
    return value


def _fn_from(ev, form, env, args, kind="fn", name="fn"):
    doc = meta = None
    if args and isinstance(args[0], Atom) and isinstance(args[0].value, str):
        doc, args = args[0].value, args[1:]
    if args and isinstance(args[0], MapForm):  # attr-map: kept unevaluated (pallet doc reads :arglists)
        meta, args = args[0], args[1:]
    if args and isinstance(args[0], ListForm) and args[0].items and isinstance(args[0].items[0], VectorForm):
        # multi-arity: ([] ...) ([a] ...) ([a & more] ...), an attr-map may follow
        if args and isinstance(args[-1], MapForm):
            args = args[:-1]
        arities = []
        for arity in args:
            if not (isinstance(arity, ListForm) and arity.items and isinstance(arity.items[0], VectorForm)):
                raise PalletError(f"{form.items[0]}: each arity is a list ([args] body...)", span_of(arity))
            arities.append((arity.items[0], *_conditions(tuple(arity.items[1:]))))
        _check_arities(form, arities)
        params, body, pre, post = arities[0]
        return Fn(name, params, body, env, form.span, doc, kind, meta, pre, post, tuple(arities))
    if not args or not isinstance(args[0], VectorForm):
        raise PalletError(f"{form.items[0]} needs a vector of arguments", span_of(args[0]) if args else form.span)
    body, pre, post = _conditions(tuple(args[1:]))
    return Fn(name, args[0], body, env, form.span, doc, kind, meta, pre, post)


def _conditions(body):
    """(body, pre, post): a map of :pre and :post vectors before a body of more forms is its
    conditions, as in Clojure."""
    if len(body) > 1 and isinstance(body[0], MapForm):
        keys = {k.name: v for k, v in body[0].pairs if isinstance(k, Keyword)}
        if keys and set(keys) <= {"pre", "post"} and len(keys) == len(body[0].pairs):
            for v in keys.values():
                if not isinstance(v, VectorForm):
                    raise PalletError(":pre and :post take a vector of conditions", span_of(v))
            return (body[1:], tuple(keys["pre"].items) if "pre" in keys else (),
                    tuple(keys["post"].items) if "post" in keys else ())
    return body, (), ()


def _check_arities(form, arities) -> None:
    fixed: set[int] = set()
    variadic = 0
    for params, *_ in arities:
        items = params.items
        if Symbol("&") in items:
            variadic += 1
            if variadic > 1:
                raise PalletError("a function has at most one variadic arity", span_of(params))
        else:
            if len(items) in fixed:
                raise PalletError(f"two arities of {len(items)} arguments", span_of(params))
            fixed.add(len(items))


def _defn(ev, form, env, kind="fn"):
    args = _args(form, 2, None, f"({form.items[0]} name \"doc\"? [args] body...)")
    name = args[0]
    if not isinstance(name, Symbol):
        raise PalletError(f"{form.items[0]} needs a name, found {show(name)}", span_of(name))
    fn = _fn_from(ev, form, env, args[1:], kind, name.name)
    target = env.ns.env if env.ns else env
    target.vars[name.name] = fn
    return fn


def _def_crate_fn(ev, form, env):
    return _defn(ev, form, env, kind="crate-fn")


def _fn(ev, form, env):
    args = _args(form, 1, None, "(fn [args] body...)")
    if isinstance(args[0], Symbol):  # (fn name [args] ...): the body can call itself by name
        name = args[0].name
        inner = env.child()
        fn = _fn_from(ev, form, inner, args[1:], "fn", name)
        inner.vars[name] = fn
        return fn
    return _fn_from(ev, form, env, args, "fn", "fn")


def _let(ev, form, env):
    args = _args(form, 1, None, "(let [name value ...] body...)")
    bindings = args[0]
    if not isinstance(bindings, VectorForm) or len(bindings.items) % 2:
        raise PalletError("let needs a vector of name/value pairs", span_of(bindings))
    inner = env.child()
    items = bindings.items
    for i in range(0, len(items), 2):
        ev.bind(items[i], ev.eval(items[i + 1], inner), inner)
    return _body(ev, args[1:], inner)


def _body(ev, forms, env):
    result = None
    for f in forms:
        result = ev.eval(f, env)
    return result


def _if(ev, form, env):
    args = _args(form, 2, 3, "(if test then else?)")
    if _truthy(ev.eval(args[0], env)):
        return ev.eval(args[1], env)
    return ev.eval(args[2], env) if len(args) == 3 else None


def _when(ev, form, env, negate=False):
    args = _args(form, 1, None, f"({form.items[0]} test body...)")
    if _truthy(ev.eval(args[0], env)) != negate:
        return _body(ev, args[1:], env)
    return None


def _when_not(ev, form, env):
    return _when(ev, form, env, negate=True)


def _if_let(ev, form, env, is_when=False):
    args = _args(form, 2, None if is_when else 3, f"({form.items[0]} [name value] ...)")
    binding = args[0]
    if not isinstance(binding, VectorForm) or len(binding.items) != 2:
        raise PalletError(f"{form.items[0]} needs [name value]", span_of(binding))
    value = ev.eval(binding.items[1], env)
    if _truthy(value):
        inner = env.child()
        ev.bind(binding.items[0], value, inner)
        return _body(ev, args[1:], inner) if is_when else ev.eval(args[1], inner)
    return None if is_when or len(args) < 3 else ev.eval(args[2], env)


def _when_let(ev, form, env):
    return _if_let(ev, form, env, is_when=True)


def _cond(ev, form, env):
    args = form.items[1:]
    if len(args) % 2:
        raise PalletError("cond needs test/expression pairs", form.span)
    for i in range(0, len(args), 2):
        test = args[i]
        if test == Keyword("else") or _truthy(ev.eval(test, env)):
            return ev.eval(args[i + 1], env)
    return None


def _case(ev, form, env):
    args = _args(form, 1, None, "(case x value expr ... default?)")
    value = ev.eval(args[0], env)
    clauses = args[1:]
    for i in range(0, len(clauses) - 1, 2):
        test = clauses[i]
        candidates = ([ev.eval(t, env) if not isinstance(t, Symbol) else t for t in test.items]
                      if isinstance(test, ListForm) else
                      [ev.eval(test, env) if not isinstance(test, Symbol) else test])
        if any(equal(value, c) for c in candidates):
            return ev.eval(clauses[i + 1], env)
    if len(clauses) % 2:
        return ev.eval(clauses[-1], env)
    raise PalletError(f"case: no clause matches {describe(value)}", form.span)


def _do(ev, form, env):
    return _body(ev, form.items[1:], env)


def _for(ev, form, env, collect=True):
    args = _args(form, 2 if collect else 1, None, f"({form.items[0]} [x coll ...] body)")
    bindings = args[0]
    if not isinstance(bindings, VectorForm) or len(bindings.items) % 2:
        raise PalletError(f"{form.items[0]} needs a vector of name/collection pairs", span_of(bindings))
    out: list[Any] = []

    def walk(i, scope):
        items = bindings.items
        if i >= len(items):
            out.append(_body(ev, args[1:], scope))
            return
        key, expr = items[i], items[i + 1]
        if key == Keyword("when"):
            if _truthy(ev.eval(expr, scope)):
                walk(i + 2, scope)
            return
        if key == Keyword("let"):
            inner = scope.child()
            for j in range(0, len(expr.items), 2):
                ev.bind(expr.items[j], ev.eval(expr.items[j + 1], inner), inner)
            walk(i + 2, inner)
            return
        coll = ev.eval(expr, scope)
        try:
            items = _seq(coll)
        except TypeError:
            raise PalletError(f"{form.items[0]}: {show(key)} needs a collection, got {describe(coll)}",
                              span_of(expr)) from None
        for item in items:
            inner = scope.child()
            ev.bind(key, item, inner)
            walk(i + 2, inner)

    walk(0, env)
    return tuple(out) if collect else None


def _doseq(ev, form, env):
    return _for(ev, form, env, collect=False)


def _seq(coll):
    if coll is None:
        return ()
    if isinstance(coll, dict):
        return tuple(coll.items())
    if isinstance(coll, (set, frozenset)):
        return tuple(sorted(coll, key=repr))
    if isinstance(coll, str):
        return tuple(coll)
    return tuple(coll)


def _quote(ev, form, env):
    args = _args(form, 1, 1, "(quote x)")
    return _quoted(args[0])


def _quoted(form):
    if isinstance(form, Atom):
        return form.value
    if isinstance(form, (Symbol, Keyword)):
        return form
    if isinstance(form, MapForm):
        return {_hashed(_quoted(k), k, "a map key"): _quoted(v) for k, v in form.pairs}
    if isinstance(form, SetForm):
        return frozenset(_hashed(_quoted(i), i, "a set member") for i in form.items)
    if hasattr(form, "items"):
        return tuple(_quoted(i) for i in form.items)
    return form


def _hashed(value, form, role):
    return key_of(value, form, role)


def _var(ev, form, env):
    """(var x), read from #'x: the value x names (a var and its value are one here)."""
    args = _args(form, 1, 1, "(var name)")
    if not isinstance(args[0], Symbol):
        raise PalletError(f"var needs a symbol, found {show(args[0])}", span_of(args[0]))
    return ev.eval(args[0], env)


def _syntax_quote(ev, form, env):
    """`x, read as (syntax-quote x): x as data, like quote, except that ~e is the value of e,
    ~@e splices the items of e, and name# is one generated name per syntax-quote. Symbols
    stay as written (Clojure would qualify them with their namespace)."""
    args = _args(form, 1, 1, "(syntax-quote x)")
    gensyms: dict[str, Symbol] = {}

    def walk(f):
        if isinstance(f, Symbol):
            if f.name.endswith("#") and len(f.name) > 1:
                if f.name not in gensyms:
                    ev.gensym_count = getattr(ev, "gensym_count", 0) + 1
                    gensyms[f.name] = Symbol(f"{f.name[:-1]}__{ev.gensym_count}__auto__", f.span)
                return gensyms[f.name]
            return f
        if isinstance(f, ListForm) and len(f.items) == 2 and f.items[0] == Symbol("unquote"):
            return ev.eval(f.items[1], env)
        if isinstance(f, ListForm) and len(f.items) == 2 and f.items[0] == Symbol("unquote-splicing"):
            raise PalletError("~@ splices into a list, vector or set; here it stands alone", f.span)
        if isinstance(f, MapForm):
            return {_hashed(walk(k), k, "a map key"): walk(v) for k, v in f.pairs}
        if isinstance(f, Atom):
            return f.value
        if hasattr(f, "items"):
            out: list = []
            for item in f.items:
                if (isinstance(item, ListForm) and len(item.items) == 2
                        and item.items[0] == Symbol("unquote-splicing")):
                    value = ev.eval(item.items[1], env)
                    if value is None:
                        continue
                    if isinstance(value, dict):
                        value = tuple(value.items())
                    if not isinstance(value, (tuple, list, frozenset, set, str)):
                        raise PalletError("~@ needs a collection to splice", item.span)
                    out.extend(value)
                else:
                    out.append(walk(item))
            if isinstance(f, SetForm):
                return frozenset(_hashed(v, f, "a set member") for v in out)
            return tuple(out)
        return f

    return walk(args[0])


def _and(ev, form, env):
    result: Any = True
    for f in form.items[1:]:
        result = ev.eval(f, env)
        if not _truthy(result):
            return result
    return result


def _or(ev, form, env):
    result: Any = None
    for f in form.items[1:]:
        result = ev.eval(f, env)
        if _truthy(result):
            return result
    return result


def _thread(ev, form, env, last=False):
    args = _args(form, 1, None, f"({form.items[0]} x forms...)")
    acc = args[0]
    for step in args[1:]:
        if isinstance(step, ListForm):
            items = (step.items + (acc,)) if last else (step.items[:1] + (acc,) + step.items[1:])
        else:
            items = (step, acc)
        acc = ListForm(items, step.span)
    return ev.eval(acc, env)


def _thread_last(ev, form, env):
    return _thread(ev, form, env, last=True)


def _script(ev, form, env):
    return ScriptForms(tuple(form.items[1:]), ev.script_resolver(env))


def _script_as_form(ev, form, env):
    """(checked-script "msg" forms...) and (chained-script forms...): script values, as
    `script` makes, of that one Stevedore form."""
    return ScriptForms((form,), ev.script_resolver(env))


def _combined_scripts(ev, form, env):
    """Pallet's functions over scripts: (do-script s ...), (chain-commands s ...) and
    (checked-commands "msg" s ...) of script values (nil ones are left out). Pallet passed
    shell text; a string here is an error, since it would be pasted as code."""
    name = form.items[0].name
    args = [ev.eval(a, env) for a in form.items[1:]]
    head: list = []
    if name == "checked-commands":
        if not args or not isinstance(args[0], str):
            raise PalletError("checked-commands needs a message string first", form.span)
        head = [Atom(args.pop(0), form.span)]
    values: dict[str, ScriptForms] = {}
    for arg, arg_form in zip(args, form.items[len(form.items) - len(args):]):
        if arg is None:
            continue
        if isinstance(arg, str):
            raise PalletError(f"{name} takes script values here, such as (script ...): Pallet pasted "
                              "a string into the script as shell code; write the commands as script "
                              "forms, or (script (raw \"...\")) for shell text", span_of(arg_form))
        if not isinstance(arg, ScriptForms):
            raise PalletError(f"{name} takes script values, such as (script ...)", span_of(arg_form))
        values[f"pallet-script-{len(values)}"] = arg
    parts = tuple(ListForm((Symbol("unquote", form.span), Symbol(key, form.span)), form.span)
                  for key in values)
    wrap = {"do-script": "do", "chain-commands": "chained-script",
            "checked-commands": "checked-script"}[name]
    body = ListForm((Symbol(wrap, form.span), *head, *parts), form.span)
    return ScriptForms((body,), lambda f: values[f.name] if isinstance(f, Symbol) and f.name in values
                       else ev.script_resolver(env)(f))


def _phase_fn(ev, form, env):
    return PhaseFn(tuple(form.items[1:]), env, form.span)


def _exec_script(ev, form, env):
    """(exec-script body...) and (exec-checked-script "name" :creates p body...): the body is
    script forms, as in Pallet; ~ reaches the spec values around it."""
    checked = form.items[0].name == "exec-checked-script"
    args = list(form.items[1:])
    name = None
    if checked or (args and not isinstance(args[0], ListForm)):
        if not args:
            raise PalletError(f"{form.items[0]} needs a name", form.span)
        name = ev.eval(args.pop(0), env)
        if not isinstance(name, str):
            raise PalletError(f"{form.items[0]}: the name must be a string", form.span)
    options = []
    while len(args) >= 2 and isinstance(args[0], Keyword):
        key, value_form = args.pop(0), args.pop(0)
        allowed = ACTION_OPTIONS[form.items[0].name]
        if key.name not in allowed:
            raise PalletError(f"{form.items[0]}: unknown option {key}; options: "
                              + " ".join(":" + a for a in allowed), key.span)
        value = (ScriptForms((value_form,), ev.script_resolver(env)) if key.name == "unless"
                 else ev.eval(value_form, env))
        options.append((key.name, value))
    body = ScriptForms(tuple(args), ev.script_resolver(env))
    return record(ev, form, form.items[0].name, (name, body), tuple(options),
                  f"{form.items[0].name} {name}" if name else form.items[0].name)


def _publish(ev, form, env):
    """(publish :key body...): the body's output, on the node, becomes the node's value
    `key`, which phases that run later read with (published node :key)."""
    args = _args(form, 2, None, "(publish :key script-forms...)")
    key = ev.eval(args[0], env)
    name = key.name if isinstance(key, Keyword) else key
    if not isinstance(name, str) or not name:
        raise PalletError("publish: the value's name must be a keyword or a string", span_of(args[0]))
    body = ScriptForms(tuple(args[1:]), ev.script_resolver(env))
    return record(ev, form, "publish", (name, body), (), f"publish {name}")


def _comment(ev, form, env):
    return None


SPECIAL_FORMS = {
    "def": _def, "defn": _defn, "defn-": _defn, "fn": _fn, "let": _let, "if": _if,
    "when": _when, "when-not": _when_not, "if-let": _if_let, "when-let": _when_let,
    "cond": _cond, "case": _case, "do": _do, "for": _for, "doseq": _doseq, "quote": _quote,
    "var": _var, "syntax-quote": _syntax_quote,
    "and": _and, "or": _or, "->": _thread, "->>": _thread_last, "require": require_form,
    "use": require_form, "refer": require_form, "ns": ns_form, "script": _script,
    "checked-script": _script_as_form, "chained-script": _script_as_form,
    "do-script": _combined_scripts, "chain-commands": _combined_scripts,
    "checked-commands": _combined_scripts, "phase-fn": _phase_fn, "plan-fn": _phase_fn,
    "def-crate-fn": _def_crate_fn, "defplan": _def_crate_fn,
    "exec-script": _exec_script, "exec-checked-script": _exec_script, "publish": _publish, "comment": _comment,
}
