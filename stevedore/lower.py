"""Lowering: Stevedore forms -> script AST, for one explicit target.

Every special form of LANGUAGE.md's table is a method here; any other list is a command.
Values from the surrounding spec code arrive through a resolver (`~x`), so the same lowering
serves a plain script file (literals only) and script bodies inside spec code.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable

from pallet.errors import PalletError, Span
from pallet.secret import SECRET_VAR, Secret, SecretStore, secret_text
from pallet.grammar.forms import (Atom, Form, Keyword, ListForm, MapForm, Regex, SetForm, Symbol,
                                  VectorForm, show, span_of)

from . import ast as A
from .functions import Impl, ScriptFn, ScriptLibrary, SpecScriptFn
from . import pallet_forms, script_lib
from .script_words import ScriptWord, word_form
from .names import err as _err
from .names import munge
from .target import Target

Resolver = Callable[[Form], object]

# cut's delimiter written as Pallet's scripts wrote it, quoted for the shell: "' '".
_SINGLE_QUOTED = re.compile(r"'[^']'\Z")
_REDIRECTS_WITH_TARGET = {">", ">>", "<", "1>", "1>>", "2>", "2>>", "&>", "&>>"}
_OBSOLETE_GREPS = {"fgrep": "-F", "egrep": "-E"}
_FD_DUP = re.compile(r"[0-9]*>&[0-9]+\Z")
_UNARY_TESTS = {"file-exists?": "-e", "directory?": "-d", "symlink?": "-h", "readable?": "-r",
                "writeable?": "-w", "writable?": "-w", "executable?": "-x", "empty?": "-z",
                "file?": "-f", "not-empty?": "-n"}
_BINARY_TESTS = {"=": "=", "==": "=", "!=": "!=", "<": "-lt", ">": "-gt", "<=": "-le", ">=": "-ge"}
_ARITH = {"+": "+", "-": "-", "*": "*", "/": "/", "mod": "%", "%": "%"}
_WORD_FORMS = {"deref", "str", "quoted", "aget", "get", *_ARITH}  # each made by word()
# Shell operators among a command's words, which Pallet pasted as syntax, and what to write.
_SHELL_OPERATORS = {"|": "(pipe (a ...) (b ...))", "&&": "(chain-and (a ...) (b ...))",
                    "||": "(chain-or (a ...) (b ...))",
                    "&": "(raw \"... &\") to run in the background"}


@dataclass(frozen=True)
class ScriptForms:
    """A script written inside spec code, `(script ...)`: forms plus the resolver of the place
    they were written. Spliced with `~` into another script, it becomes code."""

    forms: tuple[Form, ...]
    resolver: Resolver
    # Spliced with its commands' standard output discarded: a test whose output is not what
    # the script reports (exec-checked-script's :unless).
    quiet: bool = False

    def describe(self) -> str:
        return "a (script ...)"


def literal_resolver(form: Form) -> object:
    """The resolver of a plain script file: `~` accepts literal data only."""
    if isinstance(form, Atom):
        return form.value
    if isinstance(form, Keyword):
        return form
    if isinstance(form, (VectorForm, ListForm, SetForm)):
        if isinstance(form, ListForm) and form.items and form.items[0] == Symbol("quote"):
            return _quoted_data(form.items[1])
        return [literal_resolver(f) for f in form.items]
    raise PalletError(f"~{show(form)}: a plain script file has no spec values; only literal data "
                      "can be unquoted here (inside spec code, ~ reaches its values)", span_of(form))


def _quoted_data(form: Form) -> object:
    if isinstance(form, (VectorForm, ListForm, SetForm)):
        return [_quoted_data(f) for f in form.items]
    if isinstance(form, Atom):
        return form.value
    return form  # symbols and keywords stay themselves


class Lowering:
    def __init__(self, target: Target, library: ScriptLibrary | None = None,
                 resolver: Resolver = literal_resolver):
        self.target = target
        self.library = (library or ScriptLibrary()).copy()
        self.resolver = resolver
        # Where the script's secret values go (a bundle's); None: a script that has none.
        self.secrets: SecretStore | None = None
        self.functions: dict[str, A.FuncDef] = {}
        self._in_progress: set[str] = set()
        # defn functions: where each is written (known ahead, so that a call before the
        # definition is an error, not a "command not found" on the node), which are defined
        # by now, and which user functions each body calls (a call runs the callee's body).
        self._user_fns: dict[str, Span | None] = {}
        self._defined_fns: set[str] = set()
        self._fn_calls: dict[str, set[str]] = {}
        self._defining: list[str] = []
        self._fn_depth = 0
        self._declared: set[int] = set()
        self.maps: set[str] = set()  # names made maps (associative arrays) so far
        self._rest_names: list[str | None] = []  # the & rest parameter of each enclosing fn  # ids of defscript/defimpl forms already taken
        # Script functions each implementation calls, transitively, in hoisting order, so
        # that a cached implementation brings all it needs (not only what was new then).
        self._collectors: list[list[str]] = []
        self._impl_depth = 0   # inside the body of a script function's implementation
        self._deps: dict[str, tuple[str, ...]] = {}

    # ---- entry points ---------------------------------------------------------------------

    def program(self, forms: Iterable[Form]) -> A.Script:
        forms = tuple(forms)
        body = self.block(forms)
        return A.Script(tuple(self.functions.values()), body)

    def block(self, forms: Iterable[Form]) -> A.Block:
        forms = tuple(forms)
        self._declare_ahead(forms)
        stmts: list[A.Stmt] = []
        for form in forms:
            stmt = self.stmt(form)
            if stmt is not None:
                stmts.append(stmt)
        return A.Block(tuple(stmts))

    def _declare_ahead(self, forms: tuple[Form, ...]) -> None:
        # Script functions and defns may be called before the form that defines them.
        for form in forms:
            name = _head(form)
            if name == "defscript":
                self._defscript(form)
            elif name == "defimpl":
                self._defimpl(form)
            elif name == "defn" and len(form.items) > 1 and isinstance(form.items[1], Symbol):
                self._user_fns.setdefault(form.items[1].name, form.items[1].span)

    # ---- statements -----------------------------------------------------------------------

    def stmt(self, form: Form) -> A.Stmt | None:
        if isinstance(form, ListForm) and form.items:
            head = form.items[0]
            lib = script_lib.lib_name(self, head) if type(head) is not Atom else None
            if lib is not None:
                return script_lib.call(self, lib, form, as_word=False)
            if isinstance(head, Symbol):
                method = _STATEMENTS.get(head.name)
                if method is not None:
                    return method(self, form)
                if head.name.startswith(".") and len(head.name) > 1:
                    raise _err(f"({head.name} ...) calls a method, which Pallet's Stevedore emitted "
                               "for other targets than the shell; it is not supported here", head)
                if head.name in _WORD_FORMS and self._impl_depth:
                    # A Pallet script function whose body is a word returned that text; here
                    # the function prints it, so that @(f) is the word.
                    return A.Print((self.word(form),))
                if head.name in _WORD_FORMS:
                    raise _err(f"({head.name} ...) makes a word, not a command; use it as an "
                               "argument, or print it with println", form)
                if head.name in self.library.functions:
                    return self._call_script_fn(head.name, form)
                if head.name in self._user_fns:
                    self._check_defined(head)
                    return self.command(form, name=munge(head.name, head.span, "function"))
            elif type(head) is ListForm and _head(head) == "unquote" and len(head.items) == 2:
                value = self.resolver(head.items[1])
                if isinstance(value, SpecScriptFn):  # (~f args): defined in spec code
                    return self._call_script_fn(self._adopt(value), form)
                return self.command(form, resolved=(value,))
            return self.command(form)
        if isinstance(form, ListForm):
            raise _err("an empty list is not a command", form)
        if isinstance(form, Symbol) or (isinstance(form, Atom) and isinstance(form.value, bool)):
            return self.stmt(ListForm((form,), form.span))  # a symbol alone is a command
        if isinstance(form, Atom) and form.value == "":
            return None  # Pallet's (script "") is no script at all
        if isinstance(form, Atom) and isinstance(form.value, str):
            raise _err("a string here is text, not shell code (Pallet pasted it into the script "
                       "as it was): write the command as (cmd arg ...), or (raw \"...\") for "
                       "shell text", form)
        raise _err(f"expected a script form such as (cmd arg ...), found {show(form)}", form)

    def _splice_stmt(self, form):
        """`~@coll` as a statement: the items are the words of one command, as in Pallet."""
        words = self.words(form)
        return A.Command(words, (), form.span) if words else None

    def _adopt(self, fn: SpecScriptFn) -> str:
        """A script function of spec code, declared and implemented in this script's library
        (once), with `~` in each implementation reaching the spec values where it was written."""
        if id(fn.declaration) not in self._declared:
            self._defscript(fn.declaration)
        saved = self.resolver
        try:
            for impl_form, resolver in fn.impls:
                if id(impl_form) not in self._declared:
                    self.resolver = resolver
                    self._defimpl(impl_form)
        finally:
            self.resolver = saved
        return fn.name

    def command(self, form: ListForm, name: str | None = None, resolved: tuple = ()) -> A.Command:
        head = form.items[0]
        if name is not None:
            words: list[A.Word] = [A.lit(name)]
        elif isinstance(head, ListForm) and _head(head) == "unquote":
            value = resolved[0] if resolved else self.resolver(head.items[1])
            if isinstance(value, ScriptForms):
                raise _err("a script value cannot be a command name", head)
            words = [self._value_word(value, head)]
        elif isinstance(head, Atom) and isinstance(head.value, bool):
            words = [A.lit("true" if head.value else "false")]  # (true) and (false) are commands
        elif isinstance(head, (Symbol, Atom)) and isinstance(getattr(head, "value", ""), str):
            text = head.name if isinstance(head, Symbol) else head.value
            # fgrep and egrep are obsolescent (GNU grep 3.8 warns on each call): grep -F, -E
            words = [A.lit("grep"), A.lit(_OBSOLETE_GREPS[text])] if text in _OBSOLETE_GREPS \
                else [self.word(head)]
        else:
            raise _err(f"a command name must be a symbol or a string, found {show(head)}", head)
        sources: list[Form] = [head] * len(words)   # the form each word came from
        args, redirects = self._words_and_redirects(
            form.items[1:], sources, pasted_quotes=words[0].literal == "cut")
        if name is None and self.secrets is not None and len(self.secrets):
            self._check_secret_arguments([*words, *args], sources)
        # A string command is a program: named like a function of the script (as
        # `(defimpl ls ... ("ls" @args))` is, inside ls itself), it must not call the function.
        external = (name is None and isinstance(head, Atom)
                    and words[0].literal in self._function_names())
        return A.Command(tuple(words) + args, redirects, form.span, external,
                         function_call=name is not None)

    def _function_names(self) -> set[str]:
        """The shell names of the functions this script may define: script functions and
        defns (their names as munge makes them)."""
        names = {n.replace("/", "__").replace("-", "_") for n in self.library.functions}
        names.update(n.replace("-", "_") for n in self._user_fns)
        return names

    def _words_and_redirects(self, forms, sources: list[Form] | None = None,
                             pasted_quotes: bool = False
                             ) -> tuple[tuple[A.Word, ...], tuple[A.Redirect, ...]]:
        """The words of a command's (or println's) arguments, and the redirections among them
        (`>` `>>` `2>&1` ..., as symbols or those exact strings), in the order written; the
        form each word came from appended to `sources`, when given. With pasted_quotes
        (cut's arguments), -d "' '" is the delimiter Pallet's shell read."""
        words: list[A.Word] = []
        redirects: list[A.Redirect] = []
        args = list(forms)
        i = 0
        while i < len(args):
            arg = args[i]
            op = _redirect_op(arg)
            if op is None and isinstance(arg, Symbol) and arg.name in _SHELL_OPERATORS:
                raise _err(f"{arg.name} among a command's arguments is a word here (Pallet pasted "
                           f"it into the script as shell syntax); write {_SHELL_OPERATORS[arg.name]}",
                           arg)
            if op is None:
                if pasted_quotes and _pasted_delimiter(args, i):
                    # Pallet pasted strings as shell text: ("cut" -d "' '") gave cut a space
                    made = [A.lit(arg.value[1:-1])]
                else:
                    made = self.words(arg)
                words.extend(made)
                if sources is not None:
                    sources.extend([arg] * len(made))
                i += 1
                continue
            if _FD_DUP.match(op):
                redirects.append(A.Redirect(op, None))
                i += 1
                continue
            if i + 1 >= len(args):
                raise _err(f"redirection {op} needs a target after it", arg)
            target = self.word(args[i + 1])
            if op in ("&>", "&>>"):  # bash-only spelling, emitted portably
                redirects += [A.Redirect(op[1:], target), A.Redirect("2>&1", None)]
            else:
                redirects.append(A.Redirect(op, target))
            i += 2
        return tuple(words), tuple(redirects)

    def _check_secret_arguments(self, words: list[A.Word], sources: list[Form]) -> None:
        """A secret must not be an argument of a program: every user of the node can read a
        process's arguments (ps, /proc/PID/cmdline). Shell builtins run in the shell itself."""
        head = words[0].literal
        if head is not None and (head in _BUILTINS or self.target.shell == "powershell"
                                 and _CMDLET.match(head)):
            return
        for word, source in zip(words, sources):
            if any(_is_secret_part(p) for p in word.parts):
                program = head if head is not None else "the command"
                what = "the name of a command" if word is words[0] else f"an argument of {program}"
                raise _err(f"a secret cannot be {what}: every user of the node can read the "
                           "arguments of a program (ps, /proc/PID/cmdline). Give it on the "
                           "program's standard input, such as (pipe (printf \"%s\" ~password) "
                           f"({program} ...)), or in a file (remote-file with a secret :content); "
                           "shell builtins such as printf, echo and read take it safely", source)

    def _args(self, form: ListForm, low: int, high: int | None, usage: str) -> tuple[Form, ...]:
        args = form.items[1:]
        if len(args) < low or (high is not None and len(args) > high):
            expected = (f"{low}" if high == low else f"{low} or more" if high is None
                        else f"{low} to {high}")
            raise _err(f"wrong number of arguments to {form.items[0]}: expected {expected}, "
                       f"got {len(args)}; usage: {usage}", form)
        return args

    def _do(self, form):
        return self.block(form.items[1:])

    def _group(self, form):
        return A.Group(self.block(form.items[1:]))

    def _if(self, form, negate=False):
        args = self._args(form, 2, 3, f"({form.items[0]} test then else?)")
        cond = self.stmt(args[0])
        if negate:
            cond = A.Not(cond)
        known = _constant(cond)
        if known is not None:
            return self.block(args[1:2] if known else args[2:3])
        else_ = self.block(args[2:3]) if len(args) == 3 else None
        return A.If(cond, self.block(args[1:2]), else_)

    def _if_not(self, form):
        return self._if(form, negate=True)

    def _when(self, form, negate=False):
        args = self._args(form, 1, None, f"({form.items[0]} test body...)")
        cond = self.stmt(args[0])
        cond = A.Not(cond) if negate else cond
        known = _constant(cond)
        if known is not None:
            return self.block(args[1:] if known else ())
        return A.If(cond, self.block(args[1:]))

    def _when_not(self, form):
        return self._when(form, negate=True)

    def _while(self, form):
        args = self._args(form, 1, None, "(while test body...)")
        return A.While(self.stmt(args[0]), self.block(args[1:]))

    def _case(self, form):
        args = self._args(form, 1, None, "(case x value expr ... :else expr)")
        subject = self.word(args[0])
        rest = list(args[1:])
        clauses: list[A.CaseClause] = []
        while rest:
            if len(rest) == 1:  # a trailing expression is the default, as in Clojure
                clauses.append(A.CaseClause((), self.block(rest)))
                break
            pattern, body = rest[0], rest[1]
            rest = rest[2:]
            if isinstance(pattern, Keyword) and pattern.name in ("else", "default"):
                clauses.append(A.CaseClause((), self.block([body])))
                if rest:
                    raise _err(f"{pattern} must be the last clause of case", pattern)
                break
            items = pattern.items if isinstance(pattern, (ListForm, VectorForm)) else (pattern,)
            patterns = tuple(self.word(p) for p in items)
            for p, w in zip(items, patterns):
                if w.literal is None:
                    raise _err("a case value must be literal (a string, number, keyword or symbol)", p)
            clauses.append(A.CaseClause(patterns, self.block([body])))
        if subject.literal is not None:  # a constant subject: pick its clause now
            for clause in clauses:
                if not clause.patterns or any(p.literal == subject.literal for p in clause.patterns):
                    return clause.body
            return A.Block(())
        return A.Case(subject, tuple(clauses))

    def _doseq(self, form):
        args = self._args(form, 1, None, "(doseq [x coll] body...)")
        binding = args[0]
        if not isinstance(binding, VectorForm) or len(binding.items) != 2:
            raise _err("doseq needs a binding vector [name coll]", binding)
        var, coll = binding.items
        if not isinstance(var, Symbol):
            raise _err(f"doseq binds a symbol, found {show(var)}", var)
        name = munge(var.name, var.span)
        if isinstance(coll, VectorForm):
            items = tuple(w for item in coll.items for w in self.words(item))
        elif _head(coll) in ("unquote", "unquote-splicing"):
            items = self.words(ListForm((Symbol("unquote-splicing"), coll.items[1]), coll.span))
        elif _head(coll) == "deref" and len(coll.items) == 2 and isinstance(coll.items[1], ListForm):
            # over a command's output: one pass per line (Pallet split it at spaces too)
            command = self.block((coll.items[1],))
            return A.ForLines(name, command, self.block(args[1:]))
        elif _head(coll) == "deref" and isinstance(coll.items[1], Symbol) and self._is_rest(coll.items[1]):
            items = (A.Word((A.AllArgs(),)),)
        elif _head(coll) == "deref" and isinstance(coll.items[1], Symbol):
            self._require_arrays(coll)
            items = (A.Word((A.ArrayAll(munge(coll.items[1].name, coll.span)),)),)
        else:
            raise _err("doseq iterates over a vector literal, ~list, an array @a or the lines "
                       "of a command's output @(cmd ...)", coll)
        return A.For(name, items, self.block(args[1:]))

    def _assign(self, form):
        kind = {"var": "var", "set!": "set", "local": "local", "export": "export",
                "defvar": "var"}[form.items[0].name]
        high = 2 if kind != "export" else 2
        low = 1 if kind == "export" else 2
        args = self._args(form, low, high, f"({form.items[0]} name value)")
        if not isinstance(args[0], Symbol):
            raise _err(f"{form.items[0]} assigns to a symbol, found {show(args[0])}", args[0])
        name = munge(args[0].name, args[0].span)
        if kind == "local" and self._fn_depth == 0:
            raise _err("local is only allowed inside defn (use var outside a function)", form)
        if len(args) == 1:
            return A.Assign(kind, name, None)
        value = args[1]
        if isinstance(value, MapForm):
            return pallet_forms.map_assign(self, form, kind, name, value)
        if isinstance(value, VectorForm):
            if kind not in ("var", "set"):
                raise _err(f"{form.items[0]} cannot hold an array; use var", value)
            self._require_arrays(value)
            return A.ArrayAssign(name, tuple(w for f in value.items for w in self.words(f)))
        return A.Assign(kind, name, self.word(value))

    def _aset(self, form):
        args = self._args(form, 3, 3, "(aset array index value)")
        self._require_arrays(form)
        if not isinstance(args[0], Symbol):
            raise _err("aset needs the array's name", args[0])
        return A.ArraySet(munge(args[0].name, args[0].span), self.arith(args[1]), self.word(args[2]))

    def _defn(self, form):
        args = self._args(form, 2, None, "(defn name [args] body...)")
        name, params = args[0], args[1]
        if isinstance(params, Atom) and isinstance(params.value, str) and len(args) > 2:
            params, body = args[2], args[3:]  # a docstring
        else:
            body = args[2:]
        if not isinstance(name, Symbol):
            raise _err("defn needs a function name", name)
        if not isinstance(params, VectorForm):
            raise _err("defn needs a vector of argument names", params)
        shell_name = self._function_name(name, munge(name.name, name.span, "function"))
        self._user_fns.setdefault(name.name, name.span)
        self._defined_fns.add(name.name)  # before its body: it may call itself
        param_names = self._params(params)
        self._defining.append(name.name)
        try:
            return self._function(shell_name, param_names, body)
        finally:
            self._defining.pop()

    def _function_name(self, name: Symbol, shell_name: str) -> str:
        """The shell name of a function, refused when the target shell reserves it (a bash
        function called `done` is a syntax error)."""
        if self.target.shell == "powershell":
            from .emit_powershell import _KEYWORDS as reserved
        else:
            from .emit_posix import _RESERVED as reserved
        if (shell_name.lower() if self.target.shell == "powershell" else shell_name) in reserved:
            what = "a PowerShell keyword" if self.target.shell == "powershell" else "a shell reserved word"
            raise _err(f"{name.name!r} is {what}; a function cannot have that name", name)
        return shell_name

    def _check_defined(self, head: Symbol) -> None:
        """A call runs the function's body, which runs the functions it calls: each must be
        defined (its defn lowered) by then. A body may call a function defined after it, as
        long as nothing calls the body before that definition."""
        name = head.name
        if self._defining:  # inside a defn body: checked when that function is called
            self._fn_calls.setdefault(self._defining[-1], set()).add(name)
            return
        seen, queue = {name}, [name]
        while queue:
            fn = queue.pop(0)
            if fn not in self._defined_fns:
                where = self._user_fns.get(fn)
                at = "" if where is None else (
                    f" at {where.line}:{where.column}" if head.span and where.file == head.span.file
                    else f" at {where}")
                if fn == name:
                    raise _err(f"{name} is called before its defn{at}; define it first", head)
                raise _err(f"{name} calls {fn}, which is defined later{at}; define {fn} "
                           f"before calling {name}", head)
            for callee in sorted(self._fn_calls.get(fn, ())):
                if callee not in seen:
                    seen.add(callee)
                    queue.append(callee)

    def _function(self, name: str, params: tuple[str, ...], body) -> A.FuncDef:
        rest = params[-1][1:] if params and params[-1].startswith("&") else None
        fixed = params[:-1] if rest else params
        self._fn_depth += 1
        self._rest_names.append(rest)
        try:
            return A.FuncDef(name, fixed, self.block(body), rest)
        finally:
            self._fn_depth -= 1
            self._rest_names.pop()

    def _params(self, vector: VectorForm) -> tuple[str, ...]:
        """Argument names; an `& rest` parameter comes last, as "&rest"."""
        names = []
        items = vector.items
        if len(items) >= 2 and items[-2] == Symbol("&"):
            if not isinstance(items[-1], Symbol):
                raise _err("& must be followed by one argument name", items[-1])
            return self._params(VectorForm(items[:-2], vector.span)) + (
                "&" + munge(items[-1].name, items[-1].span),)
        for p in items:
            if isinstance(p, VectorForm) and p.items and isinstance(p.items[0], Keyword):
                raise _err("shFlags declarations ([:string \"name\" ...] among defn arguments) are "
                           "a Pallet Stevedore feature not supported here; take plain arguments", p)
            if not isinstance(p, Symbol):
                raise _err(f"an argument name must be a symbol, found {show(p)}", p)
            names.append(munge(p.name, p.span))
        return tuple(names)

    def _return(self, form):
        args = self._args(form, 0, 1, "(return value?)")
        if self._fn_depth == 0:
            raise _err("return is only allowed inside defn", form)
        return A.Return(self.word(args[0]) if args else None)

    def _println(self, form):
        # Stevedore's println was echo: its redirections redirect, as a command's do.
        words, redirects = self._words_and_redirects(form.items[1:])
        if any(r.op == "<" for r in redirects):
            raise _err(f"{form.items[0]} reads no input: a < redirection does nothing here", form)
        return A.Print(words, newline=form.items[0].name == "println", redirects=redirects)

    def _heredoc(self, form):
        args = self._args(form, 2, 4, "(heredoc path content :append true?)")
        content = args[1]
        value = (content.value if isinstance(content, Atom)
                 else self.resolver(content.items[1]) if _head(content) == "unquote" else None)
        if type(value) is Secret:   # written by printf, a builtin: the script holds no copy
            append = len(args) == 4 and args[2] == Keyword("append") and \
                isinstance(args[3], Atom) and bool(args[3].value)
            if len(args) > 2 and not (len(args) == 4 and args[2] == Keyword("append")):
                raise _err("heredoc takes one option, :append", args[2])
            if self.target.shell == "powershell":
                raise _err("a heredoc of a secret is written by printf, in bash and sh; for "
                           "PowerShell use remote-file with a secret :content", content)
            return A.Command((A.lit("printf"), A.lit("%s"), self._value_word(value, content)),
                             (A.Redirect(">>" if append else ">", self.word(args[0])),),
                             form.span)
        if not isinstance(value, str):
            raise _err("heredoc content must be a literal string (or ~ of a string)", content)
        _check_nul(value, content)
        append = False
        if len(args) > 2:
            if len(args) != 4 or args[2] != Keyword("append"):
                raise _err("heredoc takes one option, :append", args[2])
            append = isinstance(args[3], Atom) and bool(args[3].value)
        return A.Heredoc(self.word(args[0]), value, append)

    def _raw(self, form):
        args = self._args(form, 1, 1, '(raw "text")')
        if not (isinstance(args[0], Atom) and isinstance(args[0].value, str)):
            raise _err("raw takes one literal string", args[0])
        return A.Raw(args[0].value)

    def _chain(self, form):
        args = self._args(form, 1, None, f"({form.items[0]} cmd...)")
        op = "&&" if form.items[0].name in ("chain-and", "and", "&&") else "||"
        stmts = tuple(self.stmt(a) for a in args)
        return stmts[0] if len(stmts) == 1 else A.AndOr(op, stmts)

    def _pipe(self, form):
        args = self._args(form, 1, None, "(pipe cmd...)")
        stmts = tuple(self.stmt(a) for a in args)
        return stmts[0] if len(stmts) == 1 else A.Pipeline(stmts)

    def _not(self, form):
        args = self._args(form, 1, 1, "(not test)")
        return A.Not(self.stmt(args[0]))

    def _test(self, form):
        name = form.items[0].name
        if name in _UNARY_TESTS:
            args = self._args(form, 1, 1, f"({name} x)")
            test = A.Test(_UNARY_TESTS[name], (self.word(args[0]),))
        else:
            args = self._args(form, 2, 2, f"({name} a b)")
            test = A.Test(_BINARY_TESTS[name], (self.word(args[0]), self.word(args[1])))
        # Values from spec code (`~x`) often make a test constant: decide it here, so the
        # script says what will happen instead of comparing two literals (shellcheck SC2050).
        folded = _fold_test(test)
        return test if folded is None else (_TRUE if folded else _FALSE)

    def _script(self, form):
        return self.block(form.items[1:])

    def _defscript(self, form):
        if id(form) in self._declared:
            return None
        self._declared.add(id(form))
        args = self._args(form, 2, 3, "(defscript name \"doc\"? [args])")
        name = args[0]
        if not isinstance(name, Symbol):
            raise _err("defscript needs a function name", name)
        doc = args[1].value if len(args) == 3 and isinstance(args[1], Atom) else None
        params = args[-1]
        if not isinstance(params, VectorForm):
            raise _err("defscript needs a vector of argument names", params)
        self._function_name(name, munge(name.name.replace("/", "__"), name.span, "function"))
        self.library.declare(ScriptFn(name.name, self._params(params), doc, form.span))
        return None

    def _defimpl(self, form):
        if id(form) in self._declared:
            return None
        self._declared.add(id(form))
        args = self._args(form, 3, None, "(defimpl name [:os-family ...] [args] body...)")
        name, spec, params = args[0], args[1], args[2]
        if not isinstance(name, Symbol):
            raise _err("defimpl needs the name of a defscript", name)
        if not isinstance(params, VectorForm):
            raise _err("defimpl needs a vector of argument names", params)
        self.library.implement(Impl(name.name, _specialisers(spec), self._params(params),
                                    tuple(args[3:]), form.span, self.resolver))
        return None

    def _call_script_fn(self, name: str, form: ListForm) -> A.Command:
        fn = self.library.functions[name]
        fixed = [p for p in fn.params if not p.startswith("&")]
        given = len(form.items) - 1
        if given < len(fixed) or (given > len(fixed) and len(fixed) == len(fn.params)):
            raise _err(f"{name} takes {len(fixed)}{' or more' if len(fixed) < len(fn.params) else ''} "
                       f"arguments ({' '.join(fn.params)}), got {given}", form)
        shell_name = munge(name.replace("/", "__"), form.span, "function")
        if shell_name not in self.functions and shell_name not in self._in_progress:
            impl = self.library.select(name, self.target, form.span)
            # Lowering an implementation depends only on it and the target: a bundle per
            # node and phase reuses the same library functions thousands of times.
            key = (id(impl), self.target)
            cached = self.library.lowered.get(key)
            if cached is not None and cached[0] is impl:
                for dep_name, dep in cached[2]:
                    self.functions.setdefault(dep_name, dep)
                self.functions[shell_name] = cached[1]
                self._deps[shell_name] = tuple(n for n, _ in cached[2])
            else:
                collector: list[str] = []
                self._collectors.append(collector)
                self._in_progress.add(shell_name)
                saved = self.resolver
                self.resolver = impl.resolver or saved
                self._impl_depth += 1
                try:
                    fn_def = self._function(shell_name, impl.params, impl.body)
                finally:
                    self.resolver = saved
                    self._impl_depth -= 1
                    self._in_progress.discard(shell_name)
                    self._collectors.pop()
                names = tuple(dict.fromkeys(n for n in collector if n != shell_name))
                self._deps[shell_name] = names
                if all(n in self.functions for n in names):  # not mutually recursive
                    deps = tuple((n, self.functions[n]) for n in names)
                    self.library.lowered[key] = (impl, fn_def, deps)
                self.functions[shell_name] = fn_def
        for collector in self._collectors:  # every enclosing implementation needs it too
            collector.extend(self._deps.get(shell_name, ()))
            collector.append(shell_name)
        return self.command(form, name=shell_name)

    def _unquote_stmt(self, form):
        value = self.resolver(form.items[1])
        if isinstance(value, ScriptForms):
            block = self._splice_script(value)
            return _quiet(block) if value.quiet else block
        if isinstance(value, (list, tuple)) and all(isinstance(v, ScriptForms) for v in value):
            return A.Block(tuple(self._splice_script(v) for v in value))
        if isinstance(value, tuple) and value and isinstance(value[0], Symbol):
            # code as data, such as `(do (local x 3)) made in spec code: the forms it spells
            return self.stmt(_data_form(value, form.span))
        return A.Command((self._value_word(value, form),), (), form.span)

    def script_word(self, value: ScriptForms) -> A.Word:
        """The word a one-word script makes (script_words.word_form), in its own resolver."""
        form = word_form(value.forms, value.resolver)
        if form is None:
            raise _err("this script is not one word (such as @x, @(cmd) or (lib/user-home u))",
                       value.forms[0] if value.forms else None)
        saved = self.resolver
        self.resolver = value.resolver
        try:
            return self.word(form)
        finally:
            self.resolver = saved

    def _splice_script(self, value: ScriptForms) -> A.Block:
        saved = self.resolver
        self.resolver = value.resolver
        try:
            return self.block(value.forms)
        finally:
            self.resolver = saved

    def _is_rest(self, symbol: Symbol) -> bool:
        rest = self._rest_names[-1] if self._rest_names else None
        return rest is not None and symbol.name.replace("-", "_") == rest

    def _require_arrays(self, form) -> None:
        if self.target.shell == "sh":
            raise _err("arrays are not available in POSIX sh; compile for bash or powershell, "
                       "or use a doseq over a vector", form)

    # ---- words ----------------------------------------------------------------------------

    def words(self, form: Form) -> tuple[A.Word, ...]:
        """Words for a place that takes several (command arguments, doseq items)."""
        if isinstance(form, ListForm) and form.items and script_lib.lib_name(self, form.items[0]):
            word = self.word(form)
            return () if word.literal == "" else (word,)  # Pallet's "" values add no word
        if _head(form) == "unquote-splicing":
            value = self.resolver(form.items[1])
            if value is None:
                return ()
            if isinstance(value, (list, tuple, set, frozenset)):
                items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
                return tuple(self._value_word(v, form) for v in items)
            return (self._value_word(value, form),)
        return (self.word(form),)

    def word(self, form: Form) -> A.Word:
        if isinstance(form, Atom):
            if form.value is None:
                raise _err("nil is not a word; write \"\" for an empty string", form)
            return self._value_word(form.value, form)
        if isinstance(form, (Symbol, Keyword)):
            return A.Word((A.Lit(form.name),))
        if isinstance(form, ListForm) and form.items:
            lib = script_lib.lib_name(self, form.items[0])
            if lib is not None:
                return script_lib.call(self, lib, form, as_word=True)
        if isinstance(form, ListForm) and form.items and isinstance(form.items[0], Symbol):
            name = form.items[0].name
            if name == "deref":
                return A.Word((self._deref(form),))
            if name == "unquote":
                return self._value_word(self.resolver(form.items[1]), form)
            if name == "unquote-splicing":
                raise _err("~@ splices several words; it cannot stand where one word is needed", form)
            if name in ("str", "quoted"):
                parts: list[A.Part] = []
                for i, item in enumerate(form.items[1:]):
                    if name == "quoted" and i:
                        parts.append(A.Lit(" "))
                    for j, w in enumerate(self.words(item)):
                        if j and name == "quoted":  # (str ~@xs) joins them, as Clojure's str
                            parts.append(A.Lit(" "))
                        parts.extend(w.parts)
                return A.Word(_merge_lits(parts))
            if name in _ARITH:
                return A.Word((A.Arith(self.arith(form)),))
            if name == "get" or (name == "aget" and len(form.items) == 3 and (
                    isinstance(form.items[2], (Keyword, Atom)) and not isinstance(
                        getattr(form.items[2], "value", None), int)
                    or getattr(form.items[1], "name", None) in self.maps)):
                return pallet_forms.map_ref(self, form)
            if name == "aget":
                args = self._args(form, 2, 2, "(aget array index)")
                self._require_arrays(form)
                if not isinstance(args[0], Symbol):
                    raise _err("aget needs the array's name", args[0])
                return A.Word((A.ArrayRef(munge(args[0].name, args[0].span), self.arith(args[1])),))
            if name == "raw":
                args = self._args(form, 1, 1, '(raw "text")')
                if not (isinstance(args[0], Atom) and isinstance(args[0].value, str)):
                    raise _err("raw takes one literal string", args[0])
                return A.Word((A.RawPart(args[0].value),))
        if isinstance(form, MapForm):
            raise _err(f"{show(form)} is a map, not a word; make a map variable with (var m {{...}}) "
                       "and read it with (get m :key)", form)
        if isinstance(form, (VectorForm, SetForm)):
            raise _err(f"{show(form)} is data, not a word; use ~@ to splice a collection", form)
        raise _err(f"{show(form)} is a command, not a word; write @{show(form)} for its output", form)

    def _deref(self, form: ListForm) -> A.Part:
        args = self._args(form, 1, 3, "(deref x :default value)")
        target = args[0]
        if isinstance(target, ListForm) and _head(target) != "unquote":
            if len(args) > 1:
                raise _err("options apply to variables, not command output", args[1])
            return A.CmdSub(A.Block((self.stmt(target),)))
        if isinstance(target, Symbol) and self._is_rest(target):
            if len(args) > 1:
                raise _err("options apply to single variables, not to & rest arguments", args[1])
            return A.AllArgs()
        if isinstance(target, Symbol):
            name = munge(target.name, target.span)
        elif _head(target) == "unquote":
            value = self.resolver(target.items[1])
            if isinstance(value, ScriptForms):
                return A.CmdSub(self._splice_script(value))
            name = munge(_value_text(value, target), target.span)
        else:
            raise _err(f"deref needs a variable name or a command, found {show(target)}", target)
        if len(args) == 1:
            return A.Var(name)
        if len(args) != 3 or not isinstance(args[1], Keyword) or args[1].name not in A.VAR_OPS:
            raise _err("deref options: " + ", ".join(":" + k for k in A.VAR_OPS) + " followed by a value",
                       args[1])
        return A.Var(name, args[1].name, self.word(args[2]))

    def arith(self, form: Form) -> A.ArithExpr:
        if isinstance(form, Atom) and isinstance(form.value, int) and not isinstance(form.value, bool):
            return A.ArithNum(form.value)
        name = _head(form)
        if name in _ARITH:
            operands = tuple(self.arith(f) for f in form.items[1:])
            if not operands or (name != "-" and len(operands) < 2):
                raise _err(f"({name} ...) needs {'one' if name == '-' else 'two'} or more numbers", form)
            return A.ArithOp(_ARITH[name], operands)
        if name == "deref" and len(form.items) == 2 and isinstance(form.items[1], Symbol):
            return A.ArithVar(munge(form.items[1].name, form.items[1].span))
        if isinstance(form, Symbol):  # a name in arithmetic is the variable, as bash reads it
            return A.ArithVar(munge(form.name, form.span))
        if name == "unquote":
            value = self.resolver(form.items[1])
            if isinstance(value, int) and not isinstance(value, bool):
                return A.ArithNum(value)
            raise _err(f"arithmetic needs an integer, ~{show(form.items[1])} is {value!r}", form)
        raise _err(f"arithmetic takes integers, @variables and arithmetic forms, found {show(form)}", form)

    def _value_word(self, value: object, form: object) -> A.Word:
        if isinstance(value, ScriptForms):
            return A.Word((A.CmdSub(self._splice_script(value)),))
        if type(value) is Secret:
            return A.Word((self._secret_part(value, form),))
        if type(value) is ScriptWord:  # a word made in spec code from scripts: that word again
            parts: list[A.Part] = []
            for piece in value.pieces:
                parts.extend((A.Lit(piece),) if isinstance(piece, str) else self.script_word(piece).parts)
            return A.Word(_merge_lits(parts))
        return A.Word((A.Lit(_value_text(value, form)),))

    def _secret_part(self, value: Secret, form: object) -> A.Var:
        """A secret as the variable the script reads it into: its text is in the bundle's
        secrets/, never in the script."""
        if self.secrets is None:
            raise _err("a secret value can only be used in a phase's script, whose bundle "
                       "carries it apart from the script", form)
        text = secret_text(value)
        _check_nul(text, form)
        return A.Var(self.secrets.variable(text))


def _value_text(value: object, form: object) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (str, int, float)):
        text = str(value)
    elif isinstance(value, (Keyword, Symbol)):
        text = value.name
    elif value is None:
        raise _err("this value is nil, which is not a word", form)
    elif isinstance(value, (list, tuple, set, frozenset, dict)):
        raise _err("this value is a collection; splice it with ~@ to get several words", form)
    elif isinstance(value, Regex):
        raise _err("a regular expression is not a shell word; write its pattern as a string", form)
    else:  # a function, a node, a spec...: its Python text would reach the shell
        what = value.describe() if hasattr(value, "describe") else "this value"
        hint = getattr(value, "text_hint", None)
        raise _err(f"{what} is not a shell word (strings, numbers, keywords and symbols are)"
                   + (f"; {hint}" if hint else ""), form)
    _check_nul(text, form)
    return text


_STDOUT_REDIRECTS = re.compile(r"(1?>>?|&>>?|1?>&[0-9]+)\Z")
_DEV_NULL = A.Redirect(">", A.lit("/dev/null"))


def _quiet(stmt: A.Stmt) -> A.Stmt:
    """The statement with its commands' standard output discarded (a pipeline's last
    command; the others feed the pipe), unless a command redirects it itself. Output that
    commands capture (`@(...)`) is not touched; standard error still shows."""
    if isinstance(stmt, A.Command):
        if any(_STDOUT_REDIRECTS.match(r.op) for r in stmt.redirects):
            return stmt
        # first, so that a 2>&1 written after it sends standard error to /dev/null as well
        return A.Command(stmt.words, (_DEV_NULL, *stmt.redirects), stmt.span, stmt.external,
                         stmt.function_call)
    if isinstance(stmt, A.Print):
        if any(_STDOUT_REDIRECTS.match(r.op) for r in stmt.redirects):
            return stmt
        return A.Print(stmt.words, stmt.newline, (_DEV_NULL, *stmt.redirects))
    if isinstance(stmt, A.Block):
        return A.Block(tuple(_quiet(s) for s in stmt.stmts))
    if isinstance(stmt, A.Group):
        return A.Group(_quiet(stmt.body))
    if isinstance(stmt, A.Not):
        return A.Not(_quiet(stmt.body))
    if isinstance(stmt, A.AndOr):
        return A.AndOr(stmt.op, tuple(_quiet(s) for s in stmt.items))
    if isinstance(stmt, A.Pipeline):
        return A.Pipeline((*stmt.items[:-1], _quiet(stmt.items[-1])))
    return stmt


def _data_form(value: object, span: Span | None) -> Form:
    """Spec data back as a form: a list of a symbol and arguments is a call. Vectors and lists
    are one type in spec data, so every sequence becomes a list."""
    if isinstance(value, (Symbol, Keyword)):
        return value
    if isinstance(value, tuple):
        return ListForm(tuple(_data_form(v, span) for v in value), span)
    if isinstance(value, dict):
        return MapForm(tuple(_data_form(x, span) for kv in value.items() for x in kv), span)
    if isinstance(value, (frozenset, set)):
        return SetForm(tuple(_data_form(v, span) for v in sorted(value, key=str)), span)
    return Atom(value, span)


# Commands of the shell itself (no program starts, so no process shows its arguments) that
# may take a secret; command, exec, env and the like start a program with them, and are not.
_BUILTINS = frozenset(("printf", "echo", "test", "[", "read", "export", "local", "readonly",
                       "declare", "typeset", "set", "unset", ":", "true", "false", "return",
                       "exit", "shift", "cd", "umask", "print", "Write-Output", "Write-Host"))
_CMDLET = re.compile(r"[A-Z][A-Za-z]*-[A-Z][A-Za-z]*\Z")   # PowerShell's Verb-Noun: in-process


def _is_secret_part(part: A.Part) -> bool:
    return type(part) is A.Var and part.name.startswith(SECRET_VAR)


def _check_nul(text: str, form: object) -> None:
    if "\0" in text:
        raise _err("a shell value cannot contain a NUL byte", form)


def _merge_lits(parts: list[A.Part]) -> tuple[A.Part, ...]:
    merged: list[A.Part] = []
    for p in parts:
        if isinstance(p, A.Lit) and merged and isinstance(merged[-1], A.Lit):
            merged[-1] = A.Lit(merged[-1].text + p.text)
        else:
            merged.append(p)
    return tuple(merged) or (A.Lit(""),)


_TRUE = A.Command((A.lit("true"),))
_FALSE = A.Command((A.lit("false"),))
_INT = re.compile(r"-?[0-9]+\Z")
_NUMERIC = {"-eq": int.__eq__, "-ne": int.__ne__, "-lt": int.__lt__, "-gt": int.__gt__,
            "-le": int.__le__, "-ge": int.__ge__}


def _fold_test(test: A.Test) -> bool | None:
    """The result of a test whose operands are all literal, if the filesystem plays no part."""
    values = [w.literal for w in test.args]
    if any(v is None for v in values):
        return None
    if test.op in ("-z", "-n"):
        return (values[0] == "") == (test.op == "-z")
    if test.op in ("=", "!="):
        return (values[0] == values[1]) == (test.op == "=")
    if test.op in _NUMERIC and all(_INT.match(v) for v in values):
        return _NUMERIC[test.op](int(values[0]), int(values[1]))
    return None


def _constant(stmt: A.Stmt) -> bool | None:
    if stmt is _TRUE or stmt is _FALSE:
        return stmt is _TRUE
    if isinstance(stmt, A.Not):
        inner = _constant(stmt.body)
        return None if inner is None else not inner
    return None


def _pasted_delimiter(args, i) -> bool:
    """`("cut" ... -d "' '")`: Pallet pasted the string into the script, so cut's delimiter was
    the one character inside the quotes. Only there: cut takes one character, so the three
    characters could never have been meant (every other string is exactly its text)."""
    arg = args[i]
    return (type(arg) is Atom and type(arg.value) is str and bool(_SINGLE_QUOTED.match(arg.value))
            and i > 0
            and isinstance(args[i - 1], (Symbol, Atom))
            and getattr(args[i - 1], "name", getattr(args[i - 1], "value", None)) == "-d")


def _head(form: object) -> str | None:
    if isinstance(form, ListForm) and form.items and isinstance(form.items[0], Symbol):
        return form.items[0].name
    return None


def _redirect_op(form: Form) -> str | None:
    text = (form.name if isinstance(form, Symbol)
            else form.value if isinstance(form, Atom) and isinstance(form.value, str) else None)
    if text is not None and (text in _REDIRECTS_WITH_TARGET or _FD_DUP.match(text)):
        return text
    return None


def _specialisers(spec: Form) -> tuple[frozenset[str], ...]:
    if isinstance(spec, Keyword):
        return () if spec.name == "default" else (frozenset({spec.name}),)
    if isinstance(spec, SetForm):
        return (_alternatives(spec),)
    if isinstance(spec, VectorForm):
        out = []
        for item in spec.items:
            if isinstance(item, Keyword):
                out.append(frozenset({item.name}))
            elif isinstance(item, SetForm):
                out.append(_alternatives(item))
            else:
                raise _err(f"a specialiser is a keyword or a set of keywords, found {show(item)}", item)
        return tuple(out)
    raise _err("defimpl needs :default, a keyword, a vector or a set of specialisers", spec)


def _alternatives(spec: SetForm) -> frozenset[str]:
    for item in spec.items:
        if not isinstance(item, Keyword):
            raise _err(f"a specialiser is a keyword, found {show(item)}", item)
    return frozenset(k.name for k in spec.items)


_STATEMENTS = {
    "do": Lowering._do, "script": Lowering._script, "group": Lowering._group,
    "if": Lowering._if, "if-not": Lowering._if_not, "when": Lowering._when,
    "when-not": Lowering._when_not, "while": Lowering._while, "case": Lowering._case,
    "doseq": Lowering._doseq, "var": Lowering._assign, "set!": Lowering._assign,
    "local": Lowering._assign, "export": Lowering._assign, "aset": Lowering._aset,
    "defn": Lowering._defn, "return": Lowering._return, "println": Lowering._println,
    "print": Lowering._println, "heredoc": Lowering._heredoc, "raw": Lowering._raw,
    "chain-and": Lowering._chain, "chain-or": Lowering._chain, "and": Lowering._chain,
    "or": Lowering._chain, "pipe": Lowering._pipe, "not": Lowering._not,
    "defscript": Lowering._defscript, "defimpl": Lowering._defimpl,
    "unquote": Lowering._unquote_stmt, "unquote-splicing": Lowering._splice_stmt,
    "&&": Lowering._chain, "||": Lowering._chain,
    **pallet_forms.STATEMENTS,
    **{name: Lowering._test for name in (*_UNARY_TESTS, *_BINARY_TESTS)},
}
