"""Quoting is the security boundary: any value written in a script reaches the program byte
for byte, in every way a value can be written, under the real bash and dash."""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pallet.grammar.forms import show, Atom
from pallet.grammar.reader import read
from pallet.stevedore import Target, compile_forms
from pallet.stevedore.emit_posix import quote_literal
from pallet.stevedore.lower import _redirect_op

from conftest import run_shell, shellcheck_exe

# Everything a shell word can carry: NUL is the one byte no shell argument can hold.
SHELL_TEXT = st.text(alphabet=st.characters(blacklist_characters="\x00",
                                            blacklist_categories=("Cs",)))
NASTY = st.sampled_from(["", "-n", "-e", "--", "'", '"', "$HOME", "${x}", "`id`", "$(id)", "\\",
                         "\\n", "*", "?", "[a]", "~", "~root", "a b", " lead", "trail ", "\n",
                         "\n\n", "\t", "!", "!!", "#c", ";", "&", "|", ">", "<", "{a,b}", "é✓",
                         "EOF", "EOF\nEOF_1", "'\"'\"", "a=b", "%s", "%%", "\r\n", "}", "\"}"])
VALUES = st.one_of(NASTY, SHELL_TEXT, st.lists(NASTY, max_size=4).map("".join))

SEP = "\x00"


def _program(value: str, path: str) -> str:
    """Source text writing `value` every way the language allows, NUL-separated."""
    v = show(Atom(value))  # the value as a string literal of the language
    # LANGUAGE.md makes the exact strings ">", ">>", "2>&1"... redirections in a command's
    # and println's arguments (the talk writes ">>"); as a plain argument such a value is
    # written with str.
    arg = f"(str {v})" if _redirect_op(Atom(value)) else v
    return f"""
(printf "%s" {arg})
(printf "\\\\0")
(printf "%s" ~{v})
(printf "\\\\0")
(var x {v})
(printf "%s" (str "<" @x {v} ">"))
(printf "\\\\0")
(println {arg})
(printf "\\\\0")
(print (quoted {v} @x))
(printf "\\\\0")
(printf "%s" (deref never_set :default {v}))
(printf "\\\\0")
(printf "%s" @(printf "%s" {arg}))
(heredoc "{path}" {v})
"""


def _expected(value: str) -> bytes:
    parts = [value, value, f"<{value}{value}>", value + "\n", f"{value} {value}", value,
             value.rstrip("\n")]
    return SEP.join(parts).encode()


@pytest.mark.parametrize("shell", ["bash", "sh"])
@given(value=VALUES)
def test_any_value_arrives_byte_for_byte(shell, value):
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "out.txt")
        forms = read(_program(value, path), "prop.pallet")
        script = compile_forms(forms, Target(shell=shell))
        result = run_shell(shell, script, cwd=tmp)
        assert result.returncode == 0, (script, result.stderr)
        assert result.stdout == _expected(value), script
        assert Path(path).read_bytes() == value.encode(), script


@given(value=VALUES)
def test_quote_literal_is_one_exact_word(value):
    out = subprocess.run(["bash", "-c", f"printf '%s\\0' {quote_literal(value)}"],
                         capture_output=True)
    assert out.stdout == value.encode() + b"\0"


@settings(max_examples=30)
@given(value=VALUES)
def test_literals_never_upset_shellcheck(value):
    """Any literal, in any position, leaves a script shellcheck has nothing to say about."""
    v = show(Atom(value))
    arg = f"(str {v})" if _redirect_op(Atom(value)) else v  # as in _program
    source = f"""(var x {v}) (println {arg} @x) (printf "%s" (str {v} @x))
                 (if (= @x {v}) (println "same")) (heredoc "/tmp/pallet-sc" {v})"""
    for shell in ("bash", "sh"):
        script = compile_forms(read(source, "sc.pallet"), Target(shell=shell))
        result = subprocess.run([shellcheck_exe(), "-s", shell, "-"], input=script.encode(),
                                capture_output=True)
        assert result.returncode == 0, (script, result.stdout.decode())


@settings(max_examples=60)
@given(key=VALUES, value=VALUES)
def test_map_keys_and_values_arrive_byte_for_byte(key, value):
    """A map (bash associative array) holds any non-empty key and any value exactly, whether
    made with var, set with assoc! or read with get."""
    if key == "":
        return  # bash refuses an empty subscript: a compile error (tests/golden)
    k, v = show(Atom(key)), show(Atom(value))
    source = f"""(var m {{{k} {v} "other" "x"}})
(printf "%s" (get m {k}))
(printf "\\\\0")
(assoc! m {k} (str {v} "+"))
(printf "%s" (get m {k}))
(printf "\\\\0")
(printf "%s" (get m "other"))"""
    script = compile_forms(read(source, "map.pallet"), Target(shell="bash"))
    result = run_shell("bash", script)
    assert result.returncode == 0, (script, result.stderr)
    expected = (value if key != "other" else "x") + SEP + value + "+" + SEP + (
        value + "+" if key == "other" else "x")
    assert result.stdout == expected.encode(), script
