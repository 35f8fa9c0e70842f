"""Values as text. `(str (script ...))` is the script's shell text for the node being planned
(as Pallet's `script` returned it), in bash, sh and PowerShell, and that text runs; every
value that is not data (functions, phases, specs, compute services, nodes, operations, a
script inside a collection) is a located error in `str`, `pr-str`, `print-str`, `format`,
`str/join` and as a shell word, never `#<...>` nor a Python object's text."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from pallet.checks import parse_powershell
from pallet.compiler.bundle import build_bundles
from pallet.compiler.core import pr_str
from pallet.compiler.project import load_project
from pallet.errors import PalletError


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def bundles(tmp_path: Path, phase_body: str, os_spec: str, prelude: str = ""):
    (tmp_path / "spec.pallet").write_text(
        prelude + f'\n(def g (group-spec "g" :phases {{:configure (phase-fn {phase_body})}}))\n')
    project = load_project("spec.pallet")
    nodes = project.targets(None, os_spec)
    return build_bundles(project.plan(nodes), nodes, lambda p: b"")


def error(tmp_path: Path, phase_body: str, prelude: str = "") -> PalletError:
    with pytest.raises(PalletError) as info:
        bundles(tmp_path, phase_body, "debian-12", prelude)
    return info.value


SCRIPT = '(def s (script (doseq [x ["a b" "c"]] (println ~(target-name) @x))))'


@pytest.mark.parametrize("os_spec, shell", [("debian-12", "bash"), ("alpine-3.20", "sh")])
def test_the_text_of_a_script_is_its_shell_code_for_the_node(tmp_path, os_spec, shell):
    (b,) = bundles(tmp_path, '(remote-file "/tmp/s" :content (str "set -e\\n" s "\\n"))',
                   os_spec, SCRIPT.replace("(script", "(script (println \"start\")"))
    (content,) = [data for _, data in b.files]
    text = content.decode()
    assert text == ("set -e\nprintf '%s\\n' start\nfor x in 'a b' c; do\n"
                    "  printf '%s\\n' \"g ${x}\"\ndone\n")
    ran = subprocess.run([{"bash": "bash", "sh": "dash"}[shell], "-c", text],
                         capture_output=True, text=True, check=True)
    assert ran.stdout == "start\ng a b\ng c\n"


def test_a_scripts_text_given_to_sh_runs_it(tmp_path):
    """(sh -c ~(str (script ...))): the text is one word, the shell runs it."""
    out = tmp_path / "out"
    (b,) = bundles(tmp_path, f'(exec-script (sh -c ~(str (script (echo "x $y" ">" "{out}")))))',
                   "debian-12")
    (line,) = [line for line in b.script.splitlines() if line.startswith("sh -c ")]
    subprocess.run(["bash", "-c", line], check=True)
    assert out.read_text() == "x $y\n"


def test_the_text_follows_the_target_shell_and_the_script_functions_it_calls(tmp_path):
    (b,) = bundles(tmp_path, '(remote-file "C:/s.ps1" :content (str s))', "windows", SCRIPT)
    (content,) = [data for _, data in b.files]
    assert content.decode() == ("foreach ($x in @('a b', 'c')) {\n"
                                "    [Console]::Out.Write(\"g ${x}`n\")\n}")
    assert not parse_powershell(content.decode())
    (b,) = bundles(tmp_path, '(remote-file "/tmp/f" :content (format "%s" (script (pallet-changed))))',
                   "debian-12")
    (content,) = [data for _, data in b.files]
    assert content.decode().startswith("pallet_changed() {\n") and content.endswith(b"\npallet_changed")


@pytest.mark.parametrize("call", ['(str s)', '(pr-str s)', '(format "%s" s)', '(str/join [s])'])
def test_a_script_outside_a_phase_has_no_text_yet(tmp_path, call):
    (tmp_path / "spec.pallet").write_text(f'{SCRIPT}\n(def t {call})\n(def g (group-spec "g"))\n')
    with pytest.raises(PalletError) as info:
        load_project("spec.pallet")
    assert "a (script ...) becomes text only inside a phase" in info.value.message
    assert info.value.span.line == 2


# Every kind of value that is not data, made in spec code, with the message it gets.
NOT_TEXT = {
    "inc": "the function inc is not text; call it: (inc ...)",
    "(fn [x] x)": "the function fn is not text",
    "(phase-fn)": "a phase function is not text",
    "(node-spec)": "a node-spec is not text",
    "(server-spec)": "a server-spec is not text",
    '(group-spec "web")': "the group-spec 'web' is not text",
    '(cluster-spec "c" :groups [])': "the cluster-spec 'c' is not text",
    "aws-ec2": "the compute service aws-ec2 is not text",
    '(node-list [{:name "n" :group "g" :host "h"}])': "a node-list of 1 node is not text",
    "(target-node)": "the node 'g' is not text; (node-name n) is its name",
    "(lift (group-spec \"web\"))": "a lift operation is not text",
    "[(script (ls))]": "a (script ...) inside a collection is not text",
}
TEXT_FUNCTIONS = ["(str \"x\" V)", "(pr-str V)", "(print-str V)", '(format "%s" V)',
                  '(str/join "," [1 V])', "(str [V])", "(pr-str {:k V})"]


@pytest.mark.parametrize("value", NOT_TEXT)
@pytest.mark.parametrize("template", TEXT_FUNCTIONS)
def test_a_value_that_is_not_data_is_not_text(tmp_path, template, value):
    call = template.replace("V", value)
    err = error(tmp_path, f'(file (str "/tmp/" {call}))')
    assert err.message.endswith(NOT_TEXT[value]) or NOT_TEXT[value] in err.message, err.message
    assert "#<" not in err.message and not re.search(r"[A-Z][a-z]+[A-Z]\w*\(", err.message)
    assert err.span.file.endswith("spec.pallet")


@pytest.mark.parametrize("value", [v for v in NOT_TEXT if not v.startswith("[")])
def test_a_value_that_is_not_data_is_not_a_shell_word(tmp_path, value):
    err = error(tmp_path, f"(exec-script (echo ~{value}))")
    assert "is not a shell word (strings, numbers, keywords and symbols are)" in err.message
    assert NOT_TEXT[value].split(" is not text")[0] in err.message
    assert err.span.file.endswith("spec.pallet")


def test_messages_name_such_values_by_what_they_are():
    """Error messages print values with pr_str, which never shows a Python class."""
    from pallet.compiler.core import CORE
    from pallet.compiler.model import NodeFacts
    from pallet.compiler.specs import ComputeRef, GroupSpec
    from pallet.stevedore import ScriptForms
    shown = [pr_str(v) for v in (CORE["inc"], GroupSpec(name="web"), ComputeRef("aws-ec2"),
                                 NodeFacts("n1", "web", "debian"), ScriptForms((), None), object())]
    assert shown == ["#<fn inc>", "#<the group-spec 'web'>", "#<the compute service aws-ec2>",
                     "#<the node 'n1'>", "#<a (script ...)>", "#<a value of the compiler's own>"]
