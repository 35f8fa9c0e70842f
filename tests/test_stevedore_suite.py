"""Stevedore's own test suite, run here: each case of tests/stevedore_suite/cases.toml (derived
from pallet/stevedore's bash_test.clj) is compiled by this project and run under real bash
beside the bash the original generated, in a sandbox with stub commands; their standard output
and exit status (and standard error, where the original's test checked it) are compared.

Every case must come out as its `status` says, so the table cannot drift from the truth, and
the share of runnable cases that behave the same must stay at 90% or more, counting those
that differ on purpose apart (they are listed in docs/language.md, "Coming from Pallet").
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from pallet.compiler.core import CORE
from pallet.compiler.evaluator import Evaluator
from pallet.errors import PalletError
from pallet.stevedore import ScriptForms, Target, compile_forms, compile_script_text

CASES_FILE = Path(__file__).parent / "stevedore_suite" / "cases.toml"
CASES = tomllib.loads(CASES_FILE.read_text())["case"]
STATUSES = {"same", "deliberate", "unsupported", "error", "not-runnable", "duplicate"}
# The commands the original's cases call; each prints its name and arguments.
STUBS = ("a", "b", "c", "x", "foo", "bar", "baz", "fred", "blogs", "something", "xfn", "file1")
BASH = shutil.which("bash")
MIN_SAME = 0.90


@dataclass(frozen=True)
class Outcome:
    stdout: str
    stderr: str
    exit: int

    def matches(self, other: "Outcome", with_stderr: bool) -> bool:
        return (self.stdout, self.exit) == (other.stdout, other.exit) and (
            not with_stderr or self.stderr == other.stderr)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stevedore-suite")
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for name in STUBS:
        stub = bin_dir / name
        stub.write_text('#!/bin/sh\nprintf %s "${0##*/}"\nfor a; do printf " %s" "$a"; done\necho\n')
        stub.chmod(0o755)
    work = root / "work"
    work.mkdir()
    (work / "file").write_text("a file\n")
    (work / "other").write_text("another\n")
    return root


def run_bash(sandbox: Path, text: str) -> Outcome:
    assert BASH, "bash is needed (tests/debian-packages.txt)"
    env = {"PATH": f"{sandbox / 'bin'}:/usr/bin:/bin", "HOME": str(sandbox), "LC_ALL": "C"}
    proc = subprocess.run([BASH, "-c", text], cwd=sandbox / "work", env=env, capture_output=True,
                          text=True, timeout=20)
    return Outcome(proc.stdout, proc.stderr, proc.returncode)


def original_text(case: dict) -> str:
    text = case["original"]
    if case.get("kind") == "word":
        text = f"echo {text}"
    return _join(case.get("setup", ""), text, case.get("after", ""))


def our_script(case: dict) -> str:
    """This project's bash for the case (a PalletError if it refuses the forms)."""
    kind = case.get("kind", "script")
    forms = case["forms"]
    if kind == "word":
        forms = f"(println {forms})"
    if kind == "spec":
        ev = Evaluator(CORE, _no_loader)
        value = ev.load_text(f"(def suite-script {forms})", "case.pallet").env.vars["suite-script"]
        assert isinstance(value, ScriptForms), value
        script = compile_forms(value.forms, Target(), resolver=value.resolver)
    else:
        script = compile_script_text(forms, "case.pallet")
    header, body = script.split("set -euo pipefail\n", 1)
    return _join(header + "set -euo pipefail", case.get("setup", ""), body, case.get("after", ""))


def _no_loader(name, relative_to):
    raise PalletError(f"no namespace {name} in the Stevedore suite")


def _join(*parts: str) -> str:
    return "\n".join(p for p in parts if p) + "\n"


_OUTCOMES: dict[tuple[str, Path], tuple] = {}


def outcome_of(case: dict, sandbox: Path) -> tuple[Outcome | None, Outcome | PalletError]:
    """(the original's outcome, or None where it refused the forms; ours, or our error)."""
    key = (case["id"], sandbox)
    if key not in _OUTCOMES:  # each case runs once for both tests below
        _OUTCOMES[key] = _outcome(case, sandbox)
    return _OUTCOMES[key]


def _outcome(case: dict, sandbox: Path) -> tuple[Outcome | None, Outcome | PalletError]:
    expected = None
    if "original" in case:
        expected = run_bash(sandbox, original_text(case))
    elif "stdout" in case:
        expected = Outcome(case["stdout"], case.get("stderr", ""), case.get("exit", 0))
    try:
        ours: Outcome | PalletError = run_bash(sandbox, our_script(case))
    except PalletError as exc:
        ours = exc
    return expected, ours


def behaves_the_same(case: dict, expected: Outcome | None, ours: Outcome | PalletError) -> bool:
    if expected is None:  # the original refused the forms
        return isinstance(ours, PalletError)
    return isinstance(ours, Outcome) and ours.matches(expected, "stderr" in case)


def test_cases_are_well_formed():
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    for case in CASES:
        assert case["status"] in STATUSES, case["id"]
        assert case.get("kind", "script") in ("script", "word", "spec"), case["id"]
        if case["status"] in ("deliberate", "unsupported", "not-runnable"):
            assert case.get("why"), f"{case['id']}: say why"
        if case["status"] == "duplicate":
            assert case.get("of") in ids, case["id"]


@pytest.mark.parametrize("case", [c for c in CASES if "stdout" in c and "original" in c],
                         ids=lambda c: c["id"])
def test_reconstructed_original_prints_what_its_test_asserted(case, sandbox):
    """Where the original's test checked both the text and what bash printed, the text of
    this table must print that: the vectors are what the original generated."""
    got = run_bash(sandbox, original_text(case))
    assert got.stdout == case["stdout"]


@pytest.mark.parametrize("case", [c for c in CASES if c["status"] not in ("not-runnable", "duplicate")],
                         ids=lambda c: c["id"])
def test_case_comes_out_as_its_status_says(case, sandbox):
    expected, ours = outcome_of(case, sandbox)
    same = behaves_the_same(case, expected, ours)
    detail = f"original: {expected}\nours: {ours if isinstance(ours, Outcome) else ours.format()}"
    if case["status"] in ("same", "error"):
        assert same, f"{case['id']} should behave as the original did\n{detail}"
    elif case["status"] == "unsupported":
        assert isinstance(ours, PalletError) and "not supported" in ours.message, detail
    else:  # deliberate: it differs, and where this project refuses the form it says why
        assert not same, f"{case['id']} is listed as differing on purpose, but behaves the same"
        if isinstance(ours, PalletError) and "raw" in case["why"]:
            assert "raw" in ours.message, detail


def test_share_of_runnable_cases_that_behave_the_same(sandbox, capsys):
    counted = [c for c in CASES if c["status"] not in ("not-runnable", "duplicate")]
    results = {c["id"]: behaves_the_same(c, *outcome_of(c, sandbox)) for c in counted}
    same = sum(results.values())
    deliberate = [c for c in counted if c["status"] == "deliberate"]
    compared = len(counted) - len(deliberate)
    same_compared = sum(results[c["id"]] for c in counted if c["status"] != "deliberate")
    ratio = same_compared / compared
    with capsys.disabled():
        print(f"\nStevedore suite: {same_compared}/{compared} runnable cases behave the same "
              f"({ratio:.0%}); {len(deliberate)} more differ on purpose; all runnable: "
              f"{same}/{len(counted)} ({same / len(counted):.0%}); "
              f"{sum(c['status'] == 'not-runnable' for c in CASES)} not runnable, "
              f"{sum(c['status'] == 'duplicate' for c in CASES)} duplicates")
    assert ratio >= MIN_SAME, [i for i, ok in results.items() if not ok]
