"""Golden files for Stevedore: tests/golden/stevedore/*.golden and tests/golden/errors/*.golden.

For every case and every target it lists, the compiler's output must equal the file's
section for that target; with PALLET_UPDATE_GOLDEN=1 (`make golden`) the sections are
rewritten instead. The `=== stdout` section is the case's specification and is never
rewritten: the bash output, run by real bash, and the sh output, run by dash, must print it
exactly (each run in a fresh temporary directory, which the case may write to with relative
paths). Every bash and sh output passes shellcheck at default severity with no findings, and
every PowerShell output parses without error nodes.

Error cases hold the exact formatted error (`file:line:col: message`, the line, a caret); the
file name in it is the golden file's path from the repository root, so the location points
into the golden file itself.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

from conftest import ROOT, run_shell
import golden
from golden import ALL_TARGETS, Golden, load
from pallet.checks import format_findings, parse_powershell, shellcheck
from pallet.errors import PalletError
from pallet.stevedore import compile_script_text, target_for

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("PALLET_UPDATE_GOLDEN") == "1"
SECTION_ORDER = ("stdout", "error", *ALL_TARGETS)

STEVEDORE = sorted((GOLDEN / "stevedore").glob("*.golden"))
ERRORS = sorted((GOLDEN / "errors").glob("*.golden"))


def _has_powershell() -> bool:
    try:
        return importlib.util.find_spec("pallet.stevedore.emit_powershell") is not None
    except ImportError:
        return False


HAS_POWERSHELL = _has_powershell()
NO_POWERSHELL = ("the PowerShell emitter (pallet.stevedore.emit_powershell) does not exist yet; "
                 "its golden sections are checked once it does")


def _name(path: Path) -> str:
    """The name a case is compiled under: its path from the repository root."""
    return path.relative_to(ROOT).as_posix()


def _cases(paths: list[Path], default_targets: tuple[str, ...]) -> list:
    params = []
    for path in paths:
        for target in load(path).targets(default_targets):
            params.append(pytest.param(path, target, id=f"{path.stem}-{target}"))
    return params


def _per_file(paths: list[Path]) -> list:
    return [pytest.param(path, id=path.stem) for path in paths]


def _skip_without_powershell(target: str) -> None:
    if target == "powershell" and not HAS_POWERSHELL:
        pytest.skip(NO_POWERSHELL)


@lru_cache(maxsize=None)
def _compile(path: Path, target: str) -> str:
    case = load(path)
    return compile_script_text(case.source, _name(path), target, target_for(case.os, target))


def _compile_error(path: Path, target: str) -> str:
    case = load(path)
    try:
        out = compile_script_text(case.source, _name(path), target, target_for(case.os, target))
    except PalletError as exc:
        return exc.format() + "\n"
    pytest.fail(f"{_name(path)} compiled for {target} without an error:\n{out}")


def _set_section(path: Path, name: str, text: str) -> None:
    """Rewrite one section, keeping the file's sections in their canonical order."""
    case = load(path)
    case.sections[name] = text
    case.sections = {k: case.sections[k]
                     for k in sorted(case.sections, key=lambda k: SECTION_ORDER.index(k)
                                     if k in SECTION_ORDER else len(SECTION_ORDER))}
    case.save()


def _check_section(path: Path, name: str, actual: str) -> None:
    case = load(path)
    expected = case.sections.get(name)
    if expected == actual:
        return
    if UPDATE:
        _set_section(path, name, actual)
        return
    if expected is None:
        pytest.fail(f"{_name(path)} has no '=== {name}' section; run `make golden` to write it. "
                    f"The output is:\n{actual}")
    assert actual == expected, (f"{_name(path)}: the {name} output differs from the golden "
                                "file (run `make golden` if the change is intended)")


# ---- the well-formedness of the files ----------------------------------------------------------


def test_there_are_golden_files():
    assert len(STEVEDORE) >= 40 and len(ERRORS) >= 8


def test_format_round_trips(tmp_path):
    text = (";; A case.\n;; os: debian-12\n;; targets: bash sh\n(println \"x\")\n"
            "=== stdout (no final newline)\nno newline\n=== bash\nline\n\n=== sh\n")
    case = golden.parse(text, tmp_path / "x.golden")
    assert case.description == "A case."
    assert case.os == "debian-12" and case.targets() == ("bash", "sh")
    assert case.source == ';; A case.\n;; os: debian-12\n;; targets: bash sh\n(println "x")\n'
    assert case.sections == {"stdout": "no newline", "bash": "line\n\n", "sh": ""}
    assert case.render() == text


@pytest.mark.parametrize("path", _per_file(STEVEDORE + ERRORS))
def test_golden_file_is_canonical(path):
    """Every file reads back to the same text, so a rewrite changes only what changed."""
    assert load(path).render() == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", _per_file(STEVEDORE))
def test_stevedore_case_is_well_formed(path):
    case = load(path)
    assert case.description, f"{_name(path)}: start with a ';; description' line"
    targets = case.targets()
    assert {"bash", "sh"} & set(targets), f"{_name(path)}: a case must run under bash or sh"
    assert "stdout" in case.sections, (
        f"{_name(path)}: every case needs an '=== stdout' section proving that it works")
    assert "error" not in case.sections, f"{_name(path)}: error cases go in golden/errors/"
    _check_known_sections(path, case, {"stdout", *targets})


@pytest.mark.parametrize("path", _per_file(ERRORS))
def test_error_case_is_well_formed(path):
    case = load(path)
    assert case.description, f"{_name(path)}: start with a ';; description' line"
    _check_known_sections(path, case, {"error"})


def _check_known_sections(path: Path, case: Golden, allowed: set[str]) -> None:
    stale = [name for name in case.sections if name not in allowed]
    if stale and UPDATE:
        for name in stale:
            del case.sections[name]
        case.save()
        return
    assert not stale, f"{_name(path)}: sections {stale} are not among its targets {sorted(allowed)}"


# ---- Stevedore cases ---------------------------------------------------------------------------


@pytest.mark.parametrize("path, target", _cases(STEVEDORE, ALL_TARGETS))
def test_output_matches_golden(path, target):
    _skip_without_powershell(target)
    _check_section(path, target, _compile(path, target))


@pytest.mark.parametrize("path, shell",
                         [p for p in _cases(STEVEDORE, ALL_TARGETS) if p.values[1] != "powershell"])
def test_output_runs_and_prints_stdout(path, shell, tmp_path):
    script = _compile(path, shell)
    expected = load(path).sections.get("stdout")
    if expected is None:
        pytest.fail(f"{_name(path)} has no '=== stdout' section")
    result = run_shell(shell, script, cwd=tmp_path)
    shown = ("bash" if shell == "bash" else "dash") + f" on {_name(path)}"
    assert result.returncode == 0, (
        f"{shown} exited {result.returncode}\n--- script\n{script}--- stderr\n"
        f"{result.stderr.decode(errors='replace')}")
    assert result.stdout.decode("utf-8", "surrogateescape") == expected, (
        f"{shown}: stdout differs\n--- script\n{script}--- stderr\n"
        f"{result.stderr.decode(errors='replace')}")


@pytest.mark.parametrize("path, shell",
                         [p for p in _cases(STEVEDORE, ALL_TARGETS) if p.values[1] != "powershell"])
def test_output_passes_shellcheck(path, shell):
    script = _compile(path, shell)
    findings = shellcheck(script, shell)
    assert not findings, f"shellcheck on the {shell} output of {_name(path)}:\n" + \
        format_findings(findings, f"{path.stem}.{shell}") + "\n--- script\n" + script


@pytest.mark.parametrize("path, target",
                         [p for p in _cases(STEVEDORE, ALL_TARGETS) if p.values[1] == "powershell"])
def test_powershell_output_parses(path, target):
    _skip_without_powershell(target)
    script = _compile(path, target)
    findings = parse_powershell(script)
    assert not findings, f"PowerShell parse errors in the output of {_name(path)}:\n" + \
        format_findings(findings, f"{path.stem}.ps1") + "\n--- script\n" + script


def test_the_talks_example():
    """The example from the talk, exactly as written there."""
    path = GOLDEN / "stevedore" / "talk_example.golden"
    case = load(path)
    assert case.source.splitlines()[-1] == '(script (doseq [x ["a" "b" "c"]] (println @x)))'
    assert case.sections["stdout"] == "a\nb\nc\n"
    assert "for x in a b c; do" in _compile(path, "bash")


# ---- error cases ---------------------------------------------------------------------------


@pytest.mark.parametrize("path, target", _cases(ERRORS, ("bash",)))
def test_error_matches_golden(path, target):
    _skip_without_powershell(target)
    _check_section(path, "error", _compile_error(path, target))


@pytest.mark.parametrize("path, target", _cases(ERRORS, ("bash",)))
def test_cli_reports_error(path, target, tmp_path):
    """The real `pallet script` command: exit 2, the located message on stderr, no traceback.

    The source is written to the same relative path under a temporary directory, so the
    message names the same file as the golden error."""
    _skip_without_powershell(target)
    case = load(path)
    copy = tmp_path / _name(path)
    copy.parent.mkdir(parents=True)
    copy.write_text(case.source, encoding="utf-8")
    exe = Path(sys.executable).parent / "pallet"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "pallet"]
    cmd += ["script", _name(path), "--target", target]
    if case.os:
        cmd += ["--os", case.os]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stdout == ""
    assert result.stderr == case.sections.get("error"), result.stderr
