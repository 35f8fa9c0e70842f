"""The special forms of Pallet's crate API and of the Clojure its crates use, beyond
special_forms.py: `with-action-options`, `plan-when`/`plan-when-not`, `phase-context`,
`with-source-line-comments`, `fragment`, script functions defined in spec code
(`defscript`/`defimpl`, pallet.script), `assert`, `letfn`, `defmacro`, and Pallet 0.6's
`phase-fn` and `def-phase-fn`.
"""
from __future__ import annotations

from typing import Any

from pallet.errors import PalletError
from pallet.grammar.forms import (Atom, Keyword, ListForm, MapForm, Symbol, VectorForm, show,
                                  span_of)
from pallet.stevedore import ScriptForms
from pallet.stevedore.functions import SpecScriptFn

from .core import str_of
from .special_forms import _body, _def_crate_fn, _fn_from, _quoted
from .values import PhaseFn

# with-action-options: what each option of Pallet's does here. Actions run in the order a
# phase records them, one script per node and phase; options about that order (or naming
# an action for it) hold by construction; the others change how an action runs, which this
# project does not do yet.
_ORDER_OPTIONS = frozenset({"action-id", "always-before", "always-after", "new-login-after-action",
                            "record-stdout"})


def _with_action_options(ev, form, env):
    """(with-action-options {:always-before ... :action-id ...} body...)."""
    if len(form.items) < 2:
        raise PalletError("usage: (with-action-options {options} body...)", form.span)
    options = ev.eval(form.items[1], env)
    if options is not None and not isinstance(options, dict):
        raise PalletError("with-action-options takes a map of options first", span_of(form.items[1]))
    for key in options or {}:
        name = key.name if isinstance(key, Keyword) else str(key)
        if name not in _ORDER_OPTIONS:
            raise PalletError(f"with-action-options :{name} is a Pallet option not yet supported "
                              "here (supported: " + " ".join(":" + o for o in sorted(_ORDER_OPTIONS))
                              + ", which hold as actions run in the order they are recorded)",
                              span_of(form.items[1]))
    return _body(ev, form.items[2:], env)


def _plan_when(ev, form, env, negate=False):
    """(plan-when test body...): the body's actions when test holds, decided while planning
    (Pallet could also decide on the node; a script value here is refused, not taken as true)."""
    what = form.items[0].name.rsplit("/", 1)[-1]
    if len(form.items) < 2:
        raise PalletError(f"usage: ({what} test body...)", form.span)
    test = ev.eval(form.items[1], env)
    if isinstance(test, ScriptForms):
        raise PalletError(f"{what} decides while planning, so its test is a value, not a script; "
                          "to decide on the node, give exec-checked-script an :unless test",
                          span_of(form.items[1]))
    holds = test is not None and test is not False
    return _body(ev, form.items[2:], env) if holds != negate else None


def _plan_when_not(ev, form, env):
    return _plan_when(ev, form, env, negate=True)


def _phase_context(ev, form, env):
    """(phase-context name {event} body...): the body; the context named Pallet's logs."""
    if len(form.items) < 3:
        raise PalletError("usage: (phase-context name {event} body...)", form.span)
    ev.eval(form.items[2], env)
    return _body(ev, form.items[3:], env)


def _with_source_line_comments(ev, form, env):
    """(with-source-line-comments flag body...): the body. Script text here never carries
    source-line comments (bundles name each action's place in their own comments)."""
    if len(form.items) < 2:
        raise PalletError("usage: (with-source-line-comments flag body...)", form.span)
    ev.eval(form.items[1], env)
    return _body(ev, form.items[2:], env)


def _fragment(ev, form, env):
    """(fragment forms...): a script value, as (script ...) makes (Pallet's fragment was a
    script without source-line comments)."""
    return ScriptForms(tuple(form.items[1:]), ev.script_resolver(env))


def _defscript(ev, form, env):
    """(defscript name "doc"? [args]) in spec code: a script function (pallet.script), called
    in scripts as (~name args...), with the implementations defimpl adds."""
    items = form.items[1:]
    if not items or not isinstance(items[0], Symbol) or not isinstance(items[-1], VectorForm):
        raise PalletError("usage: (defscript name \"doc\"? [args])", form.span)
    name = items[0]
    value = SpecScriptFn(name.name, form, [], name.span)
    (env.ns.env if env.ns else env).vars[name.name] = value
    return value


def _defimpl(ev, form, env):
    """(defimpl name specialisers [args] body...) in spec code: an implementation of a
    defscript; `~` in the body reaches the spec values where it is written."""
    if len(form.items) < 4:
        raise PalletError("usage: (defimpl name :default [args] body...)", form.span)
    fn = ev.eval(form.items[1], env)
    if not isinstance(fn, SpecScriptFn):
        raise PalletError(f"defimpl: {show(form.items[1])} is not a script function "
                          "(defscript)", span_of(form.items[1]))
    fn.impls.append((form, ev.script_resolver(env)))
    return fn


def _assert(ev, form, env):
    """(assert test "message"?): a located error when the test does not hold."""
    if len(form.items) not in (2, 3):
        raise PalletError("usage: (assert test \"message\"?)", form.span)
    value = ev.eval(form.items[1], env)
    if value is None or value is False:
        message = f"assertion failed: {show(form.items[1])}"
        if len(form.items) == 3:
            message = f"{str_of(ev.eval(form.items[2], env))} (assertion failed: {show(form.items[1])})"
        raise PalletError(message, form.span)
    return None


def _letfn(ev, form, env):
    """(letfn [(f [x] ...) (g [y] ...)] body...): local functions that may call each other."""
    if len(form.items) < 2 or not isinstance(form.items[1], VectorForm):
        raise PalletError("usage: (letfn [(name [args] body...) ...] body...)", form.span)
    inner = env.child()
    for spec in form.items[1].items:
        if not (isinstance(spec, ListForm) and spec.items and isinstance(spec.items[0], Symbol)):
            raise PalletError("letfn binds (name [args] body...) forms", span_of(spec))
        inner.vars[spec.items[0].name] = _fn_from(ev, spec, inner, tuple(spec.items[1:]), "fn",
                                                  spec.items[0].name)
    return _body(ev, form.items[2:], inner)


class Macro:
    """A macro: a function of the forms of its call, whose result is evaluated in their place
    (made with defmacro; syntax-quote builds the result)."""

    def __init__(self, fn):
        self.fn = fn
        self.name = fn.name

    def describe(self) -> str:
        return f"the macro {self.name}"


def _defmacro(ev, form, env):
    """(defmacro name "doc"? [args] body...): args are bound to the call's forms (as data),
    and the body's value, a form, is evaluated where the call was."""
    items = form.items[1:]
    if not items or not isinstance(items[0], Symbol):
        raise PalletError("usage: (defmacro name [args] body...)", form.span)
    fn = _fn_from(ev, form, env, tuple(items[1:]), "fn", items[0].name)
    macro = Macro(fn)
    (env.ns.env if env.ns else env).vars[items[0].name] = macro
    return macro


def expand(ev, macro: Macro, form: ListForm, env):
    """The form a macro call stands for: its arguments as data in, a form out (with the
    call's place, so that errors inside point at the call)."""
    args = [_quoted(f) for f in form.items[1:]]
    result = ev.call_fn(macro.fn, args, form.span, form)
    return _as_form(result, form.span)


# Forms whose argument at these places is a vector of bindings or parameters: in data, lists
# and vectors are one type, so a macro's result gets its vectors back there.
_VECTOR_PLACES = {"let": (1,), "for": (1,), "doseq": (1,), "if-let": (1,), "when-let": (1,),
                  "letfn": (1,), "fn": (1, 2), "defn": (2, 3, 4), "defn-": (2, 3, 4),
                  "defplan": (2, 3, 4), "def-crate-fn": (2, 3, 4), "defmacro": (2, 3, 4)}


def _as_form(value: Any, span, vector: bool = False):
    """Data (as syntax-quote and quote make it) back as a form to evaluate. A sequence is a
    call when it starts with a symbol, a keyword or a list, else a vector; and a vector where
    a form takes bindings or parameters."""
    if isinstance(value, (Symbol, Keyword)):
        return value if value.span is not None else type(value)(value.name, span)
    if isinstance(value, tuple):
        head = value[0] if value else None
        places = _VECTOR_PLACES.get(head.name, ()) if isinstance(head, Symbol) else ()
        items = tuple(_as_form(v, span, i in places) for i, v in enumerate(value))
        if vector or not isinstance(head, (Symbol, Keyword, tuple)):
            return VectorForm(items, span)
        return ListForm(items, span)
    if isinstance(value, dict):
        return MapForm(tuple(_as_form(x, span) for kv in value.items() for x in kv), span)
    if isinstance(value, frozenset):
        from pallet.grammar.forms import SetForm
        return SetForm(tuple(_as_form(v, span) for v in sorted(value, key=repr)), span)
    if isinstance(value, (ListForm, VectorForm, MapForm, Atom)):
        return value
    return Atom(value, span)


def _phase_fn_06(ev, form, env):
    """Pallet 0.6's (phase-fn a b (c x)): a symbol alone in the body is a phase function to
    call, as Pallet threaded the session through it."""
    body = tuple(ListForm((f,), f.span) if isinstance(f, Symbol) else f for f in form.items[1:])
    return PhaseFn(body, env, form.span)


def _def_phase_fn(ev, form, env):
    """Pallet 0.6's (def-phase-fn name "doc"? [args] body...): a crate function."""
    return _def_crate_fn(ev, form, env)


SPECIAL_FORMS = {
    "with-action-options": _with_action_options, "plan-when": _plan_when,
    "plan-when-not": _plan_when_not, "phase-context": _phase_context,
    "with-source-line-comments": _with_source_line_comments, "fragment": _fragment,
    "defscript": _defscript, "defimpl": _defimpl, "assert": _assert, "letfn": _letfn,
    "defmacro": _defmacro,
    "pallet.phase/phase-fn": _phase_fn_06, "pallet.extensions/def-phase-fn": _def_phase_fn,
}
