"""Failing with a located error: fail, check-option, ex-info and throw."""
from __future__ import annotations

from pallet.errors import PalletError
from pallet.grammar.forms import Keyword, span_of

from ..values import ArgError
from .printing import ExInfo, describe, pr_str, str_of, text_of, truthy
from .registry import core
from .format import _format_text


# ---- errors -------------------------------------------------------------------------------------


@core("fail", contextual=True)
def _fail(ev, form, message, *args):
    text = _format_text(ev, form, message, *args) if args else text_of(ev, message, 0)
    raise PalletError(text, span_of(form))


@core("check-option", contextual=True)
def _check_option(ev, form, option, value, pred, description):
    """(check-option :version version integer? "a major version such as 17"): the value when
    it is nil (not given) or satisfies pred; else a compile error, `crate/fn: :version is a
    major version such as 17, not "x"`, located at the option's value in the call of the
    crate function (or at the call, when the options were not written in it)."""
    if not isinstance(option, Keyword):
        raise ArgError(f"the option's name is a keyword, such as :version, not {describe(option)}", 0)
    if value is None or truthy(ev.apply(pred, [value], form)):
        return value
    where = span_of(form)
    prefix = ""
    if ev.crate_calls:
        qualified, call = ev.crate_calls[-1]
        prefix = f"{qualified}: "
        if call is not None:
            where = span_of(call) or where
            items = call.items
            for i in range(len(items) - 2, 0, -1):
                if items[i] == option:
                    where = span_of(items[i + 1]) or where
                    break
    raise PalletError(f"{prefix}{option} is {str_of(description)}, not {pr_str(value)}", where)


@core("ex-info")
def _ex_info(message, data=None):
    return ExInfo(str_of(message), data)


@core("ex-message")
def _ex_message(e):
    return e.message if isinstance(e, ExInfo) else None


@core("ex-data")
def _ex_data(e):
    return e.data if isinstance(e, ExInfo) else None


@core("throw", contextual=True)
def _throw(ev, form, e):
    if isinstance(e, ExInfo):
        text = e.message
        if e.data:
            text += " " + pr_str(e.data)
    elif type(e) is str:
        text = e
    else:
        raise ArgError(f"throws an (ex-info ...) or a string, got {describe(e)}", 0)
    raise PalletError(text, span_of(form))
