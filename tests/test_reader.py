"""The reader: every piece of LANGUAGE.md's reader syntax, spans, and its syntax errors."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pallet.errors import PalletError
from pallet.grammar.forms import (Atom, Keyword, ListForm, MapForm, Regex, SetForm, Symbol,
                                  VectorForm, show)
from pallet.grammar.reader import read

FILE = "f.pallet"


def read1(text: str):
    forms = read(text, FILE)
    assert len(forms) == 1, forms
    return forms[0]


def values(text: str) -> list:
    """The plain Python values of a text of atoms (for compact number/string cases)."""
    out = []
    for form in read(text, FILE):
        assert isinstance(form, Atom), form
        out.append(form.value)
    return out


def sym(name: str) -> Symbol:
    return Symbol(name)


# --- collections ----------------------------------------------------------------------------


def test_list_vector_map_set():
    assert read1("(a b)") == ListForm((sym("a"), sym("b")))
    assert read1("[1 2]") == VectorForm((Atom(1), Atom(2)))
    assert read1("{:a 1 :b 2}") == MapForm((Keyword("a"), Atom(1), Keyword("b"), Atom(2)))
    assert read1("#{1 2}") == SetForm((Atom(1), Atom(2)))


def test_empty_collections():
    assert read(" () [] {} #{} ", FILE) == (ListForm(()), VectorForm(()), MapForm(()),
                                             SetForm(()))


def test_map_pairs_keep_written_order():
    form = read1('{:b 2 :a "x"}')
    assert form.pairs == ((Keyword("b"), Atom(2)), (Keyword("a"), Atom("x")))


def test_nesting():
    form = read1("(f [x {:k #{y}}])")
    inner = MapForm((Keyword("k"), SetForm((sym("y"),))))
    assert form == ListForm((sym("f"), VectorForm((sym("x"), inner))))


def test_empty_text_reads_no_forms():
    assert read("", FILE) == ()
    assert read("  ; only a comment\n,,\n", FILE) == ()


# --- atoms --------------------------------------------------------------------------------


def test_strings_with_escapes():
    assert values(r'"a\nb" "t\tr\r" "q\"q" "back\\slash" "\u00e9\u20ac" ""') == [
        "a\nb", "t\tr\r", 'q"q', "back\\slash", "é€", ""]


def test_string_may_span_lines_and_hold_reader_characters():
    assert values('"one\ntwo ( [ { ; # ~ @ \' ,"') == ["one\ntwo ( [ { ; # ~ @ ' ,"]


def test_integers_and_floats_including_negative():
    got = values("0 42 -7 +3 3.5 -0.25 1.5e3 -2.0E-2")
    assert got == [0, 42, -7, 3, 3.5, -0.25, 1500.0, -0.02]
    assert [type(v) for v in got] == [int, int, int, int, float, float, float, float]


def test_keywords():
    assert read(":os-family :ns/name :a? :debian-12", FILE) == (
        Keyword("os-family"), Keyword("ns/name"), Keyword("a?"), Keyword("debian-12"))
    assert str(read1(":ns/name")) == ":ns/name"


@pytest.mark.parametrize("name", [
    "a", "a-b", "c_d", "e?", "f!", "*", "+", "-", "<", ">", "=", "<=", "->", "->>", "a.b",
    "ns/sym", "file-exists?", "set!", "*earmuffs*", "a1", "x+y", "!=", "/",
])
def test_symbols(name):
    assert read1(name) == Symbol(name)


def test_symbol_namespace():
    form = read1("java/java")
    assert (form.namespace, form.local) == ("java", "java")
    assert read1("plain").namespace is None


def test_true_false_nil():
    assert values("true false nil") == [True, False, None]
    # Only the exact words: these are symbols.
    assert read("truex nil? False", FILE) == (sym("truex"), sym("nil?"), sym("False"))


def test_redirections_read_as_symbols():
    assert read("> >> < 2> 2>> 2>&1", FILE) == tuple(map(sym, [">", ">>", "<", "2>", "2>>",
                                                           "2>&1"]))


# --- comments, commas, discard -------------------------------------------------------------


def test_comments_and_commas_are_white_space():
    assert read("; heading\n(a, b,,c) ; trailing\n;; last", FILE) == (
        ListForm((sym("a"), sym("b"), sym("c"))),)
    assert read1('"a ; not a comment"') == Atom("a ; not a comment")


def test_discard():
    assert read1("(a #_ b c)") == ListForm((sym("a"), sym("c")))
    assert read("#_ (x y) z", FILE) == (sym("z"),)
    assert read1("[#_ 1]") == VectorForm(())


# --- reader macros ------------------------------------------------------------------------


@pytest.mark.parametrize("text, head", [
    ("'x", "quote"), ("~x", "unquote"), ("~@x", "unquote-splicing"), ("@x", "deref"),
])
def test_reader_macros(text, head):
    assert read1(text) == ListForm((sym(head), sym("x")))


def test_reader_macros_on_forms():
    assert read1("'(a b)") == ListForm((sym("quote"), ListForm((sym("a"), sym("b")))))
    assert read1("@(ls -l)") == ListForm((sym("deref"), ListForm((sym("ls"), sym("-l")))))
    assert read1("~@[1]") == ListForm((sym("unquote-splicing"), VectorForm((Atom(1),))))
    assert read1("@@x") == ListForm((sym("deref"), ListForm((sym("deref"), sym("x")))))


# --- spans --------------------------------------------------------------------------------


def where(form) -> tuple[str, int, int]:
    return (form.span.file, form.span.line, form.span.column)


def test_spans_of_top_level_forms():
    forms = read("a\n  (b c)\n\n\t:k \"s\"", FILE)
    assert [where(f) for f in forms] == [
        (FILE, 1, 1), (FILE, 2, 3), (FILE, 4, 2), (FILE, 4, 5)]


def test_spans_of_nested_forms():
    form = read1("(x\n  [1 2]\n  {:a \"b\"})")
    vec, mp = form.items[1], form.items[2]
    assert where(form.items[0]) == (FILE, 1, 2)
    assert where(vec) == (FILE, 2, 3)
    assert where(vec.items[1]) == (FILE, 2, 6)
    assert where(mp) == (FILE, 3, 3)
    assert where(mp.items[1]) == (FILE, 3, 7)


def test_span_end_positions():
    form = read1("(x\n  [1 2])")
    # End columns are exclusive: one past the closing bracket.
    assert (form.span.end_line, form.span.end_column) == (2, 9)
    vec = form.items[1]
    assert (vec.span.line, vec.span.column, vec.span.end_line, vec.span.end_column) == (
        2, 3, 2, 8)


def test_span_after_multiline_string_and_comment():
    forms = read('"a\nbc" ; note\n  z', FILE)
    assert where(forms[1]) == (FILE, 3, 3)


def test_spans_of_macro_forms_and_their_targets():
    form = read1(" @x")
    assert where(form) == (FILE, 1, 2)
    assert where(form.items[1]) == (FILE, 1, 3)


def test_spans_do_not_take_part_in_equality():
    assert read1("(a b)") == read1("\n\n   (a\n b)")


# --- syntax errors ------------------------------------------------------------------------


def error_of(text: str) -> PalletError:
    with pytest.raises(PalletError) as info:
        read(text, FILE)
    return info.value


@pytest.mark.parametrize("text, location, source_line, caret, words", [
    ("(a b", "1:1", "(a b", "^", "unclosed '('"),
    ("(ok)\n  [x (y]", "2:8", "  [x (y]", "       ^", "']' closes '('"),
    ("(a))", "1:4", "(a))", "   ^", "unmatched ')'"),
    ("{:a 1\n", "1:1", "{:a 1", "^", "unclosed '{'"),
    ("#{1 2", "1:1", "#{1 2", "^^", "unclosed '#{'"),
    ('(echo "hi)', "1:7", '(echo "hi)', "      ^", "unterminated string"),
    ('x\n  "abc\ndef', "2:3", '  "abc', "  ^", "unterminated string"),
    ("{:a 1 :b}", "1:1", "{:a 1 :b}", "^^^^^^^^^", "even number"),
    ("[1 12abc]", "1:4", "[1 12abc]", "   ^", "invalid number"),
    ("(+ 1.2.3 4)", "1:4", "(+ 1.2.3 4)", "   ^", "invalid number"),
    ('"bad \\q"', "1:6", '"bad \\q"', "     ^^", "unknown escape"),
    ("(a #_)", "1:6", "(a #_)", "     ^", "unexpected"),
    ("#", "1:1", "#", "^", "'#'"),
])
def test_syntax_errors(text, location, source_line, caret, words):
    err = error_of(text)
    lines = err.format().split("\n")
    assert lines[0].startswith(f"{FILE}:{location}: "), lines[0]
    assert words in lines[0]
    assert lines[1] == "  " + source_line
    assert lines[2] == "  " + caret


def test_error_span_is_structured():
    err = error_of("\n\n   (oops")
    assert (err.span.file, err.span.line, err.span.column) == (FILE, 3, 4)


def test_caret_keeps_tabs_aligned():
    err = error_of("\t(a")
    assert err.format().split("\n")[1:] == ["  \t(a", "  \t^"]


def test_brackets_in_comments_and_strings_do_not_count():
    assert read('; (\n"(" [a] ; ]', FILE) == (Atom("("), VectorForm((sym("a"),)))


@pytest.mark.parametrize("text", [
    "(" * 3000 + ")" * 3000,
    "'" * 3000 + "x",
    "#_" * 3000 + "x " * 3001,
    "[" * 3000,
])
def test_deep_nesting_is_read_or_rejected_cleanly(text):
    # A recursive build of the tree would die with RecursionError long before this depth.
    try:
        read(text, FILE)
    except PalletError:
        pass


# --- Clojure's dispatch forms, characters, ::keywords, regular expressions -------------------


def test_fn_literal_reads_as_fn_with_numbered_arguments():
    assert show(read1("#(+ % %2)")) == "(fn [%1 %2] (+ %1 %2))"
    assert show(read1("#(apply f %&)")) == "(fn [& %&] (apply f %&))"
    assert show(read1("#(g %3 %&)")) == "(fn [%1 %2 %3 & %&] (g %3 %&))"
    assert show(read1("#(now)")) == "(fn [] (now))"
    assert show(read1("#(vector [% {:k #{%}}])")) == "(fn [%1] (vector [%1 {:k #{%1}}]))"
    form = read1("\n  #(inc %)")
    assert (form.span.line, form.span.column, form.span.end_column) == (2, 3, 11)


def test_fn_literal_nested_is_a_located_error():
    err = error_of("(map #(map #(inc %) %) xs)")
    assert "nested #()s are not allowed" in err.message
    assert (err.span.line, err.span.column) == (1, 12)


def test_var_quote_and_syntax_quote():
    assert show(read1("#'my.ns/f")) == "(var my.ns/f)"
    assert show(read1("`(a ~b ~@c d#)")) == "(syntax-quote (a (unquote b) (unquote-splicing c) d#))"
    assert read1("`x").span.end_column == 3


def test_metadata_rides_on_symbols_and_collections():
    form = read1("(defn ^:private ^String f [^long a] ^{:doc \"d\" :x 1} [a])")
    f, params, body = form.items[1], form.items[2], form.items[3]
    assert f == Symbol("f") and show(f.meta) == "{:tag String :private true}"
    assert show(params.items[0].meta) == "{:tag long}"
    assert show(body.meta) == '{:doc "d" :x 1}'
    assert show(read1('#^"[B" x').meta) == '{:tag "[B"}'
    assert show(read1("^:a ^{:a 2} x").meta) == "{:a true}"  # the outer one wins
    # nothing to attach it to on a string or number: dropped, as it would have no effect
    assert read(r'^:k "s" ^:k 1', FILE) == (Atom("s"), Atom(1))
    # equality ignores metadata, as it ignores spans
    assert read1("^:k [1]") == VectorForm((Atom(1),))


def test_metadata_must_be_a_symbol_keyword_string_or_map():
    err = error_of("^1 x")
    assert err.message == "metadata must be a symbol, keyword, string or map"
    assert (err.span.line, err.span.column) == (1, 2)


def test_character_literals_are_one_character_strings():
    assert values(r"\a \/ \( \\ \" \; \, \newline \space \tab \return \u0041 \o101 \é") == [
        "a", "/", "(", "\\", '"', ";", ",", "\n", " ", "\t", "\r", "A", "A", "é"]
    assert read1(r"(str \a \))") == ListForm((sym("str"), Atom("a"), Atom(")")))


def test_unknown_character_is_a_located_error():
    err = error_of("(f \\abc)")
    assert err.message.startswith("unsupported character \\abc")
    assert (err.span.column, err.span.end_column) == (4, 8)


def test_auto_keywords_take_the_namespace_being_read():
    assert read1("::k") == Keyword("user/k")
    assert read("::k", FILE, namespace="my.crate") == (Keyword("my.crate/k"),)
    forms = read("::a (ns web.app (:require [pallet.actions :as actions] [x.y :as-alias xy]))"
                 " ::b ::actions/c ::xy/d", FILE)
    assert [show(f) for f in forms if isinstance(f, Keyword)] == [
        ":user/a", ":web.app/b", ":pallet.actions/c", ":x.y/d"]


def test_auto_keyword_with_unknown_alias_is_a_located_error():
    err = error_of("(ns a)\n::nope/k")
    assert "no namespace has the alias 'nope'" in err.message
    assert (err.span.line, err.span.column, err.span.end_column) == (2, 1, 9)


def test_regex_literals_keep_their_backslashes():
    (value,) = values(r'#"\d+\.\s\"(?<n>x)"')
    assert value == Regex(r'\d+\.\s\"(?P<n>x)')
    assert show(read1(r'#"a\d"')) == r'#"a\d"'
    err = error_of('(split s #"(")')
    assert err.message.startswith("invalid regular expression")
    assert (err.span.column, err.span.end_column) == (10, 14)


def test_symbolic_numbers():
    inf, ninf, nan = values("##Inf ##-Inf ##NaN")
    assert inf == float("inf") and ninf == float("-inf") and nan != nan


@pytest.mark.parametrize("text, message", [
    ("#?(:clj 1)", "reader conditionals #?(...) are not supported"),
    ("#inst \"2020\"", "tagged literals (#inst, #uuid, #name ...) are not supported"),
    ("#=(x)", "'#' must start a set #{...}, a function #(...)"),
    ("(f #(g %)", "unclosed '(': expected ')'"),
    ("#(g %", "unclosed '#(': expected ')'"),
    ("(a \\( b", "unclosed '(': expected ')'"),
])
def test_dispatch_errors_are_located(text, message):
    assert error_of(text).message.startswith(message)


# --- robustness: random text only ever raises PalletError ----------------------------------

SPECIAL = list("()[]{}#_'~@\"\\;:,. \n\t-+0123456789eE/&%<>=!?*abcxyzé^`")
TOKENS = ["(", ")", "[", "]", "{", "}", "#{", "#_", "#", "'", "~", "~@", "@", '"', "\\",
          "#(", "%", "%1", "%&", "#'", "^", "#^", "`", "::", "::a/b", '#"', "\\newline", "\\(",
          "##Inf", "#?", "(ns a.b (:require [c :as d]))", "::d/x",
          '\\"', "\\u00e9", "\\u12", "\\q", ";", "\n", " ", ",", ":", ":k", "::", "1", "-1",
          "1.5", "1.", ".5", "1e3", "12abc", "2>&1", "2>", "->", "nil", "true", "é", "\t"]


def read_or_pallet_error(text: str) -> None:
    try:
        forms = read(text, FILE)
    except PalletError as err:
        err.format()  # formatting must not fail either
        return
    assert isinstance(forms, tuple)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_random_text_raises_only_pallet_error(text):
    read_or_pallet_error(text)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=st.sampled_from(SPECIAL), max_size=80))
def test_random_special_characters_raise_only_pallet_error(text):
    read_or_pallet_error(text)


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map("".join))
def test_random_token_soup_raises_only_pallet_error(text):
    read_or_pallet_error(text)
