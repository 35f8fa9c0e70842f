"""The PowerShell emitter. No PowerShell runs here, so the checks are: exact text for
representative cases, every emitted script parsing with tree-sitter-powershell without
ERROR or MISSING nodes, and literals decoding (by PowerShell's quoting rules) to their text."""
from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pallet.checks import _powershell_parser, parse_powershell
from pallet.errors import PalletError
from pallet.stevedore.ast import (AllArgs, AndOr, Arith, ArithNum, ArithOp, ArithVar, ArrayAll,
                                  ArrayAssign, ArrayRef, ArraySet, Assign, Block, Case,
                                  CaseClause, CmdSub, Command, Comment, For, FuncDef, Group,
                                  Heredoc, If, Lit, Not, Pipeline, Print, Raw, RawPart, Redirect,
                                  Return, Script, Var, While, Word, lit)
from pallet.stevedore.ast import Test as Check  # "Test..." names are for pytest
from pallet.stevedore.emit_powershell import emit_powershell, ps_quote

SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"


def W(*parts) -> Word:
    """A word from parts; plain strings are literals."""
    return Word(tuple(Lit(p) if isinstance(p, str) else p for p in parts))


def cmd(*words, redirects=()) -> Command:
    return Command(tuple(w if isinstance(w, Word) else lit(w) for w in words), tuple(redirects))


def emit(*stmts, functions=(), header=False) -> str:
    text = emit_powershell(Script(tuple(functions), Block(tuple(stmts))), header=header)
    assert parse_powershell(text) == [], text
    return text


def ps_unquote(literal: str) -> str:
    """The value of one PowerShell string literal, by PowerShell's rules (not the emitter's)."""
    if literal.startswith("@'\n") and literal.endswith("\n'@"):
        return literal[3:-3]
    if literal[0] in SINGLE_QUOTES:  # any quote pair stands for its second quote
        return re.sub(f"[{SINGLE_QUOTES}]([{SINGLE_QUOTES}])", r"\1", literal[1:-1])
    assert literal[0] == '"' and literal[-1] == '"', literal
    escapes = {"n": "\n", "r": "\r", "t": "\t", "0": "\0", "a": "\a", "b": "\b", "f": "\f",
               "v": "\v"}
    return re.sub(r"`(.)|\$\(\[char\]0x([0-9a-f]{2})\)",
                  lambda m: chr(int(m[2], 16)) if m[2] else escapes.get(m[1], m[1]),
                  literal[1:-1], flags=re.S)


# ---- quoting ------------------------------------------------------------------------------


def test_ps_quote_doubles_every_single_quote():
    assert ps_quote("it's") == "'it''s'"
    assert ps_quote("") == "''"
    assert ps_quote("a\u2018b\u2019c\u201ad\u201be") == "'a\u2018\u2018b\u2019\u2019c\u201a\u201ad\u201b\u201be'"
    assert ps_quote('$x `y` "z" \u201cq\u201d') == '\'$x `y` "z" \u201cq\u201d\''
    assert ps_quote("a\0b") == '"a`0b"'  # NUL only fits in a double-quoted literal


@given(st.text())
def test_ps_quote_is_one_literal_of_the_text(text):
    quoted = ps_quote(text)
    data = quoted.encode()
    tree = _powershell_parser().parse(data)
    assert not tree.root_node.has_error
    node = tree.root_node
    while node.type != "string_literal":  # the program is that one literal and nothing else
        assert len(node.children) == 1 and node.end_byte - node.start_byte == len(data)
        node = node.children[0]
    assert (node.start_byte, node.end_byte) == (0, len(data))
    assert ps_unquote(quoted) == text


TEXT = st.one_of(st.text(), st.from_regex(r"-{0,2}[A-Za-z0-9_./-]{1,8}", fullmatch=True), st.sampled_from(
    ["", "-n", "--%", "--", "-x", "1e5", "0x10", "007", "if", "'@", "\n'@\n", "$HOME", "${x}",
     "`n", '"', "\u201c", "\u2019", "a b", "\r\n", "#c", "@a", "a,b", "(x)", "{x}", "é✓"]))


@given(TEXT)
def test_any_literal_word_parses_and_keeps_its_text(text):
    out = emit(Assign("var", "x", lit(text)))
    assert out.startswith("$x = ") and out.endswith("\n")
    assert ps_unquote(out[len("$x = "):-1]) == text
    out = emit(Print((lit(text), lit(text))))
    assert out.startswith("[Console]::Out.Write(") and out.endswith(")\n")
    assert ps_unquote(out[len("[Console]::Out.Write("):-2]) == f"{text} {text}\n"


@given(TEXT, TEXT)
def test_any_literal_in_a_command_parses(name, arg):
    emit(cmd(name, arg, "-y", arg), cmd("f", arg), Print((lit(name), lit(arg))),
         FuncDef("f", ("a",), Block(())))


@given(st.lists(st.one_of(TEXT.map(Lit), st.sampled_from(
    [Var("x"), Var("HOME"), Var("1"), CmdSub(Block((cmd("hostname"),))), ArrayAll("a"),
     Arith(ArithOp("+", (ArithVar("x"), ArithNum(1)))), ArrayRef("a", ArithNum(0)),
     Var("x", "default-value", lit("d'q\"")), AllArgs()])), max_size=5))
def test_any_word_parses(parts):
    w = Word(tuple(parts))
    emit(Assign("var", "x", w), cmd("echo", w), Print((w, w)), Check("=", (w, w)),
         If(Check("-e", (w,)), Block((cmd("run", w),))))


@given(st.text())
def test_heredoc_content_is_exact(content):
    out = emit(Heredoc(lit("f"), content))
    literal = out.split("GetUnresolvedProviderPathFromPSPath('f'), ", 1)[1][:-2]
    assert ps_unquote(literal) == content


# ---- whole scripts, exactly -------------------------------------------------------------


def test_header_and_the_talk_example():
    loop = For("x", (lit("a"), lit("b"), lit("c")), Block((Print((W(Var("x")),)),)))
    assert emit(loop, header=True) == """\
# Generated by Pallet: edit the Stevedore source, not this script.
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$PSNativeCommandUseErrorActionPreference = $true  # a failing program stops the script, like set -e

foreach ($x in @('a', 'b', 'c')) {
    [Console]::Out.Write("${x}`n")
}
"""


def test_command_words():
    out = emit(cmd("printf", "[%s]", "plain", "two words", "42", "-n", "--yes", "--", "it's",
                   "$HOME", W(ArrayAll("a")), W("a", Var("b"), "\n")),
               cmd("if", "x"), cmd("/usr/bin/env", "x"), cmd(W(Var("tool")), "x"))
    assert out == (
        "printf '[%s]' plain 'two words' '42' -n --yes '--' 'it''s' '$HOME' @a \"a${env:b}`n\"\n"
        "& 'if' x\n& '/usr/bin/env' x\n& $env:tool x\n")


def test_function_arguments_are_never_parameter_names():
    f = FuncDef("f", ("a", "args"), Block((Print((W(Var("a")), W(Var("args")))),)))
    assert emit(cmd("f", "-x", "y"), functions=(f,)) == """\
function f {
    param($a, $args_)
    [Console]::Out.Write("${a} ${args_}`n")
}

f '-x' y
"""


def test_command_as_condition_and_chains():
    out = emit(If(AndOr("&&", (Check("-d", (lit("/tmp"),)),
                                cmd("grep", "-q", "x", "f", redirects=[Redirect(">", lit("/dev/null"))]))),
                  Block((cmd("true"),)), Block((If(Not(cmd("false")), Block(())),))),
               AndOr("||", (cmd("which", "apt"), cmd("exit", "3"))),
               While(cmd("true"), Block((Raw("break"),))))
    assert out == """\
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
}

if ((Test-Path -LiteralPath /tmp -PathType Container) -and (Test-PalletCommand { grep -q x f > $null })) {
    true
} elseif (-not ($false)) {
}
if (-not (Test-PalletCommand { which apt })) {
    exit 3
}
while ($true) {
    break
}
"""


def test_command_substitution_and_arithmetic():
    sub = CmdSub(Block((Pipeline((cmd("printf", "b\na\n"), cmd("sort"))),)))
    div = Arith(ArithOp("/", (ArithOp("-", (ArithVar("n"),)), ArithNum(2))))
    out = emit(Assign("var", "n", W(sub)), Print((W("<", sub, ">"), W(div))))
    assert out.split("\n\n", 1)[1] == (
        "$n = (Invoke-PalletCapture { printf \"b`na`n\" | sort })\n"
        "[Console]::Out.Write(\"<$(Invoke-PalletCapture { printf \"b`na`n\" | sort })> "
        "$([long][Math]::Truncate([decimal](-[long]$n) / 2))`n\")\n")
    assert "TrimEnd([char]10)" in out  # the shell drops the final newlines of $(...)


def test_variable_operations():
    ops = [Var("v", op, lit("w")) for op in ("default", "default-value", "default-assign",
                                             "alternate-value", "error")]
    out = emit(Assign("var", "v", lit("")), Print(tuple(W(o) for o in ops)),
               Print((W(Var("u", "error-value")),)))
    assert out == (
        "$v = ''\n"
        "[Console]::Out.Write(\"$(if (Test-Path variable:v) { $v } else { 'w' }) "
        "$(if ((Test-Path variable:v) -and ('' -cne $v)) { $v } else { 'w' }) "
        "$(if (-not (Test-Path variable:v)) { $v = 'w' }; $v) "
        "$(if ((Test-Path variable:v) -and ('' -cne $v)) { 'w' } else { '' }) "
        "$(if (Test-Path variable:v) { $v } else { throw ('v: ' + 'w') })`n\")\n"
        "[Console]::Out.Write(\"$(if ((Test-Path env:u) -and ('' -cne $env:u)) { $env:u } "
        "else { throw 'u: parameter null or not set' })`n\")\n")


def test_tests():
    p = lit("p q")
    ops = [Check(op, (p,)) for op in ("-e", "-f", "-h", "-r", "-w", "-x", "-z", "-n")]
    ops += [Check(op, (W(Var("a")), lit("10"))) for op in ("=", "!=", "-eq", "-ne", "-lt", "-ge")]
    out = emit(*(If(t, Block((cmd("ok"),))) for t in ops))
    heads = [line for line in out.splitlines() if line.startswith("if")]
    assert heads[0] == "if (Test-Path -LiteralPath 'p q') {"
    assert heads[1] == "if (Test-Path -LiteralPath 'p q' -PathType Leaf) {"
    assert "SymbolicLink" in heads[2] and "ReadOnly" in heads[4] and "Application" in heads[5]
    assert heads[6:] == [
        "if ([string]::IsNullOrEmpty('p q')) {", "if (-not [string]::IsNullOrEmpty('p q')) {",
        "if ($env:a -ceq '10') {", "if ($env:a -cne '10') {", "if ([long]$env:a -eq 10) {",
        "if ([long]$env:a -ne 10) {", "if ([long]$env:a -lt 10) {", "if ([long]$env:a -ge 10) {"]
    # as a statement a test only sets the status, as `[ ... ]` does
    assert emit(Check("-e", (p,))) == (
        "$global:LASTEXITCODE = if (Test-Path -LiteralPath 'p q') { 0 } else { 1 }\n")


def test_case():
    out = emit(Case(W(Var("x")), (
        CaseClause((lit("a*"),), Block((Print((lit("star"),)),))),
        CaseClause((lit("b"), W(Var("y"))), Block(())),
        CaseClause((), Block((Print((lit("other"),)),))))), Assign("var", "x", lit("")))
    assert out == """\
switch -CaseSensitive -Exact ($x) {
    'a*' {
        [Console]::Out.Write("star`n")
        break
    }
    { $_ -ceq 'b' -or $_ -ceq $env:y } {
        break
    }
    default {
        [Console]::Out.Write("other`n")
    }
}
$x = ''
"""
    # a default before other clauses must still win in its place, as `*)` does
    early = emit(Case(lit("z"), (CaseClause((), Block(())), CaseClause((lit("z"),), Block(())))))
    assert "    { $true } {" in early and "default" not in early


def test_heredoc():
    out = emit(Heredoc(lit("a.txt"), "line $x `y`\n\n"), Heredoc(W(Var("d"), "/b"), "x\n'@ y", True),
               Heredoc(lit("c"), ""))
    assert out == """\
[System.IO.File]::WriteAllText($ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath('a.txt'), @'
line $x `y`


'@)
[System.IO.File]::AppendAllText($ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath("${env:d}/b"), "x`n'@ y")
[System.IO.File]::WriteAllText($ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath('c'), @'

'@)
"""


def test_functions_scopes_and_status():
    f = FuncDef("f", ("a",), Block((
        Assign("local", "l", W(Var("a"))),
        Assign("set", "g", W(Var("l"))),
        If(Assign("set", "l", lit("in condition")), Block(())),
        If(Assign("set", "g", lit("in condition")), Block(())),
        For("x", (W(AllArgs()),), Block((Return(lit("2")),))),
        AndOr("&&", (Check("-n", (W(Var("a")),)), cmd("ok"))))), rest="more")
    out = emit(f, If(Assign("var", "top", lit("t")), Block(())))
    assert out.split("\n\n", 1)[1] == """\
function f {
    param($a)
    $more = $args
    $l = $a
    $script:g = $l
    if (Test-PalletCommand { Set-Variable -Name l -Scope 2 -Value ('in condition') }) {
    }
    if (Test-PalletCommand { $script:g = 'in condition' }) {
    }
    foreach ($x in $more) {
        $global:LASTEXITCODE = 2
        return
    }
    if (-not [string]::IsNullOrEmpty($a)) {
        ok
    } else {
        $global:LASTEXITCODE = 1
    }
}
if (Test-PalletCommand { $script:top = 't' }) {
}
"""


def test_redirects_and_pipelines():
    out = emit(cmd("sort", redirects=[Redirect("<", lit("in")), Redirect(">", lit("out")),
                                      Redirect("2>>", lit("err")), Redirect("2>&1", None)]),
               cmd("echo", "e", redirects=[Redirect(">&2", None)]),
               Pipeline((Print((lit("b"), lit("a"))), cmd("sort"),
                         cmd("wc", redirects=[Redirect("<", lit("f"))]),
                         Group(Block((cmd("cat"),)))), ), header=True)
    assert "$PSDefaultParameterValues['Out-File:Encoding'] = 'utf8'" in out
    assert out.split("\n\n", 1)[1] == (
        "Get-Content -Encoding UTF8 -LiteralPath in | sort > out 2>> err 2>&1\n"
        "echo e | ForEach-Object { [Console]::Error.Write([string]$_ + \"`n\") }\n"
        "\"b a\" | sort | & { Get-Content -Encoding UTF8 -LiteralPath f | wc } | & { cat }\n")


def test_arrays_comments_raw():
    out = emit(ArrayAssign("a", (lit("x"), lit("y z"))), ArrayAssign("b", (lit("0"), W(ArrayAll("a")))),
               ArraySet("a", ArithVar("i"), lit("w")), Print((W(ArrayRef("a", ArithNum(1))),)),
               Comment("two\nlines"), Raw("Write-Host 'as is'"))
    assert out == """\
$a = @('x', 'y z')
$b = @('0'; $a)
if ([long]$env:i -ge $a.Count) { $a += @('') * ([long]$env:i - $a.Count + 1) }
$a[[long]$env:i] = 'w'
[Console]::Out.Write("$($a[1])`n")
# two
# lines
Write-Host 'as is'
"""


def test_names_that_clash_with_automatic_variables_are_renamed():
    out = emit(Assign("var", "home", lit("h")), Assign("var", "HOME2", W(Var("HOME"))),
               Assign("var", "Home_", lit("x")), Print((W(Var("home")), W(Var("PATH")))))
    assert out == ("$home_ = 'h'\n$HOME2 = $HOME\n$Home__ = 'x'\n"
                   "[Console]::Out.Write(\"${home_} ${env:PATH}`n\")\n")


def test_every_node_parses_nested_everywhere():
    inner = (cmd("a"), Pipeline((cmd("b"), cmd("c"))), Print((lit("p"),), newline=False),
             Heredoc(lit("h"), "x\n"), Comment("c"), Raw("$null = 1"), Group(Block((cmd("g"),))),
             AndOr("||", (cmd("d"), cmd("e"))), Not(cmd("n")), Check("-z", (lit(""),)),
             Assign("export", "E", lit("v")), Assign("export", "PATH", None),
             Return(W(Var("r"))), Return(), FuncDef("inner", (), Block(())))
    for stmt in inner:
        body = Block((stmt,))
        emit(If(stmt, body, body), While(stmt, body), For("i", (lit("1"),), body),
             Case(lit("x"), (CaseClause((lit("x"),), body),)), Pipeline((stmt, stmt, stmt)),
             AndOr("&&", (stmt, stmt)), Assign("var", "s", W(CmdSub(body))),
             FuncDef("f", ("p",), body), stmt)


@pytest.mark.parametrize("stmt, message", [
    (cmd("a", redirects=[Redirect("3>&2", None)]), "no redirection '3>&2'"),
    (Command((W(ArrayAll("a")),)), "cannot be a whole array"),
    (Check("-s", (lit("f"),)), "unknown test"),
    (Assign("var", "x", W(Var("1", "default-assign", lit("v")))), "positional parameter"),
    (FuncDef("if", (), Block(())), "invalid function name"),
])
def test_what_powershell_cannot_say_is_a_pallet_error(stmt, message):
    with pytest.raises(PalletError, match=message):
        emit_powershell(Script((), Block((stmt,))))
