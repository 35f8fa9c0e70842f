"""The PowerShell backend: script AST -> a .ps1 script for Windows PowerShell 5.1 and PowerShell 7.

Shell semantics this emitter keeps, and how:
- Every word is a string. A literal is a single-quoted literal (`ps_quote`); a word of several
  parts is one double-quoted string with backtick escapes (`"a${b}c"`).
- Exit status lives in `$LASTEXITCODE`, as native commands leave it; `return N` and a test used
  as a statement set it too. A command used as a condition runs through `Test-PalletCommand`,
  which passes its output on and answers with its status; `-and`/`-or` short-circuit.
- `$(...)` runs through `Invoke-PalletCapture`: every line the block writes (pipeline output and
  `[Console]::Out`) is collected in order and the final newlines are cut, as the shell does.
- Variables assigned in the script are PowerShell variables (renamed when they would clash with an
  automatic variable such as `$home` or with each other case-insensitively); a name the script
  never assigns is read from the environment, like a shell reads `$PATH`.
"""
from __future__ import annotations

import re
from contextlib import contextmanager

from pallet.errors import PalletError

from . import ast as A

_IND = "    "
_SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"  # PowerShell reads all of these as `'`
_DOUBLE_QUOTES = '"\u201c\u201d\u201e'  # ... and all of these as `"`
_DQ_ESCAPES = {"\n": "`n", "\r": "`r", "\t": "`t", "\0": "`0", "\a": "`a", "\b": "`b",
               "\f": "`f", "\v": "`v", "`": "``", "$": "`$",
               "#": "`#"}  # PowerShell needs no escape for `#`, but tree-sitter misreads it
# Bare words: only text the tokenizer cannot read as a number, keyword, operator or variable.
_BARE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_BARE_ARG = re.compile(r"[A-Za-z_/][A-Za-z0-9_./-]*")
_BARE_FLAG = re.compile(r"--?[A-Za-z][A-Za-z_-]*")  # passed as is to a native command
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYWORDS = frozenset("""begin break catch class clean configuration continue data define do
    dynamicparam else elseif end enum exit filter finally for foreach from function hidden if in
    inlinescript parallel param process return sequence static switch throw trap try until using
    var while workflow""".split())
# Automatic and preference variables a script must not assign, plus the helpers' own names.
_RESERVED = frozenset("""_ args consolefilename enabledexperimentalfeatures env error event
    eventargs eventsubscriber executioncontext false foreach home host input iscoreclr islinux
    ismacos iswindows lastexitcode matches myinvocation nestedpromptlevel null ofs pid profile
    psboundparameters pscmdlet pscommandpath psculture psdebugcontext psdefaultparametervalues
    psedition pshome psitem psscriptroot pssenderinfo psstyle psuiculture psversiontable pwd
    sender shellid stacktrace switch this true confirmpreference debugpreference
    erroractionpreference errorview formatenumerationlimit informationpreference
    outputencoding progresspreference psnativecommanduseerroractionpreference
    psnativecommandargumentpassing psmoduleautoloadingpreference verbosepreference
    warningpreference whatifpreference palletblock palletout palletbuffer""".split())
_FROM_HOST = ("HOME", "PWD")  # unassigned names PowerShell defines (Windows has no $env:HOME)
_REDIRECTS = {">": ">", ">>": ">>", "1>": ">", "1>>": ">>", "2>": "2>", "2>>": "2>>",
              "&>": "*>", "&>>": "*>>", "2>&1": "2>&1"}
_TO_STDERR = ("1>&2", ">&2")
_UNARY = ("-e", "-d", "-f", "-h", "-r", "-w", "-x", "-z", "-n")

_HELPERS = {
    "Test-PalletCommand": """\
function Test-PalletCommand([scriptblock]$PalletBlock) {
    # A command used as a condition, as in the shell: its output goes on, its exit status answers.
    $PSNativeCommandUseErrorActionPreference = $false
    $global:LASTEXITCODE = 0
    try {
        & $PalletBlock | ForEach-Object { [Console]::Out.Write([string]$_ + "`n") }
    } catch {
        return $false
    }
    return $LASTEXITCODE -eq 0
}""",
    "Invoke-PalletCapture": """\
function Invoke-PalletCapture([scriptblock]$PalletBlock) {
    # $(...): all the block writes, in order, as one string without its final newlines.
    $PalletOut = [Console]::Out
    $PalletBuffer = [System.IO.StringWriter]::new()
    [Console]::SetOut($PalletBuffer)
    try {
        & $PalletBlock | ForEach-Object { [Console]::Out.Write([string]$_ + "`n") }
    } finally {
        [Console]::SetOut($PalletOut)
    }
    return $PalletBuffer.ToString().TrimEnd([char]10)
}""",
}


def ps_quote(text: str) -> str:
    """`text` as one PowerShell string literal: single-quoted, every kind of single quote doubled.

    NUL is the one character a single-quoted literal cannot carry through parsers, so text with
    NUL becomes a double-quoted literal with backtick escapes instead."""
    if "\0" in text:
        return _dq_literal(text)
    return "'" + "".join(c + c if c in _SINGLE_QUOTES else c for c in text) + "'"


def _dq_text(text: str) -> str:
    """Literal text for the inside of a double-quoted string; control characters as escapes so
    the script stays one line per statement whatever the text holds."""
    out = []
    for c in text:
        if c in _DQ_ESCAPES:
            out.append(_DQ_ESCAPES[c])
        elif c in _DOUBLE_QUOTES:
            out.append("`" + c)
        elif ord(c) < 0x20 or c == "\x7f":
            out.append(f"$([char]0x{ord(c):02x})")  # `u{..} is PowerShell 7 only
        else:
            out.append(c)
    return "".join(out)


def _dq_literal(text: str) -> str:
    return '"' + _dq_text(text) + '"'


def _lit(text: str) -> str:
    """A literal as an expression: single-quoted, or double-quoted when it holds control
    characters (a raw newline inside quotes would not survive line-ending conversion)."""
    if any(ord(c) < 0x20 or c == "\x7f" for c in text):
        return _dq_literal(text)
    return ps_quote(text)


def _merge(parts: tuple[A.Part, ...] | list[A.Part]) -> list[A.Part]:
    """Adjacent literal parts as one."""
    out: list[A.Part] = []
    for p in parts:
        if isinstance(p, A.Lit) and out and isinstance(out[-1], A.Lit):
            out[-1] = A.Lit(out[-1].text + p.text)
        elif not (isinstance(p, A.Lit) and not p.text):
            out.append(p)
    return out


def _paren(expr: str) -> str:
    return f"({expr})"


def _assigned_names(script: A.Script) -> dict[str, str]:
    """Names the script assigns -> their PowerShell names, unique case-insensitively."""
    order: list[str] = []
    for node in A.walk(script):
        if isinstance(node, A.Assign) and not (node.kind == "export" and node.value is None):
            order.append(node.name)
        elif isinstance(node, (A.ArrayAssign, A.ArraySet, A.MapAssign, A.MapSet)):
            order.append(node.name)
        elif isinstance(node, A.ForLines):
            order += [node.var, node.var + "_lines"]
        elif isinstance(node, A.For):
            order.append(node.var)
        elif isinstance(node, A.FuncDef):
            order.extend(node.params + ((node.rest,) if node.rest else ()))
        elif (isinstance(node, A.Var) and not node.name.isdigit()
              and node.op in ("default-assign", "default-assign-value")):
            order.append(node.name)
    names: dict[str, str] = {}
    used: set[str] = set()
    for name in order:
        if name in names:
            continue
        if not _NAME.fullmatch(name):
            raise PalletError(f"invalid variable name for PowerShell: {name!r}")
        ps = name
        while ps.lower() in _RESERVED or ps.lower() in used:
            ps += "_"
        names[name] = ps
        used.add(ps.lower())
    return names


class _Emitter:
    def __init__(self, script: A.Script):
        self.names = _assigned_names(script)
        self.functions = {n.name for n in A.walk(script) if isinstance(n, A.FuncDef)}
        self.helpers: set[str] = set()
        self.file_redirects = False
        self.locals: set[str] | None = None  # inside a function: its parameters and locals
        self.pipe_print = False  # Print feeds the next pipeline stage instead of the console
        self.subshell = False  # inside $(...) or a pipeline stage: assignments stay there
        self.cond_depth = 0  # condition blocks (two scopes each) around the current statement
        self.ind = 0  # indent level of the statement being emitted
        self.tail: A.Stmt | None = None  # the last statement of the function being emitted
        self.rest: str | None = None  # the function's `& rest` variable, which AllArgs reads

    # ---- variables --------------------------------------------------------------------------

    def _ref(self, name: str) -> str:
        """The variable as an expression."""
        if name.isdigit():
            return "$PSCommandPath" if name == "0" else f"$args[{int(name) - 1}]"
        if name in self.names:
            return "$" + self.names[name]
        if not _NAME.fullmatch(name):
            raise PalletError(f"invalid variable name: {name!r}")
        return "$" + name if name in _FROM_HOST else "$env:" + name

    def _in_string(self, name: str) -> str:
        ref = self._ref(name)
        return "${" + ref[1:] + "}" if "[" not in ref else f"$({ref})"

    def _is_set(self, name: str) -> str:
        if name.isdigit():
            return "$true" if name == "0" else f"$args.Count -ge {name}"
        ref = self._ref(name)
        drive = "env:" + ref[5:] if ref.startswith("$env:") else "variable:" + ref[1:]
        return f"Test-Path {drive}"

    def _array(self, p: A.Part) -> str:
        """The variable holding the words of ArrayAll or AllArgs, as `$name`."""
        if isinstance(p, A.ArrayAll):  # an array is always the script's, never the environment's
            return "$" + self.names.get(p.name, p.name)
        return "$" + self.rest if self.rest else "$args"

    @contextmanager
    def _context(self, **state):
        saved = {k: getattr(self, k) for k in state}
        self.__dict__.update(state)
        try:
            yield
        finally:
            self.__dict__.update(saved)

    def _set(self, name: str, value: str, op: str = "=") -> str:
        """An assignment to the variable the shell would change. Inside a function a name that
        is not one of its locals is the script's (a shell function sets the global one); inside
        a condition's script block the statement's own scope is 2 scopes up per block."""
        ps = self.names.get(name)
        if ps is None:
            raise PalletError(f"cannot assign to {name!r}")
        local = self.locals is None or name in self.locals
        if self.subshell or local and self.cond_depth == 0:
            return f"${ps} {op} {value}"
        if self.locals is None or name not in self.locals:
            return f"$script:{ps} {op} {value}"
        value = f"${ps} + {value}" if op == "+=" else value
        return f"Set-Variable -Name {ps} -Scope {2 * self.cond_depth} -Value ({value})"

    def _var(self, v: A.Var) -> str:
        if v.op is None:
            return self._ref(v.name)
        if v.op not in A.VAR_OPS:
            raise PalletError(f"unknown variable operation {v.op!r}")
        ref, is_set = self._ref(v.name), self._is_set(v.name)
        if v.op.endswith("-value"):  # the ':' forms: empty counts as unset
            is_set = f"({is_set}) -and ('' -cne {ref})"
        arg = self.word(v.arg, "expr") if v.arg is not None else "''"
        if v.op.startswith("default-assign"):
            if v.name.isdigit():
                raise PalletError(f"cannot assign to positional parameter {v.name}")
            return f"$(if (-not ({is_set})) {{ {self._set(v.name, arg)} }}; {ref})"
        if v.op.startswith("default"):
            return f"$(if ({is_set}) {{ {ref} }} else {{ {arg} }})"
        if v.op.startswith("alternate"):
            return f"$(if ({is_set}) {{ {arg} }} else {{ '' }})"
        msg = f"({ps_quote(v.name + ': ')} + {arg})" if v.arg is not None else ps_quote(
            f"{v.name}: parameter {'null or ' if v.op.endswith('-value') else ''}not set")
        return f"$(if ({is_set}) {{ {ref} }} else {{ throw {msg} }})"

    # ---- words ------------------------------------------------------------------------------

    def word(self, w: A.Word, mode: str) -> str:
        """One word as PowerShell text. mode: "expr" (an expression), "arg" (an argument of a
        cmdlet or script function) or "native" (an argument of a native command)."""
        parts = _merge(w.parts)
        if not parts:
            return "''"
        if len(parts) > 1:
            return self._dq(parts)
        p = parts[0]
        if isinstance(p, A.Lit):
            if mode != "expr" and (_BARE_ARG.fullmatch(p.text)
                                   or mode == "native" and _BARE_FLAG.fullmatch(p.text)):
                return p.text
            return _lit(p.text)
        if isinstance(p, (A.ArrayAll, A.AllArgs)):  # splatting: each element its own argument
            name = self._array(p)
            return "@" + name[1:] if mode != "expr" else f"({name} -join ' ')"
        if isinstance(p, A.Arith):  # a string, as every shell word is
            return f'"{self._part(p)}"'
        return self._part(p)

    def _part(self, p: A.Part) -> str:
        if isinstance(p, A.Var):
            return self._var(p)
        if isinstance(p, A.CmdSub):
            self.helpers.add("Invoke-PalletCapture")
            with self._context(pipe_print=False, subshell=True):
                return f"(Invoke-PalletCapture {self._braced(p.body.stmts)})"
        if isinstance(p, A.Arith):
            return f"$({self._arith(p.expr, top=True)})"
        if isinstance(p, A.ArrayRef):
            return f"{self._array(A.ArrayAll(p.name))}[{self._arith(p.index, top=True)}]"
        if isinstance(p, (A.ArrayAll, A.AllArgs)):
            return f"$({self._array(p)} -join ' ')"
        if isinstance(p, A.RawPart):
            return p.text
        if isinstance(p, A.Lit):
            return _lit(p.text)
        if isinstance(p, A.MapRef):
            return f"{self._ref(p.name)}[{self.word(p.key, 'expr')}]"
        raise PalletError(f"unknown word part {type(p).__name__}")

    def _dq(self, parts: list[A.Part]) -> str:
        return '"' + "".join(self._in_dq(p) for p in parts) + '"'

    def _in_dq(self, p: A.Part) -> str:
        """A part inside a double-quoted string."""
        if isinstance(p, A.Lit):
            return _dq_text(p.text)
        if isinstance(p, A.Var) and p.op is None:
            return self._in_string(p.name)
        if isinstance(p, A.RawPart):
            return p.text
        text = self._part(p)
        if text.startswith("$("):
            return text
        return "$" + text if text.startswith("(") else f"$({text})"  # (x) -> $(x)

    def _arith(self, e: A.ArithExpr, top: bool = False) -> str:
        """Integer arithmetic; `top`: the whole expression, so no parentheses around it."""
        if isinstance(e, A.ArithNum):
            return str(e.value) if e.value >= 0 or top else f"({e.value})"
        if isinstance(e, A.ArithVar):
            return "[long]" + self._ref(e.name)  # [long] so that strings add, not concatenate
        if not isinstance(e, A.ArithOp) or e.op not in ("+", "-", "*", "/", "%") or not e.operands:
            raise PalletError(f"unknown arithmetic {e!r}")
        ops = [self._arith(o) for o in e.operands]
        if len(ops) == 1:
            if e.op != "-":
                return ops[0]
            return f"-{ops[0]}" if top else f"(-{ops[0]})"  # never `--x`: a decrement
        acc = ops[0]
        for o in ops[1:]:
            if e.op == "/":  # integer division truncating toward zero; decimal keeps longs exact
                acc = f"[long][Math]::Truncate([decimal]{acc} / {o})"
            else:
                acc = f"{acc} {e.op} {o}"
        return acc if e.op == "/" or top else f"({acc})"

    def _items(self, words: tuple[A.Word, ...]) -> str:
        """A list of words as an array; `@(a; $b)` flattens spliced arrays, `,` would nest."""
        spliced = [w for w in words
                   if len(w.parts) == 1 and isinstance(w.parts[0], (A.ArrayAll, A.AllArgs))]
        if len(words) == 1 and spliced:
            return self._array(spliced[0].parts[0])
        if spliced:
            return "@(" + "; ".join(self._array(w.parts[0]) if w in spliced
                                    else self.word(w, "expr") for w in words) + ")"
        return "@(" + ", ".join(self.word(w, "expr") for w in words) + ")"

    # ---- conditions -------------------------------------------------------------------------

    def _test(self, t: A.Test) -> str:
        if t.op not in ("=", "!=", "-eq", "-ne", "-lt", "-gt", "-le", "-ge", *_UNARY):
            raise PalletError(f"unknown test {t.op!r}")
        if t.op in _UNARY:
            if len(t.args) != 1:
                raise PalletError(f"test {t.op} takes one argument")
            if t.op in ("-z", "-n"):
                empty = f"[string]::IsNullOrEmpty({self.word(t.args[0], 'expr')})"
                return empty if t.op == "-z" else "-not " + empty
            p = self.word(t.args[0], "arg")
            if t.op in ("-e", "-r"):  # for -r, existence is the portable approximation
                return f"Test-Path -LiteralPath {p}"
            if t.op in ("-d", "-f"):
                kind = "Container" if t.op == "-d" else "Leaf"
                return f"Test-Path -LiteralPath {p} -PathType {kind}"
            # the item's properties; Where-Object, because under strict mode a property of a
            # missing item ($null) is an error
            where = {"-h": "$_.LinkType -in 'SymbolicLink', 'Junction'",
                     "-w": "-not ($_.Attributes -band [System.IO.FileAttributes]::ReadOnly)",
                     "-x": "Get-Command -Name $_.FullName -CommandType Application "
                           "-ErrorAction SilentlyContinue"}[t.op]
            return (f"[bool](Get-Item -LiteralPath {p} -Force -ErrorAction SilentlyContinue | "
                    f"Where-Object {{ {where} }})")
        if len(t.args) != 2:
            raise PalletError(f"test {t.op} takes two arguments")
        a, b = (self.word(w, "expr") for w in t.args)
        if t.op in ("=", "!="):  # the shell compares strings case-sensitively
            return f"{a} {'-ceq' if t.op == '=' else '-cne'} {b}"
        a, b = (self._number(w) for w in t.args)
        return f"{a} {t.op} {b}"

    def _conds(self, op: str, items: tuple[A.Stmt, ...]) -> str:
        if op not in ("&&", "||"):
            raise PalletError(f"unknown list operator {op!r}")
        if len(items) == 1:
            return self.cond(items[0])
        return (" -and " if op == "&&" else " -or ").join(_paren(self.cond(i)) for i in items)

    def _number(self, w: A.Word) -> str:
        """A word as a [long]; a decimal literal is written as the number it is."""
        if w.literal is not None and re.fullmatch(r"-?(0|[1-9][0-9]{0,17})", w.literal):
            return w.literal
        return "[long]" + self.word(w, "expr")

    def cond(self, s: A.Stmt) -> str:
        """A statement as a boolean expression: tests directly, anything else by exit status."""
        if isinstance(s, A.Test):
            return self._test(s)
        if isinstance(s, A.Not):
            return "-not " + _paren(self.cond(s.body))
        if isinstance(s, A.AndOr):
            return self._conds(s.op, s.items)
        if isinstance(s, A.Command) and len(s.words) == 1 and not s.redirects:
            if s.words[0].literal in ("true", ":", "false"):  # no such commands on Windows
                return "$false" if s.words[0].literal == "false" else "$true"
        self.helpers.add("Test-PalletCommand")
        with self._context(pipe_print=False, cond_depth=self.cond_depth + 1):
            return f"Test-PalletCommand {self._braced((s,))}"

    # ---- statements -------------------------------------------------------------------------

    def _braced(self, stmts: tuple[A.Stmt, ...]) -> str:
        """A script block `{ ... }` at the current indent: one line when it is one simple line."""
        lines = self.block(stmts, self.ind + 1)
        while len(stmts) == 1 and isinstance(stmts[0], (A.Block, A.Group)):
            stmts = (stmts[0].body if isinstance(stmts[0], A.Group) else stmts[0]).stmts
        if all(line.lstrip().startswith("#") for line in lines):
            # an empty statement: parsers (tree-sitter's among them) want one in a script block
            lines.append(_IND * (self.ind + 1) + ";")
        inner = len(_IND) * (self.ind + 1)
        if (len(lines) == 1 and "\n" not in lines[0] and not lines[0][inner:].startswith("#")
                and not (len(stmts) == 1 and isinstance(stmts[0], A.Raw))):
            return "{ " + lines[0][inner:] + " }"
        return "{\n" + "\n".join(lines) + "\n" + _IND * self.ind + "}"

    def block(self, stmts: tuple[A.Stmt, ...], ind: int) -> list[str]:
        return [line for s in stmts for line in self.stmt(s, ind)]

    def _body(self, head: str, stmts: tuple[A.Stmt, ...], ind: int) -> list[str]:
        return [_IND * ind + head + " {", *self.block(stmts, ind + 1), _IND * ind + "}"]

    def stmt(self, s: A.Stmt, ind: int) -> list[str]:
        """The statement as lines indented `ind` levels (a line may hold a here-string)."""
        saved, self.ind = self.ind, ind
        try:
            return self._stmt(s, ind)
        finally:
            self.ind = saved

    def _stmt(self, s: A.Stmt, ind: int) -> list[str]:
        pad = _IND * ind
        if isinstance(s, (A.Block, A.Group)):
            return self.block((s.body if isinstance(s, A.Group) else s).stmts, ind)
        if isinstance(s, A.Command):
            return [pad + self._command(s)]
        if isinstance(s, (A.Pipeline, A.AndOr)) and len(s.items) == 1:
            return self.stmt(s.items[0], ind)
        if isinstance(s, A.Pipeline):
            return [pad + self._pipeline(s)]
        if isinstance(s, (A.Test, A.Not)):  # as a statement a test only sets the status
            return [pad + f"$global:LASTEXITCODE = if ({self.cond(s)}) {{ 0 }} else {{ 1 }}"]
        if isinstance(s, A.AndOr):  # `a && b`: b runs when a succeeds, a failing stops nothing
            first = self._conds(s.op, s.items[:-1])
            test = first if s.op == "&&" else f"-not ({first})"
            # a function's last statement gives its status, also when the chain stops early
            status = A.Raw(f"$global:LASTEXITCODE = {1 if s.op == '&&' else 0}")
            rest = A.Block((status,)) if s is self.tail else None
            return self._if(A.If(s, A.Block((s.items[-1],)), rest), ind, "if", test)
        if isinstance(s, A.If):
            return self._if(s, ind, "if")
        if isinstance(s, A.While):
            return self._body(f"while ({self.cond(s.cond)})", s.body.stmts, ind)
        if isinstance(s, A.For):
            if self.locals is not None:
                self.locals.add(s.var)
            head = f"foreach (${self.names[s.var]} in {self._items(s.items)})"
            return self._body(head, s.body.stmts, ind)
        if isinstance(s, A.Case):
            return self._case(s, ind)
        if isinstance(s, A.ForLines):
            if self.locals is not None:
                self.locals.update((s.var, s.var + "_lines"))
            lines_ref = "$" + self.names[s.var + "_lines"]
            capture = self._set(s.var + "_lines", self._part(A.CmdSub(s.command)))
            head = f"foreach (${self.names[s.var]} in ({lines_ref} -split '\\r?\\n'))"
            return [pad + capture, pad + f"if ('' -cne {lines_ref}) {{",
                    *self._body(head, s.body.stmts, ind + 1), pad + "}"]
        if isinstance(s, A.MapAssign):  # keys compare case-sensitively, as the shell's do
            if s.local and self.locals is not None:
                self.locals.add(s.name)
            new = self._set(s.name, "[System.Collections.Hashtable]::new([StringComparer]::Ordinal)")
            return [pad + new, *(pad + self._map_set(A.MapSet(s.name, k, v)) for k, v in s.pairs)]
        if isinstance(s, A.MapSet):
            return [pad + self._map_set(s)]
        if isinstance(s, A.Assign):
            return [pad + line for line in self._assign(s)]
        if isinstance(s, A.ArrayAssign):
            return [pad + self._set(s.name, self._items(s.items))]
        if isinstance(s, A.ArraySet):  # shell arrays grow on assignment; PowerShell's do not
            a, i = self._array(A.ArrayAll(s.name)), self._arith(s.index)
            grow = self._set(s.name, f"@('') * ({i} - {a}.Count + 1)", "+=")
            return [pad + f"if ({i} -ge {a}.Count) {{ {grow} }}",  # in place: any scope
                    pad + f"{a}[{self._arith(s.index, top=True)}] = {self.word(s.value, 'expr')}"]
        if isinstance(s, A.FuncDef):
            return self._funcdef(s, ind)
        if isinstance(s, A.Return):
            if s.value is None:
                return [pad + "return"]
            code = s.value.literal
            if code is None or not re.fullmatch(r"[0-9]{1,3}", code):
                code = f"[int]{self.word(s.value, 'expr')}"
            return [pad + f"$global:LASTEXITCODE = {code}", pad + "return"]
        if isinstance(s, A.Print):
            return [pad + self._print(s)]
        if isinstance(s, A.Heredoc):
            return [pad + self._heredoc(s)]
        if isinstance(s, A.Raw):
            return [pad + s.text]
        if isinstance(s, A.Comment):
            text = re.sub(r"[\x00-\x08\x0e-\x1f\x7f]", "?", s.text)  # keep the file text
            return [pad + ("# " + line).rstrip() for line in text.splitlines() or [""]]
        raise PalletError(f"PowerShell cannot express {type(s).__name__}")

    def _map_set(self, s: A.MapSet) -> str:  # in place: any scope
        return f"{self._ref(s.name)}[{self.word(s.key, 'expr')}] = {self.word(s.value, 'expr')}"

    def _if(self, s: A.If, ind: int, keyword: str, test: str | None = None) -> list[str]:
        test = self.cond(s.cond) if test is None else test
        lines = [_IND * ind + f"{keyword} ({test}) {{",
                 *self.block(s.then.stmts, ind + 1)]
        rest = s.else_.stmts if s.else_ is not None else ()
        if len(rest) == 1 and isinstance(rest[0], A.If):  # else { if } reads better as elseif
            nested = self._if(rest[0], ind, "} elseif")
            return lines + nested
        if rest:
            lines += [_IND * ind + "} else {", *self.block(rest, ind + 1)]
        return lines + [_IND * ind + "}"]

    def _case(self, s: A.Case, ind: int) -> list[str]:
        lines = [_IND * ind + f"switch -CaseSensitive -Exact ({self.word(s.subject, 'expr')}) {{"]
        for n, clause in enumerate(s.clauses):
            last = n == len(s.clauses) - 1
            pats = clause.patterns
            if not pats:  # `default` runs only when nothing matched, so only when it is last
                head = "default" if last else "{ $true }"
            elif len(pats) == 1 and pats[0].literal is not None:
                head = _lit(pats[0].literal)
            else:
                head = "{ " + " -or ".join(f"$_ -ceq {self.word(p, 'expr')}" for p in pats) + " }"
            # `break` so that only the first matching clause runs, as in `case`
            body = clause.body.stmts + (() if head == "default" else (A.Raw("break"),))
            lines += self._body(head, body, ind + 1)
        return lines + [_IND * ind + "}"]

    def _assign(self, s: A.Assign) -> list[str]:
        if s.kind not in ("var", "set", "local", "export"):
            raise PalletError(f"unknown assignment kind {s.kind!r}")
        if s.kind == "export" and s.value is None:
            if s.name not in self.names:
                return [f"# {s.name} is already in the environment"]
            return [f"$env:{s.name} = {self._ref(s.name)}"]
        if s.kind == "local" and self.locals is not None:
            self.locals.add(s.name)
        value = self.word(s.value, "expr") if s.value is not None else "''"
        if s.kind == "export":  # the shell variable and the environment both see it
            return [self._set(s.name, value), f"$env:{s.name} = {self._ref(s.name)}"]
        return [self._set(s.name, value)]

    def _funcdef(self, s: A.FuncDef, ind: int) -> list[str]:
        with self._context(locals=set(s.params), pipe_print=False, subshell=False, cond_depth=0,
                           tail=s.body.stmts[-1] if s.body.stmts else None,
                           rest=self.names[s.rest] if s.rest else None):
            return self._function(s, ind)

    def _function(self, s: A.FuncDef, ind: int) -> list[str]:
        assert self.locals is not None
        body: list[str] = []
        if s.params:
            body.append(_IND * (ind + 1) + "param(" + ", ".join(
                "$" + self.names[p] for p in s.params) + ")")
        if s.rest:  # named, because every script block (conditions, $(...)) has its own $args
            self.locals.add(s.rest)
            body.append(_IND * (ind + 1) + f"${self.rest} = $args")
        if not _BARE_NAME.fullmatch(s.name) or s.name.lower() in _KEYWORDS:
            raise PalletError(f"invalid function name for PowerShell: {s.name!r}")
        return [_IND * ind + f"function {s.name} {{", *body,
                *self.block(s.body.stmts, ind + 1), _IND * ind + "}"]

    def _command(self, c: A.Command) -> str:
        if not c.words:
            raise PalletError("empty command", c.span)
        head = c.words[0]
        if len(head.parts) == 1 and isinstance(head.parts[0], (A.ArrayAll, A.AllArgs)):
            raise PalletError("a command name cannot be a whole array", c.span)
        name = head.literal
        if name in ("break", "continue") and len(c.words) == 1 and not c.redirects:
            return name  # shell builtins that are keywords here, not commands
        if name == "exit" and len(c.words) <= 2 and not c.redirects:
            code = c.words[1].literal if len(c.words) == 2 else ""
            if code is None or not re.fullmatch(r"[0-9]*", code):
                code = f"([int]{self.word(c.words[1], 'expr')})"
            return f"exit {code}".rstrip()
        if c.external:  # the application, not the script's function (or an alias) of that name
            program = self.word(head, "expr") if name is None else _lit(name)
            text = f"& (Get-Command -Name {program} -CommandType Application -TotalCount 1)"
        elif name is not None and _BARE_NAME.fullmatch(name) and name.lower() not in _KEYWORDS:
            text = name
        else:
            text = "& " + (self.word(head, "expr") if name is None else _lit(name))
        mode = "arg" if name in self.functions and not c.external else "native"
        text = " ".join([text] + [self.word(w, mode) for w in c.words[1:]])
        before, after = "", ""
        for r in c.redirects:
            if r.op == "<":  # PowerShell has no `<`: feed the file's lines on the pipeline
                before = f"Get-Content -Encoding UTF8 -LiteralPath {self._redir_target(r, c)} | "
            elif r.op in _TO_STDERR:
                after = " | ForEach-Object { [Console]::Error.Write([string]$_ + \"`n\") }"
            elif r.op in _REDIRECTS:
                target = "" if r.op == "2>&1" else " " + self._redir_target(r, c)
                text += f" {_REDIRECTS[r.op]}{target}"
            else:
                raise PalletError(f"PowerShell has no redirection {r.op!r}", c.span)
        return before + text + after

    def _redir_target(self, r: A.Redirect, c: A.Command) -> str:
        if r.target is None:
            raise PalletError(f"redirection {r.op} needs a file", c.span)
        if r.target.literal == "/dev/null":
            return "$null"
        if r.op != "<":
            self.file_redirects = True
        return self.word(r.target, "arg")

    def _pipeline(self, p: A.Pipeline) -> str:
        stages = []
        for n, item in enumerate(p.items):
            # a Print feeds the next stage, or the outer pipe when this pipeline is a stage itself
            with self._context(pipe_print=self.pipe_print or n < len(p.items) - 1, subshell=True):
                if isinstance(item, A.Command) and (n == 0 or not any(
                        r.op == "<" for r in item.redirects)):
                    stages.append(self._command(item))
                elif n == 0 and isinstance(item, A.Print) and self.pipe_print and not item.redirects:
                    stages.append(self._print(item))
                else:  # other statements become a script block, as a shell runs a subshell
                    stages.append("& " + self._braced((item,)))
        return " | ".join(stages)

    def _print(self, s: A.Print) -> str:
        parts: list[A.Part] = []
        for n, w in enumerate(s.words):
            parts += ([A.Lit(" ")] if n else []) + list(w.parts)
        if self.pipe_print and not s.redirects:  # a line for the next stage, which ends it
            return self._dq(_merge(parts))
        parts += [A.Lit("\n")] if s.newline else []
        text = self._dq(_merge(parts))
        if not s.redirects:
            # always a string: Write() of an array or $null would print something else
            return f"[Console]::Out.Write({text})"
        return "; ".join(self._print_redirected(s, text))

    def _print_redirected(self, s: A.Print, text: str) -> list[str]:
        """println's redirections, as the shell applies them in order: each file a `>` names
        is created (emptied) or a `>>` names is created if missing, where standard output (and
        error) point moves, and the text is written where standard output points at the end.
        Standard error gets nothing: printf writes only to standard output."""
        out, err = ("console", "Out"), ("console", "Error")
        lines: list[str] = []
        for r in s.redirects:
            if r.op in ("2>&1",):
                err = out
                continue
            if r.op in _TO_STDERR:
                out = err
                continue
            if r.op not in (">", ">>", "1>", "1>>", "2>", "2>>"):
                raise PalletError(f"PowerShell has no redirection {r.op!r}")
            if r.target is None:
                raise PalletError(f"redirection {r.op} needs a file")
            if r.target.literal == "/dev/null":
                sink = ("null", "")
            else:
                path = self.word(r.target, "expr")
                full = f"$ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath({path})"
                method = "AppendAllText" if r.op.endswith(">>") else "WriteAllText"
                lines.append(f"[System.IO.File]::{method}({full}, '')")
                sink = ("file", len(lines) - 1)  # the line that opens it
            if r.op.startswith("2"):
                err = sink
            else:
                out = sink
        kind, where = out
        if kind == "console":
            lines.append(f"[Console]::{where}.Write({text})")
        elif kind == "file":  # the text goes in as the file is opened
            assert isinstance(where, int)
            lines[where] = lines[where][:-len(", '')")] + f", {text})"
        return lines or ["# printed to /dev/null: nothing to do"]

    def _heredoc(self, s: A.Heredoc) -> str:
        path = self.word(s.path, "expr")
        method = "AppendAllText" if s.append else "WriteAllText"
        # .NET resolves relative paths against the process directory, not the PowerShell one
        full = f"$ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath({path})"
        lines = re.split(r"\r\n|[\n\r\x0b\x0c\x85\u2028\u2029]", s.content)
        closes = any(line.lstrip()[:1] in _SINGLE_QUOTES and line.lstrip()[1:2] == "@"
                     for line in lines if line.lstrip())
        if closes or re.search(r"[\r\0\x85\u2028\u2029]", s.content):
            content = _dq_literal(s.content)
        else:  # a here-string holds the text between its first and its last line break
            content = "@'\n" + s.content + "\n'@"
        return f"[System.IO.File]::{method}({full}, {content})"


def emit_powershell(script: A.Script, header: bool = True) -> str:
    """The script as PowerShell text. The helper functions the script uses are always emitted
    (defining one twice is harmless); `header` adds the strict-mode preamble."""
    e = _Emitter(script)
    functions = [e.stmt(f, 0) for f in script.functions]
    body = e.block(script.body.stmts, 0)
    chunks: list[list[str]] = []
    if header:
        head = ["# Generated by Pallet: edit the Stevedore source, not this script.",
                "Set-StrictMode -Version Latest",
                "$ErrorActionPreference = 'Stop'",
                "$PSNativeCommandUseErrorActionPreference = $true  # a failing program stops "
                "the script, like set -e"]
        if e.file_redirects:
            head.append("$PSDefaultParameterValues['Out-File:Encoding'] = 'utf8'  "
                        "# > and >> would write UTF-16 in Windows PowerShell")
        chunks.append(head)
    chunks += [[_HELPERS[h]] for h in sorted(e.helpers)] + functions
    if body:
        chunks.append(body)
    return "\n\n".join("\n".join(c) for c in chunks if c) + "\n" if chunks else ""
