"""Every function and special form of the spec language, called with arguments of every shape,
ends in a value or in the project's own error: a PalletError located in the user's file, whose
message speaks the spec language (Pallet's and Clojure's names, never Python's). Never a Python
exception, never an error without a place, never `'NoneType'`, `_assoc_settings` or
`unhashable`.

The calls are made the way a user makes them: written into a spec's text, at the top level or
inside a phase, and compiled to a bundle (planning and rendering the scripts) in this process.
Hypothesis picks the arguments from a fixed set of shapes (nil, booleans, numbers, strings,
keywords, symbols, vectors, maps, sets, functions, scripts, too many and too few); the profile
is derandomized and keeps no database, so CI runs the same examples every time.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pallet.compiler.bundle import build_bundle
from pallet.compiler.core import CORE
from pallet.compiler.crates import CrateIndex
from pallet.compiler.evaluator import SPECIAL_FORMS, Evaluator, InternalError
from pallet.compiler.plan import PLAN_BUILTINS
from pallet.compiler.project import Project, core_env, file_loader
from pallet.compiler.specs import SPEC_BUILTINS, GroupSpec
from pallet.compiler.values import Fn
from pallet.errors import PalletError

FILE = "fuzz.pallet"

# Argument shapes, as source text: special forms see them unevaluated, functions evaluated.
SHAPES = [
    "nil", "true", "false", "0", "1", "-2", "3.5", "100", '""', '"a b"', '"/tmp/x"', '"x"',
    ":k", ":install", ":debian", "'sym", "sym", "x", "&", "[]", "[1 2]", '["a" :b]', "[x]",
    "[x 1]", "{}", "{:a 1}", '{:packages ["curl"]}', "{{} {}}", "#{}", "#{:a 1}", "inc", "str",
    "(fn [& xs] xs)", "(fn [x] x)", "()", "(list 1 2)", "(script (ls))", '(ex-info "e" {})',
    "(node-spec)", '(group-spec "g")', "'(1 2)",
]

# Python's words: a message with one of these was written by Python, not by Pallet.
PYTHON_WORDS = re.compile(
    r"Traceback|NoneType|unhashable|positional argument|keyword argument|object is not"
    r"|object has no|not subscriptable|not iterable|__\w+__|(?<![\w/.-])_[a-z]\w*"
    r"|\b[a-z]+_[a-z_]+\(|'(?:tuple|dict|list|str|int|float|bool|frozenset|function|set)'"
    r"|\b(?:TypeError|ValueError|KeyError|AttributeError|IndexError)\b|<\w+ object|#<"
    r"|\b(?:True|False|None)\b|\b(?:ScriptForms|Builtin|NodeFacts|GroupSpec|ServerSpec)\b|\b(?:Keyword|Symbol|Fn)\(")


# One evaluator for every example: the crates are loaded once (each example's spec is a new
# namespace `user` in it).
EVALUATOR = Evaluator(core_env(), file_loader())


def _crate_functions() -> list[str]:
    """The crate functions (def-crate-fn, defplan) of every bundled crate, as `namespace/name`."""
    names = []
    for listed in CrateIndex(()).list():
        ns = EVALUATOR.require(listed.crate.namespace, None, None)
        names += [f"{ns.name}/{name}" for name, value in ns.env.vars.items()
                  if isinstance(value, Fn) and value.kind == "crate-fn"]
    return sorted(names)


def _distinct(table: dict) -> list[str]:
    """One name for each function (str/join, string/join and join are one)."""
    seen, out = set(), []
    for name in sorted(table):
        fn = getattr(table[name].fn, "__wrapped__", table[name].fn)
        if id(fn) not in seen:
            seen.add(id(fn))
            out.append(name)
    return out


CORE_NAMES = _distinct(CORE)
SPEC_NAMES = sorted({**PLAN_BUILTINS, **SPEC_BUILTINS})
FORM_NAMES = sorted(SPECIAL_FORMS)
CRATE_NAMES = _crate_functions()


def spec_text(call: str, in_phase: bool) -> str:
    if in_phase:
        return ('(def fuzz-group\n  (group-spec "fuzz"\n    :phases {:configure (phase-fn\n'
                f'{call}\n)}}))\n')
    return (f'(def fuzz-value\n{call}\n)\n'
            '(def fuzz-group (group-spec "fuzz" :phases {:configure (phase-fn (package "curl"))}))\n')


def _read_file(path: str) -> bytes:
    raise PalletError(f"{path}: no such file")


def compile_text(text: str) -> None:
    """Evaluate the spec, then plan and render every bundle of it for Debian 12."""
    ev = EVALUATOR
    ev.operations, ev.plan = [], None
    ns = ev.load_text(text, FILE)
    groups = tuple(v for v in ns.env.vars.values() if isinstance(v, GroupSpec))
    project = Project(ev, FILE, groups, tuple(ev.operations))
    nodes = project.targets(os_spec="debian-12")
    world = project.world(nodes)
    for node, group, phase in project.bundles(nodes):
        build_bundle(node, group, phase, project.plan_one(world, node, group, phase), _read_file)


def check_call(name: str, args: list[str], in_phase: bool) -> None:
    call = f"({name}{''.join(' ' + a for a in args)})"
    text = spec_text(call, in_phase)
    try:
        compile_text(text)
    except InternalError as exc:
        pytest.fail(f"{call}: Pallet had no message of its own: {exc}")
    except PalletError as exc:
        assert exc.span is not None, f"{call}: an error without a place: {exc}"
        assert exc.span.file == FILE, f"{call}: an error placed in {exc.span.file}: {exc}"
        assert not PYTHON_WORDS.search(exc.message), f"{call}: Python's words: {exc.message}"


FUZZ = settings(max_examples=15, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
ARGS = st.lists(st.sampled_from(SHAPES), max_size=5)


@pytest.mark.parametrize("name", CORE_NAMES)
@FUZZ
@given(args=ARGS, in_phase=st.booleans())
def test_core_functions_take_any_arguments(name, args, in_phase):
    check_call(name, args, in_phase)


@pytest.mark.parametrize("name", SPEC_NAMES)
@FUZZ
@given(args=ARGS, in_phase=st.booleans())
def test_spec_and_phase_functions_take_any_arguments(name, args, in_phase):
    check_call(name, args, in_phase)


@pytest.mark.parametrize("name", FORM_NAMES)
@FUZZ
@given(args=ARGS, in_phase=st.booleans())
def test_special_forms_take_any_arguments(name, args, in_phase):
    check_call(name, args, in_phase)


@pytest.mark.parametrize("name", CRATE_NAMES)
@FUZZ
@given(args=ARGS)
def test_crate_functions_take_any_arguments(name, args):
    check_call(name, args, True)


# ---- as a user meets them: `pallet compile`, exit 2, file:line:col, the line and a caret -------

PALLET = Path(sys.executable).parent / "pallet"


@pytest.mark.parametrize("spec, place, message", [
    ('(defn f [a & {:keys [x]}] a)\n(f 1 {} {})\n', "2:1",
     "f: expected an option keyword, got the map {}"),
    ("(require '[ssh-key :refer [authorize-keyz]])\n", "1:28",
     "ssh-key has no 'authorize-keyz'; did you mean 'authorize-key'?"),
    ('(def app (group-spec "app" :phases {:configure (phase-fn\n'
     '  (assoc-settings :x))}))\n', "2:3", "assoc-settings takes 2 to 3 arguments, got 1"),  # (Pallet's options map)
    ('(def app (group-spec "app" :phases {:configure (phase-fn\n'
     '  (ssh-key/authorize-key "app" inc))}))\n', "2:3",
     "the function inc is not a shell word (strings, numbers, keywords and symbols are)"),
])
def test_bad_calls_are_located_errors_of_pallet_compile(tmp_path, spec, place, message):
    (tmp_path / "spec.pallet").write_text(spec)
    proc = subprocess.run([str(PALLET), "compile", "spec.pallet", "--os", "debian-12", "-o", "out"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == f"spec.pallet:{place}: {message}"
    line, column = map(int, place.split(":"))
    assert lines[1] == "  " + spec.splitlines()[line - 1]
    assert lines[2].startswith("  " + " " * (column - 1) + "^")
    assert not (tmp_path / "out").exists()


def test_keyword_arguments_take_a_trailing_map_as_clojure_does():
    ev = Evaluator(core_env(), file_loader())
    ns = ev.load_text('(defn f [a & {:keys [x y]}] [a x y])\n(def r [(f 1 :x 2) (f 1 {:x 3}) '
                      '(f 1 :x 4 {:y 5}) (f 1)])\n', FILE)
    assert ns.env.vars["r"] == ((1, 2, None), (1, 3, None), (1, 4, 5), (1, None, None))
