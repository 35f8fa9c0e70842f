"""The bash and POSIX sh emitter: script AST -> text.

Quoting lives here and nowhere else: `quote_literal` for text that must arrive unchanged,
double-quoted words for text with expansions. Every statement renders to a list of lines so
that compound statements nest inside pipelines, && chains and conditions.
"""
from __future__ import annotations

import re

from pallet.errors import PalletError

from . import ast as A

_SAFE = re.compile(r"[A-Za-z0-9_./:@%+,=-]+\Z")
_EXPANSION_LOOKALIKE = re.compile(r"[$`\\]")
_RESERVED = {"!", "{", "}", "case", "do", "done", "elif", "else", "esac", "fi", "for", "function",
             "if", "in", "select", "then", "until", "while", "time", "[[", "]]", "coproc"}
INDENT = "  "
# `local` is outside POSIX, but dash, busybox ash, mksh and bash-as-sh all have it.
SH_LOCAL_DIRECTIVE = "# shellcheck disable=SC3043  # 'local' exists in every sh Pallet targets"


def quote_literal(text: str, command_name: bool = False) -> str:
    """One shell word that is exactly `text` after the shell's quote removal."""
    # Reserved words are quoted everywhere: as arguments they are harmless, but shellcheck
    # reads `printf '%s\n' done` as a misplaced `done` (SC1010).
    if text and _SAFE.match(text) and text not in _RESERVED and not (command_name and "=" in text):
        return text
    if "'" not in text and not _EXPANSION_LOOKALIKE.search(text):
        return "'" + text + "'"
    # Double quotes with every special character escaped: exact too, and shellcheck does not
    # mistake a literal `$x` for a forgotten expansion as it does inside single quotes.
    return '"' + _dq_escape(text) + '"'


def _dq_escape(text: str) -> str:
    return re.sub(r'([$`"\\])', r"\\\1", text)


_FUNC_LINES: dict[tuple[int, str], tuple[A.FuncDef, list[str], bool]] = {}


class PosixEmitter:
    def __init__(self, shell: str):
        assert shell in ("bash", "sh")
        self.shell = shell
        self.uses_local = False

    # ---- words ------------------------------------------------------------------------------

    def word(self, word: A.Word, command_name: bool = False, joined: bool = False) -> str:
        """`joined`: the word is one string, so `& rest` arguments join with spaces."""
        text = word.literal
        if text is not None:
            return quote_literal(text, command_name)
        out: list[str] = []
        quoted: list[str] = []  # the run of parts inside one pair of double quotes

        def close():
            if quoted:
                out.append('"' + "".join(quoted) + '"')
                quoted.clear()

        for part in word.parts:
            if isinstance(part, A.RawPart):
                close()
                out.append(part.text)
            else:
                quoted.append(self._in_dq(part, joined or len(word.parts) > 1))
        close()
        return "".join(out)

    def _in_dq(self, part: A.Part, joined: bool = False) -> str:
        """A part as it is written between double quotes."""
        if isinstance(part, A.Lit):
            return _dq_escape(part.text)
        if isinstance(part, A.Var):
            if part.op is None:
                return "${" + part.name + "}"
            # Inside "${x-word}" nested quotes are read differently by each shell; escaping
            # the double-quote specials and `}` is read the same by bash and dash.
            # A lone single quote there makes bash look for its mate, so it sits in "'".
            arg = "".join(_dq_escape(p.text).replace("}", "\\}").replace("'", "\"'\"")
                          if isinstance(p, A.Lit)
                          else p.text if isinstance(p, A.RawPart) else self._in_dq(p)
                          for p in part.arg.parts)
            return "${" + part.name + A.VAR_OPS[part.op] + arg + "}"
        if isinstance(part, A.CmdSub):
            lines = self.block_lines(part.body)
            inner = lines[0] if len(lines) == 1 else "\n" + "\n".join(lines) + "\n"
            return "$(" + inner + ")"
        if isinstance(part, A.Arith):
            return "$((" + self.arith(part.expr) + "))"
        if isinstance(part, A.ArrayRef):
            return "${" + part.name + "[" + self.arith(part.index) + "]}"
        if isinstance(part, A.ArrayAll):
            return "${" + part.name + "[@]}"
        if isinstance(part, A.AllArgs):
            return "$*" if joined else "$@"
        if isinstance(part, A.MapRef):
            return "${" + part.name + "[" + self._key(part.key, in_dq=True) + "]}"
        raise TypeError(part)

    def arith(self, expr: A.ArithExpr, nested: bool = False) -> str:
        if isinstance(expr, A.ArithNum):
            return str(expr.value) if expr.value >= 0 or not nested else f"({expr.value})"
        if isinstance(expr, A.ArithVar):
            return expr.name
        if len(expr.operands) == 1:
            inner = self.arith(expr.operands[0], nested=True)
            # `--x` would be bash's pre-decrement (and undefined in POSIX sh): `-(-x)`.
            return "-(" + inner + ")" if inner.startswith("-") else "-" + inner
        text = f" {expr.op} ".join(self.arith(o, nested=True) for o in expr.operands)
        return f"({text})" if nested else text

    # ---- statements -------------------------------------------------------------------------

    def block_lines(self, block: A.Block) -> list[str]:
        lines: list[str] = []
        for stmt in block.stmts:
            lines.extend(self.stmt(stmt))
        return lines

    def body(self, block: A.Block) -> list[str]:
        """An indented body; a shell body may not be empty, so it says `:` then."""
        return _indent(self.block_lines(block) or [":"])

    def stmt(self, s: A.Stmt) -> list[str]:
        method = getattr(self, "_" + type(s).__name__)
        return method(s)

    def _Command(self, s: A.Command) -> list[str]:
        words = [self.word(s.words[0], command_name=True)] + [self.word(w) for w in s.words[1:]]
        if s.external:  # the program, not the script's function of that name
            words.insert(0, "command")
        return [" ".join(words + self._redirects(s.redirects))]

    def _redirects(self, redirects: tuple[A.Redirect, ...]) -> list[str]:
        return [r.op if r.target is None else f"{r.op} {self.word(r.target)}" for r in redirects]

    def _Test(self, s: A.Test) -> list[str]:
        args = [self.word(w) for w in s.args]
        if len(args) == 1:
            return [f"[ {s.op} {args[0]} ]"]
        return [f"[ {args[0]} {s.op} {args[1]} ]"]

    def _Not(self, s: A.Not) -> list[str]:
        # `! a && b` negates `a` alone, and `! ! a` is not POSIX: group those bodies.
        return _prefix("! ", self._compound_item(s.body, group=(A.AndOr, A.Not)))

    def _AndOr(self, s: A.AndOr) -> list[str]:
        # && and || have equal precedence in the shell: a nested chain of the other kind
        # is grouped, or `a && (b || c)` would be read as `(a && b) || c`.
        items = [self._compound_item(i, group=(A.AndOr,) if _other_chain(i, s.op) else ())
                 for i in s.items]
        return _join_items(items, f" {s.op} ")

    def _Pipeline(self, s: A.Pipeline) -> list[str]:
        # `a && b | c` pipes only `b`, and `!` may only start a pipeline: group those.
        items = [self._compound_item(i, group=(A.AndOr, A.Not)) for i in s.items]
        if self.shell == "bash":
            cut_short = False  # whether the item after this one may end before its input does
            for n in range(len(s.items) - 2, -1, -1):
                # A reader that a later reader may cut short stops reading too.
                cut_short = cut_short or _may_stop_reading(s.items[n + 1])
                if cut_short:
                    items[n] = _sigpipe_ok(s.items[n], items[n])
        return _join_items(items, " | ")

    def _compound_item(self, s: A.Stmt, group: tuple[type, ...] = ()) -> list[str]:
        """A statement that must be one command (in a chain, a pipeline, a condition)."""
        # A sequence inside && or | must be one command: group it.
        if isinstance(s, A.Block):
            if len(s.stmts) == 1:
                return self._compound_item(s.stmts[0], group)
            return self._Group(A.Group(s))
        # Assignments and definitions are grouped for readability; a heredoc or multi-line
        # raw text because text after its last line would land in the heredoc's delimiter
        # line or the raw text.
        if isinstance(s, A.Heredoc):
            lines = self.stmt(s)
            return lines if len(lines) == 1 else ["{", *_indent(lines), "}"]
        if (isinstance(s, (A.Assign, A.ArrayAssign, A.FuncDef, *group))
                or (isinstance(s, A.Raw) and "\n" in s.text)):
            lines = self.stmt(s)
            if len(lines) == 1 and not isinstance(lines[0], _Verbatim):
                return ["{ " + lines[0] + "; }"]
            return ["{", *_indent(lines), "}"]
        return self.stmt(s)

    def _Block(self, s: A.Block) -> list[str]:
        return self.block_lines(s)

    def _Group(self, s: A.Group) -> list[str]:
        return ["{", *self.body(s.body), "}"]

    def _If(self, s: A.If) -> list[str]:
        lines = _wrap("if ", self._compound_item(s.cond), "; then")
        lines += self.body(s.then)
        else_ = s.else_
        while else_ is not None:
            if len(else_.stmts) == 1 and isinstance(else_.stmts[0], A.If):
                nested = else_.stmts[0]
                lines += _wrap("elif ", self._compound_item(nested.cond), "; then")
                lines += self.body(nested.then)
                else_ = nested.else_
            else:
                lines += ["else", *self.body(else_)]
                break
        return lines + ["fi"]

    def _While(self, s: A.While) -> list[str]:
        return _wrap("while ", self._compound_item(s.cond), "; do") + self.body(s.body) + ["done"]

    def _For(self, s: A.For) -> list[str]:
        items = " ".join(self.word(w) for w in s.items)
        head = f"for {s.var} in {items}; do" if items else f"for {s.var} in; do"
        return [head, *self.body(s.body), "done"]

    def _ForLines(self, s: A.ForLines) -> list[str]:
        # The output is taken first (set -e sees a failure), then read line by line in this
        # shell (a pipe into `while` would run the body in a subshell).
        lines_var = f"{s.var}_lines"
        capture = self.word(A.Word((A.CmdSub(s.command),)))
        # Read from descriptor 3, so that a command in the body reading its standard input
        # does not eat the lines.
        return [f"{lines_var}={capture}",
                f'if [ -n "${{{lines_var}}}" ]; then',
                *_indent([f"while IFS= read -r {s.var} <&3; do", *self.body(s.body),
                          "done 3<<EOF"]),
                _Verbatim(f"${{{lines_var}}}"), _Verbatim("EOF"),
                "fi"]

    def _key(self, key: A.Word, in_dq: bool = False) -> str:
        """A map subscript. A literal key is single-quoted (a `'` as '\\''), which bash
        reads the same inside "${m[...]}", where a double-quoted key holding `}` would end
        the expansion; there a `"` is written '\\"' so that it does not end the outer
        quotes. A bare @ or * would mean every value."""
        text = key.literal
        if text is None:
            return self.word(key)
        if _SAFE.match(text) and text != "@":
            return text
        quoted = "'" + text.replace("'", "'\\''") + "'"
        return quoted.replace('"', "'\\\"'") if in_dq else quoted

    def _MapAssign(self, s: A.MapAssign) -> list[str]:
        flag = "local -A" if s.local else "declare -gA" if s.in_function else "declare -A"
        # One assignment per pair: inside declare's compound (...) bash mangles some bytes
        # (a DEL arrives with a \x01 before it).
        return [f"{flag} {s.name}=()",
                *(f"{s.name}[{self._key(k)}]={self.word(v)}" for k, v in s.pairs)]

    def _MapSet(self, s: A.MapSet) -> list[str]:
        return [f"{s.name}[{self._key(s.key)}]={self.word(s.value)}"]

    def _Alias(self, s: A.Alias) -> list[str]:
        lines = self._compound_item(s.command)
        if len(lines) != 1:
            raise PalletError("alias takes one command on one line", None)
        if _SAFE.match(s.name):
            return [f"alias {s.name}={quote_literal(lines[0])}"]
        return [f"alias {quote_literal(s.name + '=' + lines[0])}"]

    def _Case(self, s: A.Case) -> list[str]:
        lines = [f"case {self.word(s.subject)} in"]
        for clause in s.clauses:
            pattern = "|".join(self.word(p) for p in clause.patterns) if clause.patterns else "*"
            lines.append(f"{INDENT}{pattern})")
            lines += _indent(self.body(clause.body))
            lines.append(f"{INDENT}{INDENT};;")
        return lines + ["esac"]

    def _Assign(self, s: A.Assign) -> list[str]:
        if s.kind == "local":
            self.uses_local = True
        prefix = {"local": "local ", "export": "export "}.get(s.kind, "")
        if s.value is None:
            return [f"{prefix}{s.name}"]
        value = self.word(s.value)
        if prefix and any(isinstance(p, A.CmdSub) for p in s.value.parts):
            # Declared apart so that a failing command is not masked (shellcheck SC2155).
            return [f"{prefix}{s.name}", f"{s.name}={value}"]
        return [f"{prefix}{s.name}={value}"]

    def _ArrayAssign(self, s: A.ArrayAssign) -> list[str]:
        return [f"{s.name}=(" + " ".join(self.word(w) for w in s.items) + ")"]

    def _ArraySet(self, s: A.ArraySet) -> list[str]:
        return [f"{s.name}[{self.arith(s.index)}]={self.word(s.value)}"]

    def hoisted(self, s: A.FuncDef) -> list[str]:
        # Hoisted library functions are the same objects in every bundle (Lowering caches
        # them per implementation and target), so their text is made once.
        key = (id(s), self.shell)
        cached = _FUNC_LINES.get(key)
        if cached is not None and cached[0] is s:
            self.uses_local = self.uses_local or cached[2]
            return cached[1]
        uses_local, self.uses_local = self.uses_local, False
        lines = self._FuncDef(s)
        _FUNC_LINES[key] = (s, lines, self.uses_local)
        self.uses_local = self.uses_local or uses_local
        return lines

    def _FuncDef(self, s: A.FuncDef) -> list[str]:
        params = []
        for i, name in enumerate(s.params, start=1):
            self.uses_local = True
            params.append(f'local {name}="${{{i}}}"')
        if s.rest is not None and s.params:
            params.append(f"shift {len(s.params)}")
        inner = params + self.block_lines(s.body)
        return [f"{s.name}() {{", *_indent(inner or [":"]), "}"]

    def _Return(self, s: A.Return) -> list[str]:
        return ["return" if s.value is None else f"return {self.word(s.value)}"]

    def _Print(self, s: A.Print) -> list[str]:
        fmt = "'%s\\n'" if s.newline else "'%s'"
        redirects = self._redirects(s.redirects)
        if not s.words:
            return [" ".join(["printf '\\n'" if s.newline else ":", *redirects])]
        parts: list[A.Part] = []
        for i, w in enumerate(s.words):
            if i:
                parts.append(A.Lit(" "))
            parts.extend(w.parts)
        return [" ".join([f"printf {fmt} {self.word(A.Word(tuple(parts)), joined=True)}", *redirects])]

    def _Heredoc(self, s: A.Heredoc) -> list[str]:
        op = ">>" if s.append else ">"
        path = self.word(s.path)
        if s.content == "":
            return [f": {op} {path}"]
        if not s.content.endswith("\n"):
            # A heredoc always ends in a newline; exact bytes without one need printf.
            return [f"printf '%s' {quote_literal(s.content)} {op} {path}"]
        lines = s.content[:-1].split("\n")
        delim = "EOF"
        n = 0
        while delim in lines:
            n += 1
            delim = f"EOF_{n}"
        # Heredoc lines are not indented: the indentation would become part of the content.
        return [f"cat {op} {path} <<'{delim}'", *[_Verbatim(line) for line in lines],
                _Verbatim(delim)]

    def _Raw(self, s: A.Raw) -> list[str]:
        return [_Verbatim(line) for line in s.text.split("\n")]

    def _Comment(self, s: A.Comment) -> list[str]:
        return ["# " + line if line else "#" for line in s.text.split("\n")]


class _Verbatim(str):
    """A line that must not be indented (heredoc bodies, raw text)."""


def _other_chain(s: A.Stmt, op: str) -> bool:
    while isinstance(s, A.Block) and len(s.stmts) == 1:
        s = s.stmts[0]
    return isinstance(s, A.AndOr) and s.op != op


def _indent(lines: list[str]) -> list[str]:
    return [line if isinstance(line, _Verbatim) or not line else INDENT + line for line in lines]


def _indent_by(prefix: str, lines: list[str]) -> list[str]:
    """`_indent` as often as `prefix` has INDENTs, at once."""
    if not prefix:
        return lines
    return [line if isinstance(line, _Verbatim) or not line else prefix + line for line in lines]


def _prefix(prefix: str, lines: list[str]) -> list[str]:
    return [prefix + lines[0], *lines[1:]]


def _wrap(prefix: str, lines: list[str], suffix: str) -> list[str]:
    lines = _prefix(prefix, lines)
    lines[-1] = lines[-1] + suffix
    return lines


# Programs that read their standard input to its end (or fail): the program writing into them
# cannot be cut short by SIGPIPE while they succeed.
_READ_TO_END = {"cat", "cut", "sort", "uniq", "tr", "wc", "tee", "sha1sum", "sha256sum",
                "sha512sum", "md5sum", "base64", "gzip", "gunzip", "zcat", "xz", "bzip2", "tar",
                "xargs", "column", "paste", "rev", "od", "xxd", "cmp"}
_GREP_STOPS = re.compile(r"-[A-Za-z]*[qmlL]|--(quiet|silent|max-count|files-with)")


def _may_stop_reading(s: A.Stmt) -> bool:
    """Whether `s`, reading a pipe, may finish with success before its input ends (`head`,
    `grep -q`, a program that reads nothing): then the writer may die of SIGPIPE."""
    if isinstance(s, (A.While, A.ForLines)):
        return any(isinstance(n, (A.Return, A.Raw)) for n in A.walk(s))
    if not isinstance(s, A.Command) or s.function_call or s.words[0].literal is None:
        return True
    name, args = s.words[0].literal, [w.literal for w in s.words[1:]]
    if name in ("grep", "sed"):
        if any(a is None for a in args):
            return True
        if name == "grep":
            return any(_GREP_STOPS.match(a) for a in args if a.startswith("-"))
        return any("q" in a for a in args)
    return name not in _READ_TO_END


def _sigpipe_ok(s: A.Stmt, lines: list[str]) -> list[str]:
    """With pipefail, a program writing into a reader that has finished is killed by SIGPIPE
    (status 141), and the pipeline fails or not as the two processes race: the writer may
    end so; any other status still fails. Only a program: a function on the left of `||`
    would run with errexit suspended."""
    if (isinstance(s, A.Print) or (isinstance(s, A.Command) and not s.function_call)) \
            and len(lines) == 1:
        return ["{ " + lines[0] + ' || [ "$?" -eq 141 ]; }']
    return lines


def _join_items(items: list[list[str]], sep: str) -> list[str]:
    out = list(items[0])
    for item in items[1:]:
        out[-1] = out[-1] + sep + item[0]
        out.extend(item[1:])
    return out


def emit_posix(script: A.Script, shell: str = "bash", header: bool = True) -> str:
    emitter = PosixEmitter(shell)
    body: list[str] = []
    for fn in script.functions:
        body += emitter.hoisted(fn)
    body += emitter.block_lines(script.body)
    head: list[str] = []
    if header:
        if shell == "bash":
            head = ["#!/usr/bin/env bash", "set -euo pipefail"]
        else:
            head = ["#!/bin/sh"]
            if emitter.uses_local:
                head.append(SH_LOCAL_DIRECTIVE)
            head.append("set -eu")
    return "\n".join(head + body) + "\n"
