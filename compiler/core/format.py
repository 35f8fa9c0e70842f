"""`format`, after java.util.Formatter."""
from __future__ import annotations

import math
import re
from decimal import Decimal, ROUND_HALF_UP, localcontext

from ..values import ArgError
from .printing import describe, is_int, is_number, str_of, text_of
from .registry import _string, core


# ---- format -------------------------------------------------------------------------------------

_SPEC = re.compile(r"%(?:([0-9]+)\$|(<))?([-#+ 0,(]*)([0-9]+)?(?:\.([0-9]+))?([a-zA-Z%])")


def _pad(text: str, width: int | None, left: bool) -> str:
    if width is None or len(text) >= width:
        return text
    return text.ljust(width) if left else text.rjust(width)


def _signed(negative: bool, body: str, flags: str, width: int | None, prefix: str = "") -> str:
    """Sign, parentheses, zero padding and justification for a number's digits."""
    if negative:
        sign, suffix = ("(", ")") if "(" in flags else ("-", "")
    else:
        sign, suffix = ("+" if "+" in flags else " " if " " in flags else ""), ""
    sign += prefix
    if "0" in flags and "-" not in flags and width is not None:
        body = body.rjust(width - len(sign) - len(suffix), "0")
    return _pad(sign + body + suffix, width, "-" in flags)


def _decimal(x) -> Decimal:
    return Decimal(repr(x)) if type(x) is float else Decimal(x)


def _group(digits: str, flags: str) -> str:
    """Thousands separators on the integer part of a plain decimal string."""
    if "," not in flags:
        return digits
    whole, dot, frac = digits.partition(".")
    return f"{int(whole):,}" + dot + frac


def _fixed(d: Decimal, precision: int) -> str:
    with localcontext() as ctx:
        ctx.prec = max(28, d.adjusted() + precision + 2)
        q = d.quantize(Decimal(1).scaleb(-precision), rounding=ROUND_HALF_UP)
    return f"{q:f}"


def _scientific(d: Decimal, precision: int) -> str:
    if d == 0:
        mantissa, exp = "0" + ("." + "0" * precision if precision else ""), 0
    else:
        with localcontext() as ctx:
            ctx.prec = precision + 1
            ctx.rounding = ROUND_HALF_UP
            r = ctx.plus(d)
        exp = r.adjusted()
        mantissa = _fixed(r.scaleb(-exp), precision)
    return f"{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _float_conversion(conv: str, x, flags: str, width, precision) -> str:
    if type(x) is float and (x != x or x in (math.inf, -math.inf)):
        text = "NaN" if x != x else "Infinity"
        neg = x == -math.inf
        return _signed(neg, text, flags.replace("0", ""), width)
    d = _decimal(x)
    negative = d.is_signed()
    d = abs(d)
    p = 6 if precision is None else precision
    if conv == "f":
        body = _group(_fixed(d, p), flags)
    elif conv == "e":
        body = _scientific(d, p)
    else:  # g, as Java: scientific outside 10^-4 .. 10^precision, never trailing-zero trimmed
        p = 1 if p == 0 else p
        if d == 0:
            body = _fixed(d, p - 1)
        else:
            with localcontext() as ctx:
                ctx.prec = p
                ctx.rounding = ROUND_HALF_UP
                r = ctx.plus(d)
            if Decimal("0.0001") <= r < Decimal(10) ** p:
                body = _group(_fixed(d, max(p - 1 - r.adjusted(), 0)), flags)
            else:
                body = _scientific(d, p - 1)
    return _signed(negative, body, flags, width)


def _format(fmt, *args, ev=None) -> str:
    """java.util.Formatter's format. With `ev` (the language's format), %s of a script is its
    text and %s of a value that is not data is an error; without, a message's best text."""
    _string(fmt, 0)
    out: list[str] = []
    pos = 0
    ordinary = 0
    last: int | None = None
    for m in re.finditer("%", fmt):
        if m.start() < pos:
            continue
        out.append(fmt[pos:m.start()])
        spec = _SPEC.match(fmt, m.start())
        if spec is None:
            rest = fmt[m.start():m.start() + 6]
            if m.start() == len(fmt) - 1:
                raise ArgError("the format ends with a lone %; write %% for a percent sign", 0)
            raise ArgError(f"bad format specifier {rest!r}", 0)
        pos = spec.end()
        explicit, relative, flags, width_s, prec_s, conv = spec.groups()
        width = int(width_s) if width_s else None
        precision = int(prec_s) if prec_s else None
        if conv == "%":
            out.append(_pad("%", width, "-" in flags))
            continue
        if conv == "n":
            out.append("\n")
            continue
        if explicit is not None:
            index = int(explicit) - 1
            if index < 0:
                raise ArgError(f"argument index {explicit}$ must be 1 or more", 0)
        elif relative:
            if last is None:
                raise ArgError("%< refers to the previous argument, but there is none", 0)
            index = last
        else:
            index = ordinary
            ordinary += 1
        if index >= len(args):
            raise ArgError(f"the format {spec.group()!r} needs argument {index + 1}, "
                           f"but {len(args)} {'was' if len(args) == 1 else 'were'} given", 0)
        last = index
        x = args[index]
        where = index + 1
        lower = conv.lower()
        if lower == "s":
            text = "null" if x is None else str_of(x) if ev is None else text_of(ev, x, where)
            if precision is not None:
                text = text[:precision]
            text = _pad(text, width, "-" in flags)
        elif lower == "b":
            text = "false" if x is None or x is False else "true"
            if precision is not None:
                text = text[:precision]
            text = _pad(text, width, "-" in flags)
        elif lower == "c":
            if type(x) is str and len(x) == 1:
                text = x
            elif is_int(x) and 0 <= x <= 0x10FFFF:
                text = chr(x)
            else:
                raise ArgError(f"{spec.group()} needs a one-character string or a code point, "
                               f"got {describe(x)}", where)
            text = _pad(text, width, "-" in flags)
        elif conv == "d":
            if not is_int(x):
                raise ArgError(f"{spec.group()} needs an integer, got {describe(x)}", where)
            text = _signed(x < 0, _group(str(abs(x)), flags), flags, width)
        elif lower in ("x", "o"):
            if not is_int(x):
                raise ArgError(f"{spec.group()} needs an integer, got {describe(x)}", where)
            n, negative = x, False
            if n < 0:
                if n >= -(1 << 63):
                    n += 1 << 64  # a Java long prints as its two's complement
                else:
                    n, negative = -n, True
            body = format(n, "x" if lower == "x" else "o")
            prefix = ("0x" if lower == "x" else "0") if "#" in flags else ""
            text = _signed(negative, body, flags.replace("+", "").replace(" ", "").replace(",", ""),
                           width, prefix)
        elif lower in ("f", "e", "g"):
            if not is_number(x):
                raise ArgError(f"{spec.group()} needs a number, got {describe(x)}", where)
            text = _float_conversion(lower, x, flags, width, precision)
        elif lower == "t":
            raise ArgError("date and time conversions (%t) are not supported", 0)
        else:
            raise ArgError(f"unknown conversion {spec.group()!r} in the format", 0)
        out.append(text.upper() if conv.isupper() else text)
    out.append(fmt[pos:])
    return "".join(out)


@core("format", contextual=True)
def _format_text(ev, form, fmt, *args):
    return _format(fmt, *args, ev=ev)
