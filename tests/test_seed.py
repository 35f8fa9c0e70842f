"""The talk the project started from (tests/seed/, a copy of ../shared/seed/): every code
example on its slides, extracted from the text, compiles as written.

The slides' spec code is put in one file in the order the talk shows it, as a user following
the talk would type it, with one definition the slides use and never show (`big-node`); it
compiles for Debian, Ubuntu, Rocky and Alpine to bundles that pass shellcheck, and installs
the Hadoop release the hadoop crate knows. The Stevedore example compiles to the loop the next
slide shows, and both print the same. Two slides hold code no Clojure reads (a misspelt
`def-crater-fn`, an unbalanced `)` in make-hadoop-cluster): each is a located error that says
what is wrong, and the last slide's call compiles with the example that keeps that slide's
shape (examples/hadoop_cluster.pallet)."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from pallet import checks
from pallet.commands._spec import local_file_reader
from pallet.compiler.bundle import build_bundles
from pallet.compiler.evaluator import Evaluator
from pallet.compiler.project import core_env, file_loader, load_project
from pallet.errors import PalletError
from pallet.stevedore import compile_script_text, target_for

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "tests" / "seed" / "pallet-clojure-west-2012.txt"
OSES = ("debian-12", "ubuntu-22.04", "rocky-9", "alpine-3.20")
HADOOP_SHA256 = "82b9c2b89c2c903dc1047b1297da42ae5bcbf4a3e7355940c337eb5a51404850"

# Used on the slides (task-trackers' :node-spec), never shown by them.
NOT_ON_THE_SLIDES = '(def big-node\n  (node-spec :hardware {:min-cores 4 :min-ram 4096}))\n'


def code_blocks() -> list[str]:
    return re.findall(r"^```\n(.*?)^```$", SEED.read_text(), re.S | re.M)


BLOCKS = code_blocks()


def block(first_line: str) -> str:
    (found,) = [b for b in BLOCKS if b.startswith(first_line)]
    return found


# Every block, by its first line, and what it is. A new or changed block fails here.
KINDS = {
    "(def small-node": "spec", "(def hadoop": "spec", "(def task-tracker": "spec",
    "(def job-tracker": "spec", "(def task-trackers": "spec", "(def job-trackers": "spec",
    "(converge {task-trackers 10": "spec", "(converge {task-trackers 5": "spec",
    "(def-crater-fn authorize-key": "misspelt",
    "(script": "script", "for x in a b c; do": "shell output",
    "(defn- get-node-ids-for-group": "spec", "(defn- get-keys-for-group": "spec",
    "(defn make-hadoop-cluster": "unbalanced", "(create-cluster": "last call",
}


def test_every_code_block_of_the_talk_is_covered():
    assert len(BLOCKS) == 15
    kinds = [[k for first, k in KINDS.items() if b.startswith(first + "\n") or
              b.startswith(first + " ")] for b in BLOCKS]
    assert all(len(k) == 1 for k in kinds), [b.split("\n", 1)[0] for b, k in zip(BLOCKS, kinds)]


def test_the_copy_is_the_seed():
    """The copy in tests/ is the talk in ../shared/seed (where a checkout has it beside it)."""
    for shared in (ROOT.parent / "shared", ROOT.parent.parent / "shared"):
        original = shared / "seed" / SEED.name
        if original.exists():
            assert original.read_bytes() == SEED.read_bytes()
            return
    pytest.skip("no ../shared/seed beside this checkout")


def talk_spec() -> str:
    specs = [b for b in BLOCKS if [k for first, k in KINDS.items()
                                   if b.startswith(first) and k == "spec"]]
    assert len(specs) == 10
    return NOT_ON_THE_SLIDES + "\n".join(specs)


@pytest.mark.parametrize("os_spec", OSES)
def test_the_talks_spec_code_compiles_as_written(tmp_path, monkeypatch, os_spec):
    (tmp_path / "talk.pallet").write_text(talk_spec())
    monkeypatch.chdir(tmp_path)
    project = load_project("talk.pallet")
    nodes = project.targets(None, os_spec)
    bundles = build_bundles(project.plan(nodes), nodes, local_file_reader("talk.pallet"))
    assert sorted(b.path for b in bundles) == [
        "job-tracker/configure", "job-tracker/start", "task-tracker/configure", "task-tracker/start"]
    for b in bundles:
        findings = checks.shellcheck(b.script, b.target.shell)
        assert not findings, checks.format_findings(findings, f"talk.pallet@{os_spec}:{b.path}")
    configure = next(b for b in bundles if b.path == "task-tracker/configure").script
    # (hadoop/install :cloudera): the release the crate knows, checked against its sha256
    url = "https://archive.apache.org/dist/hadoop/common/hadoop-3.5.0/hadoop-3.5.0.tar.gz"
    assert f"/var/cache/pallet/hadoop-3.5.0.tar.gz {HADOOP_SHA256} {url} " in configure
    assert "openjdk" in configure.lower() or "java-17" in configure  # (java/java :jdk)
    start = next(b for b in bundles if b.path == "task-tracker/start").script
    assert "--daemon start nodemanager" in start


def test_the_talks_stevedore_compiles_to_the_loop_it_shows():
    shown = block("for x in a b c; do")
    expected = subprocess.run(["bash", "-c", shown], capture_output=True, text=True, check=True)
    assert expected.stdout == "a\nb\nc\n"
    source = block("(script")
    for shell, exe in (("bash", "bash"), ("sh", "dash")):
        text = compile_script_text(source, "talk.pallet", shell, target_for("debian-12", shell))
        body = text.split("\n", 2)[2]
        assert body.startswith(shown.split("\n", 1)[0] + "\n") and body.endswith("\ndone\n"), body
        assert not checks.shellcheck(text, shell)
        ran = subprocess.run([exe, "-c", text], capture_output=True, text=True, check=True)
        assert ran.stdout == expected.stdout
    powershell = compile_script_text(source, "talk.pallet", "powershell", target_for("windows", "powershell"))
    assert not checks.parse_powershell(powershell)


def _error(tmp_path: Path, text: str) -> PalletError:
    (tmp_path / "slide.pallet").write_text(text)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(PalletError) as info:
            project = load_project("slide.pallet")
            project.plan(project.targets(None, "debian-12"))
    finally:
        os.chdir(cwd)
    return info.value


def test_the_slide_with_a_misspelt_definer_is_a_located_error(tmp_path):
    slide = block("(def-crater-fn authorize-key")
    err = _error(tmp_path, slide)
    assert err.message == "unknown symbol 'def-crater-fn'; did you mean 'def-crate-fn'?"
    assert (err.span.line, err.span.column) == (1, 2)
    # spelt right, the slide's definition (its body elided with `...`) is a crate function
    ev = Evaluator(core_env(), file_loader())
    ns = ev.load_text(slide.replace("def-crater-fn", "def-crate-fn"), "fixed.pallet")
    fn = ns.env.vars["authorize-key"]
    assert fn.kind == "crate-fn" and fn.doc == "Authorize a public key on the specified user."


def test_the_slide_with_an_unbalanced_paren_is_a_located_error(tmp_path):
    """make-hadoop-cluster's `:min-ram ram-size-in-mb})` closes cluster-spec before its
    :base-props, so the last line has one `)` too many."""
    err = _error(tmp_path, block("(defn make-hadoop-cluster"))
    assert err.message == "unmatched ')': nothing is open here"
    assert (err.span.line, err.span.column) == (14, 39)


def test_the_last_slides_call_compiles_with_the_example_of_its_shape():
    """examples/hadoop_cluster.pallet defines make-hadoop-cluster with the slide's arguments
    (test_examples compiles it for every OS) and ends with the slide's call, as written."""
    words = lambda text: text.split()  # noqa: E731
    example = (ROOT / "examples" / "hadoop_cluster.pallet").read_text()
    assert " ".join(words(block("(create-cluster"))) in " ".join(words(example))
