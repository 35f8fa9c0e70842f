"""The script AST: what a Stevedore program means, independent of the shell it is emitted for.

Lowering (lower.py) builds these nodes from forms; each emitter (emit_posix.py for bash and sh,
emit_powershell.py) turns them into text. Values are already decided here: a `Lit` is exact
text that must reach the program byte for byte, and only `RawPart`/`Raw` escape quoting.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Union

from pallet.errors import Span

# ---- word parts: the pieces one shell word is made of -------------------------------------


@dataclass(frozen=True)
class Lit:
    """Literal text, quoted by the emitter so that it arrives unchanged."""

    text: str


@dataclass(frozen=True)
class Var:
    """A parameter expansion: `${name}`, or `${name<op>arg}` for op in VAR_OPS."""

    name: str  # a valid shell name, or a positional parameter number as text
    op: str | None = None
    arg: "Word | None" = None


# Stevedore's deref options and the POSIX operator each one means.
VAR_OPS = {
    "default": "-",
    "default-value": ":-",
    "default-assign": "=",
    "default-assign-value": ":=",
    "alternate": "+",
    "alternate-value": ":+",
    "error": "?",
    "error-value": ":?",
}


@dataclass(frozen=True)
class CmdSub:
    """The output of a script, `$(...)`."""

    body: "Block"


@dataclass(frozen=True)
class ArrayRef:
    """One element of an array, `${a[i]}`."""

    name: str
    index: "ArithExpr"


@dataclass(frozen=True)
class ArrayAll:
    """Every element of an array, each its own word, `"${a[@]}"`."""

    name: str


@dataclass(frozen=True)
class AllArgs:
    """Every argument of the enclosing function after its fixed ones (its `& rest`
    parameter), each its own word: `"$@"` in the shells."""


@dataclass(frozen=True)
class Arith:
    """An arithmetic expansion, `$(( ... ))`."""

    expr: "ArithExpr"


@dataclass(frozen=True)
class RawPart:
    """Text emitted exactly as written: the `(raw ...)` escape hatch inside a word."""

    text: str


@dataclass(frozen=True)
class MapRef:
    """One value of an associative array (Stevedore's maps), `${m[key]}`."""

    name: str
    key: "Word"


Part = Union[Lit, Var, CmdSub, ArrayRef, ArrayAll, AllArgs, Arith, RawPart, MapRef]


@dataclass(frozen=True)
class Word:
    """One shell word made of parts, never split or globbed (except for RawPart text)."""

    parts: tuple[Part, ...]
    # The text if the word is made of literal parts only. Computed once: lowering and the
    # emitters ask for it on every word (functools.cached_property would take a lock).
    literal: str | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = self.parts
        if len(parts) == 1:  # the common case, made thousands of times per bundle
            text = parts[0].text if type(parts[0]) is Lit else None  # type: ignore[union-attr]
        elif all(type(p) is Lit for p in parts):
            text = "".join(p.text for p in parts)  # type: ignore[union-attr]
        else:
            text = None
        self.__dict__["literal"] = text  # frozen: set once, here


def lit(text: str) -> Word:
    return Word((Lit(text),))


# ---- arithmetic -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArithNum:
    value: int


@dataclass(frozen=True)
class ArithVar:
    name: str


@dataclass(frozen=True)
class ArithOp:
    op: str  # one of + - * / %
    operands: tuple["ArithExpr", ...]


ArithExpr = Union[ArithNum, ArithVar, ArithOp]

# ---- statements -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Redirect:
    op: str  # >, >>, <, 2>, 2>>, &>, 2>&1 ...
    target: Word | None  # None for fd duplication such as 2>&1


# Standard output to standard error (`>&2`): a Print's redirections for a message.
TO_STDERR = (Redirect(">&2", None),)


@dataclass(frozen=True)
class Command:
    words: tuple[Word, ...]
    redirects: tuple[Redirect, ...] = ()
    span: Span | None = field(default=None, compare=False, repr=False)
    # The program of that name, never a function the script defines (`command ls` in the
    # shells): a string command named like a script function, in that function's body say.
    external: bool = False
    # A call of one of the script's functions, not a program (see the bash pipeline's SIGPIPE).
    function_call: bool = False


@dataclass(frozen=True)
class Test:
    """A test: unary (`-e`, `-d`, `-h`, `-r`, `-w`, `-x`, `-z`, `-n`, `-f`) or binary
    (`=`, `!=`, `-eq`, `-ne`, `-lt`, `-gt`, `-le`, `-ge`)."""

    op: str
    args: tuple[Word, ...]


@dataclass(frozen=True)
class Not:
    body: "Stmt"


@dataclass(frozen=True)
class AndOr:
    op: str  # "&&" or "||"
    items: tuple["Stmt", ...]


@dataclass(frozen=True)
class Pipeline:
    items: tuple["Stmt", ...]


@dataclass(frozen=True)
class Block:
    """A sequence of statements (`do`)."""

    stmts: tuple["Stmt", ...]


@dataclass(frozen=True)
class Group:
    """A brace group, `{ ...; }`."""

    body: Block


@dataclass(frozen=True)
class If:
    cond: "Stmt"
    then: Block
    else_: Block | None = None


@dataclass(frozen=True)
class While:
    cond: "Stmt"
    body: Block


@dataclass(frozen=True)
class For:
    var: str
    items: tuple[Word, ...]
    body: Block


@dataclass(frozen=True)
class ForLines:
    """A loop over the lines of a command's output (Stevedore's `(doseq [x @(cmd)] ...)`).
    The output is taken first, so a failing command stops the script as any other would."""

    var: str
    command: "Block"
    body: Block


@dataclass(frozen=True)
class CaseClause:
    patterns: tuple[Word, ...]  # literal patterns; empty means the default (`*`)
    body: Block


@dataclass(frozen=True)
class Case:
    subject: Word
    clauses: tuple[CaseClause, ...]


@dataclass(frozen=True)
class Assign:
    """`kind` is var, set, local or export; var and set mean the same in the shells."""

    kind: str
    name: str
    value: Word | None


@dataclass(frozen=True)
class ArrayAssign:
    name: str
    items: tuple[Word, ...]


@dataclass(frozen=True)
class ArraySet:
    name: str
    index: ArithExpr
    value: Word


@dataclass(frozen=True)
class MapAssign:
    """An associative array made from pairs (bash 4 and PowerShell; no POSIX sh)."""

    name: str
    pairs: tuple[tuple[Word, Word], ...]
    local: bool = False  # declared in the function being defined
    in_function: bool = False  # declared inside a function, yet the script's (as var is)


@dataclass(frozen=True)
class MapSet:
    name: str
    key: Word
    value: Word


@dataclass(frozen=True)
class Alias:
    """`alias name='command'`: the command's text, quoted as one word."""

    name: str
    command: "Stmt"


@dataclass(frozen=True)
class FuncDef:
    name: str
    params: tuple[str, ...]
    body: Block
    rest: str | None = None  # the name of an `& rest` parameter, reached as AllArgs


@dataclass(frozen=True)
class Return:
    value: Word | None = None


@dataclass(frozen=True)
class Print:
    """Print the words joined by single spaces, with or without a final newline, to standard
    output or where its redirections send it."""

    words: tuple[Word, ...]
    newline: bool = True
    redirects: tuple[Redirect, ...] = ()


@dataclass(frozen=True)
class Heredoc:
    """Write `content` (exact text) to the file at `path`."""

    path: Word
    content: str
    append: bool = False


@dataclass(frozen=True)
class Raw:
    """A line of script emitted as written."""

    text: str


@dataclass(frozen=True)
class Comment:
    text: str


Stmt = Union[Command, Test, Not, AndOr, Pipeline, Block, Group, If, While, For, ForLines, Case,
             Assign, ArrayAssign, ArraySet, MapAssign, MapSet, Alias, FuncDef, Return, Print,
             Heredoc, Raw, Comment]


@dataclass(frozen=True)
class Script:
    """A whole program: the script functions it uses (hoisted, in order of first use) and
    its body."""

    functions: tuple[FuncDef, ...]
    body: Block


def walk(node):
    """Every AST node under `node` (itself first), depth first."""
    yield node
    if dataclasses.is_dataclass(node):
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            if isinstance(value, tuple):
                for item in value:
                    yield from walk(item)
            elif dataclasses.is_dataclass(value):
                yield from walk(value)
