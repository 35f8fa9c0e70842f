"""Bad input to `pallet compile` / `pallet explain`, through the real command line: each error
is `file:line:col: message`, the source line, a caret under the form at fault, and exit 2;
never a traceback. The cases run as parallel subprocesses, one per case.
"""
from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PALLET = Path(sys.executable).parent / "pallet"

GOOD_SPEC = '''(def web
  (group-spec "web"
    :phases {:install (phase-fn (package "curl"))
             :configure (phase-fn (directory "/srv/web"))}))
'''

NODE = '''[[node]]
name = "w1"
group = "web"
host = "192.0.2.1"
os-family = "debian"
os-version = "12"
'''


@dataclass
class Case:
    files: dict[str, str]
    args: list[str]
    first: str                  # the first line of stderr, exactly
    token: str | None = None    # the text the caret line underlines (None: no source line)
    whole: bool = True          # the caret covers the whole token (a one-line form)
    command: str = "compile"
    extra: list[str] = field(default_factory=list)


CASES = {
    "unknown-symbol": Case(
        {"spec.pallet": '(def web\n  (group-spec "web"\n    :phases {:configure (phase-fn\n'
                        '      (fiel "/x"))}))\n'},
        ["spec.pallet", "--os", "debian-12"],
        "spec.pallet:4:8: unknown symbol 'fiel'; did you mean 'file'?", "fiel"),
    "wrong-argument-type": Case(
        {"spec.pallet": '(def web\n  (group-spec "web"\n    :phases {:configure (phase-fn\n'
                        '      (directory 42))}))\n'},
        ["spec.pallet", "--os", "debian-12"],
        "spec.pallet:4:18: directory: expected a string, got the number 42", "42"),
    "unknown-spec-option": Case(
        {"spec.pallet": '(def small (node-spec :image {:os-family :debian}))\n'
                        '(def web\n  (group-spec "web"\n    :hardwre {:min-ram 512}\n'
                        '    :node-spec small))\n'},
        ["spec.pallet", "--os", "debian-12"],
        "spec.pallet:4:5: group-spec: unknown option :hardwre; did you mean :hardware?", ":hardwre"),
    "extends-cycle": Case(
        {"spec.pallet": '(def base (server-spec :extends [web-base]))\n'
                        '(def web-base (server-spec :extends [base]))\n'
                        '(def web (group-spec "web" :extends [web-base]))\n'},
        ["spec.pallet", "--os", "debian-12"],
        "spec.pallet:1:34: a cycle: base -> web-base -> base; definitions (such as specs in "
        ":extends) cannot refer to each other (web-base is defined at spec.pallet:2:6)", "web-base"),
    "phase-not-defined": Case(
        {"spec.pallet": GOOD_SPEC}, ["spec.pallet", "--os", "debian-12", "--phase", "nosuch"],
        "error: --phase nosuch: no group of spec.pallet defines the phase :nosuch "
        "(phases: :configure :install)", command="explain"),
    "phase-not-defined-in-lift": Case(
        {"spec.pallet": GOOD_SPEC + "(lift web :phase [:install :confgure])\n"},
        ["spec.pallet", "--os", "debian-12"],
        "spec.pallet:5:18: lift: no group of this lift defines the phase :confgure; did you mean "
        ":configure? (phases: :configure :install)", "[:install :confgure]", command="explain"),
    "inventory-bad-toml": Case(
        {"spec.pallet": GOOD_SPEC, "nodes.toml": '[[node]]\nname = "w1"\ngroup = "web"\nhost = \n'},
        ["spec.pallet", "--nodes", "nodes.toml"],
        "nodes.toml:4:8: invalid TOML: Invalid value", None),
    "inventory-node-without-group": Case(
        {"spec.pallet": GOOD_SPEC, "nodes.toml": NODE + '\n[[node]]\nname = "w2"\nhost = "192.0.2.2"\n'},
        ["spec.pallet", "--nodes", "nodes.toml"],
        'nodes.toml:8:1: [[node]] needs group = "..."', "[[node]]"),
    "inventory-duplicate-name": Case(
        {"spec.pallet": GOOD_SPEC, "nodes.toml": NODE + "\n" + NODE.replace("192.0.2.1", "192.0.2.2")},
        ["spec.pallet", "--nodes", "nodes.toml"],
        "nodes.toml:9:1: node name 'w1' is used twice (first at line 1)", "name"),
    "inventory-unknown-key": Case(
        {"spec.pallet": GOOD_SPEC, "nodes.toml": NODE + 'os_family = "debian"\n'},
        ["spec.pallet", "--nodes", "nodes.toml"],
        "nodes.toml:7:1: unknown key 'os_family' in [[node]]; keys: group, host, jump, jump-key, name, os-family, "
        "os-version, password, port, private-ip, private-key, roles, sudo-password, user", "os_family"),
    "inventory-port-out-of-range": Case(
        {"spec.pallet": GOOD_SPEC, "nodes.toml": NODE + "port = 65536\n"},
        ["spec.pallet", "--nodes", "nodes.toml"],
        "nodes.toml:7:1: port must be a number from 1 to 65535", "port"),
    "inventory-group-not-in-spec": Case(
        {"spec.pallet": GOOD_SPEC,
         "nodes.toml": NODE + "\n" + NODE.replace('"w1"', '"d1"').replace('"web"', '"wbe"')},
        ["spec.pallet", "--nodes", "nodes.toml"],
        "nodes.toml:10:1: inventory node 'd1' is in group 'wbe', which spec.pallet does not define; "
        "did you mean 'web'? (groups: web)", "group"),
    "java-unknown-kind": Case(
        {"spec.pallet": '(def app\n  (group-spec "app"\n    :phases {:install (phase-fn\n'
                        '      (java/java :server))}))\n'},
        ["spec.pallet", "--os", "debian-12"],
        "spec.pallet:4:7: java/java: the kind is :jdk or :jre, not :server", "(java/java :server)"),
    "crate-fail-at-the-call": Case(
        {"spec.pallet": '(def app\n  (group-spec "app"\n    :phases {:install (phase-fn\n'
                        '      (hadoop/install :apache :settings {:version "3.4.1"}))}))\n'},
        ["spec.pallet", "--os", "debian-12"],
        "spec.pallet:4:7: hadoop/install: no checksum is known for Hadoop 3.4.1; give :sha512 "
        "(Apache publishes it beside the tarball, as hadoop-3.4.1.tar.gz.sha512) or :sha256 of the "
        "tarball at https://archive.apache.org/dist/hadoop/common/hadoop-3.4.1/hadoop-3.4.1.tar.gz. "
        "Known releases: 3.5.0",
        '(hadoop/install :apache :settings {:version "3.4.1"})'),
    "inventory-without-os-family": Case(
        {"spec.pallet": GOOD_SPEC,
         "nodes.toml": NODE.replace('os-family = "debian"\n', "").replace('os-version = "12"\n', "")},
        ["spec.pallet", "--nodes", "nodes.toml"],
        "nodes.toml:3:1: inventory node 'w1' has no os-family; add os-family and os-version, "
        "or let `pallet lift` detect them", "group"),
    "node-list-bad-port": Case(
        {"spec.pallet": GOOD_SPEC + '(def servers (node-list [{:name "w1" :group "web" '
                        ':host "192.0.2.1" :port "22" :os-family :debian}]))\n'},
        ["spec.pallet"],
        "spec.pallet:5:75: node-list: :port must be a number from 1 to 65535", '"22"'),
    "template-missing-variable": Case(
        {"spec.pallet": '(def web\n  (group-spec "web"\n    :phases {:configure (phase-fn\n'
                        '      (remote-file "/etc/app.conf" :template "app.conf.j2" :values {:port 80}))}))\n',
         "app.conf.j2": "port={{ port }}\nname={{ name }}\n"},
        ["spec.pallet", "--os", "debian-12"],
        "spec.pallet:4:7: template app.conf.j2:2: 'name' is undefined",
        '(remote-file "/etc/app.conf" :template "app.conf.j2" :values {:port 80})'),
    "template-syntax-error": Case(
        {"spec.pallet": '(def web\n  (group-spec "web"\n    :phases {:configure (phase-fn\n'
                        '      (remote-file "/etc/app.conf"\n        :template "app.conf.j2"))}))\n',
         "app.conf.j2": "port={{ port \n"},
        ["spec.pallet", "--os", "debian-12"],
        "spec.pallet:4:7: template app.conf.j2:1: unexpected end of template, expected 'end of print "
        "statement'.", "(", whole=False),
}


def run_case(name: str, case: Case, base: Path) -> subprocess.CompletedProcess:
    cwd = base / name
    cwd.mkdir()
    for file, text in case.files.items():
        (cwd / file).write_text(text)
    args = [str(PALLET), case.command, *case.args, *case.extra]
    if case.command == "compile":
        args += ["-o", "out"]
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    base = tmp_path_factory.mktemp("errors")
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = {name: pool.submit(run_case, name, case, base) for name, case in CASES.items()}
        out = {name: f.result() for name, f in futures.items()}
    for name in CASES:
        assert not (base / name / "out").exists(), f"{name}: a failed compile wrote output"
    return out


@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_a_located_error(results, name):
    case, proc = CASES[name], results[name]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert lines[0] == case.first
    if case.first.startswith("error: "):
        assert len(lines) == 1
        return
    file, line, col = case.first.split(":")[:3]
    source = Path(file).name
    cwd_text = case.files[source].splitlines()[int(line) - 1]
    assert lines[1] == "  " + cwd_text
    caret = lines[2][2:]
    start = len(caret) - len(caret.lstrip())
    assert start == int(col) - 1
    if case.token is None:
        assert caret.strip() == "^"
        return
    assert cwd_text[start:].startswith(case.token)
    assert caret.strip() == "^" * (len(case.token) if case.whole else 1)
