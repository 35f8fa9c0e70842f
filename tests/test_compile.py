"""`pallet compile`, `explain` and `check` through the real command line: reproducible output,
inventory edits that touch only the affected nodes, an output directory that is replaced
whole or not at all, explain's locations, and check's exit codes.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pallet.cli import cli

PALLET = Path(sys.executable).parent / "pallet"
ROOT = Path(__file__).resolve().parent.parent

SPEC = '''(require '["lib/app.pallet" :as app])

(def web
  (group-spec "web"
    :phases {:configure (phase-fn
                          (app/app-dir "web")
                          (remote-file "/etc/web/peers"
                            :content (->> (nodes-in-group :web) (map node-name) sort (join ","))))
             :start (phase-fn (service "nginx" :action :start))}))

(def db
  (group-spec "db"
    :phases {:install (phase-fn (package "postgresql"))
             :configure (phase-fn
                          (app/app-dir "db" :mode "700")
                          (remote-file "/etc/db/listen" :content (str (target-ip) "\\n"))
                          (remote-file "/etc/db/os" :template "os.j2" :values {:version (os-version)})
                          (remote-file "/etc/db/motd" :local-file "motd.txt"))}))

(lift [web db] :phase [:install :configure])
'''

LIB = '''(def-crate-fn app-dir
  "An application directory, marked ready."
  [name & {:keys [mode] :or {mode "755"}}]
  (directory (str "/opt/" name) :mode mode)
  (file (str "/opt/" name "/.ready")))
'''


def node(name: str, group: str, host: str, version: str = "12") -> str:
    return (f'[[node]]\nname = "{name}"\ngroup = "{group}"\nhost = "{host}"\n'
            f'os-family = "debian"\nos-version = "{version}"\n\n')


NODES = {"web-1": ("web", "192.0.2.11"), "web-2": ("web", "192.0.2.12"),
         "db-1": ("db", "192.0.2.21"), "db-2": ("db", "192.0.2.22"), "db-3": ("db", "192.0.2.23")}


def inventory(nodes: dict[str, tuple], versions: dict[str, str] | None = None) -> str:
    return "".join(node(n, g, h, (versions or {}).get(n, "12")) for n, (g, h) in nodes.items())


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib/app.pallet").write_text(LIB)
    (tmp_path / "spec.pallet").write_text(SPEC)
    (tmp_path / "os.j2").write_text("debian {{ version }}\n")
    (tmp_path / "motd.txt").write_bytes(b"welcome\n\x00binary ok\n")
    (tmp_path / "nodes.toml").write_text(inventory(NODES))
    return tmp_path


def pallet(cwd: Path, *args: str, seed: str = "0") -> subprocess.CompletedProcess:
    """The real `pallet` command, in its own process (with a given hash seed: output must not
    depend on the order of Python's sets and dicts)."""
    env = {**os.environ, "PYTHONHASHSEED": seed}
    proc = subprocess.run([str(PALLET), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=env)
    assert "Traceback" not in proc.stderr + proc.stdout
    return proc


def pallet_here(cwd: Path, *args: str):
    """The same command line run in this process: for the set-up steps of a test, fast."""
    saved = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    finally:
        os.chdir(saved)
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def compile_(cwd: Path, out: str = "out", *, here: bool = True) -> subprocess.CompletedProcess:
    args = ("compile", "spec.pallet", "--nodes", "nodes.toml", "-o", out)
    proc = pallet_here(cwd, *args) if here else pallet(cwd, *args)
    assert proc.returncode == 0, proc.stderr
    return proc


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under root: relative path -> (bytes, mode)."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mode & 0o777)
            for p in sorted(root.rglob("*")) if p.is_file()}


def node_digests(out: Path) -> dict[str, str]:
    """A digest of everything in each node's directory."""
    digests = {}
    for d in sorted(p for p in out.iterdir() if p.is_dir()):
        h = hashlib.sha256()
        for rel, (data, mode) in tree(d).items():
            h.update(f"{rel}\0{mode}\0".encode() + hashlib.sha256(data).digest())
        digests[d.name] = h.hexdigest()
    return digests


def bundle_shas(out: Path) -> dict[str, str]:
    """path -> script sha256, from DIR/manifest.json (checked against the files)."""
    manifest = json.loads((out / "manifest.json").read_text())
    shas = {}
    for b in manifest["bundles"]:
        script = out / b["script"]
        assert hashlib.sha256(script.read_bytes()).hexdigest() == b["sha256"]
        node_manifest = json.loads((out / b["path"] / "manifest.json").read_text())
        for name, digest in node_manifest["files"].items():
            assert hashlib.sha256((out / b["path"] / name).read_bytes()).hexdigest() == digest
        shas[b["path"]] = b["sha256"]
    return shas


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


# ---- reproducible output -------------------------------------------------------------------------

def test_compiling_twice_gives_byte_identical_trees(project):
    first = pallet(project, "compile", "spec.pallet", "--nodes", "nodes.toml", "-o", "out1", seed="1")
    second = pallet(project, "compile", "spec.pallet", "--nodes", "nodes.toml", "-o", "out2", seed="2")
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    a, b = tree(project / "out1"), tree(project / "out2")
    assert a == b
    compile_(project, "out1")       # recompiling over the old output
    assert tree(project / "out1") == a
    # the lift picked the phases: web defines no :install, and :start is not lifted
    assert sorted(bundle_shas(project / "out1")) == [
        "db-1/configure", "db-1/install", "db-2/configure", "db-2/install", "db-3/configure",
        "db-3/install", "web-1/configure", "web-2/configure"]
    assert first.stdout.splitlines()[0] == "out1/web-1/configure/run.sh  3 actions"
    # the installed files are in the bundle under their sha256, named in its manifest
    manifest = json.loads((project / "out1/db-1/configure/manifest.json").read_text())
    motd = hashlib.sha256(b"welcome\n\x00binary ok\n").hexdigest()
    assert manifest["files"][f"files/{motd}"] == motd
    assert manifest["node"] == "db-1" and manifest["group"] == "db" and manifest["phase"] == "configure"
    assert manifest["os"]["family"] == "debian" and manifest["os"]["version"] == "12"
    assert [a["source"] for a in manifest["actions"]][2:] == [
        "spec.pallet:16:27", "spec.pallet:17:27", "spec.pallet:18:27"]
    assert (project / "out1/db-1/configure/run.sh").stat().st_mode & 0o111


def test_compiling_an_example_twice_is_byte_identical(tmp_path):
    spec = "examples/hadoop_cluster.pallet"     # requires hadoop.pallet; three bundled crates
    for out, seed in (("a", "3"), ("b", "4")):
        proc = pallet(ROOT, "compile", spec, "--os", "ubuntu-22.04", "-o", str(tmp_path / out), seed=seed)
        assert proc.returncode == 0, proc.stderr
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    assert len(tree(tmp_path / "a")) > 8


def test_an_edited_inventory_changes_only_the_affected_nodes(project):
    compile_(project)
    shas, digests = bundle_shas(project / "out"), node_digests(project / "out")

    def recompile(nodes, versions=None):
        nonlocal shas, digests
        (project / "nodes.toml").write_text(inventory(nodes, versions))
        compile_(project)
        new_shas, new_digests = bundle_shas(project / "out"), node_digests(project / "out")
        result = changed(shas, new_shas), changed(digests, new_digests)
        shas, digests = new_shas, new_digests
        return result

    # a new address for db-1: only db-1's configure script (it listens on its address)
    nodes = {**NODES, "db-1": ("db", "198.51.100.1")}
    assert recompile(nodes) == ({"db-1/configure"}, {"db-1"})
    assert any(b"198.51.100.1" in data for data, _ in tree(project / "out/db-1/configure").values())
    # another OS version for db-2: only db-2 (its install script happens to be the same)
    assert recompile(nodes, {"db-2": "11"}) == ({"db-2/configure"}, {"db-2"})
    assert json.loads((project / "out/db-2/install/manifest.json").read_text())["os"]["version"] == "11"
    # a new web node: it gets its bundle, and the web nodes that list their peers change
    nodes["web-3"] = ("web", "192.0.2.13")
    assert recompile(nodes, {"db-2": "11"}) == (
        {"web-1/configure", "web-2/configure", "web-3/configure"}, {"web-1", "web-2", "web-3"})
    assert any(b"web-1,web-2,web-3" in data for data, _ in tree(project / "out/web-1/configure").values())
    # and nothing else moved: the same inventory again changes nothing
    assert recompile(nodes, {"db-2": "11"}) == (set(), set())
    # On disk too: a recompile rewrites only the bundles that changed (others keep their
    # files, inode and all), and a node gone from the inventory loses its bundles.
    kept = (project / "out/db-1/configure/run.sh").stat().st_ino
    touched = (project / "out/web-1/configure/run.sh").stat().st_ino
    del nodes["web-3"]
    assert recompile(nodes, {"db-2": "11"}) == (
        {"web-1/configure", "web-2/configure", "web-3/configure"}, {"web-1", "web-2", "web-3"})
    assert (project / "out/db-1/configure/run.sh").stat().st_ino == kept
    assert (project / "out/web-1/configure/run.sh").stat().st_ino != touched
    assert not (project / "out/web-3").exists()
    assert not [p for p in (project / "out").rglob(".*") if p.name != ".gitkeep"]


# ---- the output directory --------------------------------------------------------------------------

def test_output_must_be_a_pallet_directory(project):
    mine = project / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious\n")
    before = tree(mine)
    proc = pallet(project, "compile", "spec.pallet", "--nodes", "nodes.toml", "-o", "mine")
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0] == (
        "error: mine exists and is not a Pallet output directory; choose another -o")
    assert tree(mine) == before and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    (project / "afile").write_text("x")
    proc = pallet_here(project, "compile", "spec.pallet", "--nodes", "nodes.toml", "-o", "afile")
    assert proc.returncode == 2 and (project / "afile").read_text() == "x"
    # an empty directory is fine
    (project / "empty").mkdir()
    compile_(project, "empty")
    assert (project / "empty/manifest.json").is_file()


@pytest.mark.parametrize("breakage", ["spec", "template", "inventory"])
def test_a_failed_compile_leaves_the_output_as_it_was(project, breakage):
    compile_(project)
    before = tree(project / "out")
    siblings = sorted(p.name for p in project.iterdir())
    if breakage == "spec":
        (project / "spec.pallet").write_text(SPEC.replace('(package "postgresql")', "(package 5)"))
    elif breakage == "template":
        (project / "os.j2").write_text("debian {{ version }} {{ codename }}\n")
    else:
        (project / "nodes.toml").write_text(inventory(NODES) + 'name = "x"\n')
    # the failure that comes last (rendering a template, after planning) in a real process
    run = pallet if breakage == "template" else pallet_here
    proc = run(project, "compile", "spec.pallet", "--nodes", "nodes.toml", "-o", "out")
    assert proc.returncode == 2, proc.stdout
    assert re.match(r"(spec\.pallet|nodes\.toml):\d+:\d+: ", proc.stderr)
    assert tree(project / "out") == before
    assert sorted(p.name for p in project.iterdir()) == siblings   # no staging left behind


NODE_LIST_SPEC = '''(def servers
  (node-list [{:name "web-1" :group "web" :host "192.0.2.11" :os-family :debian :os-version "12"}
              {:name "web-2" :group "web" :host "192.0.2.12" :os-family :rocky :os-version "9"}]))

(def web (group-spec "web" :phases {:configure (phase-fn (file "/etc/web"))}))
'''


def test_compile_uses_the_specs_node_list_unless_told_otherwise(tmp_path):
    (tmp_path / "spec.pallet").write_text(NODE_LIST_SPEC)
    (tmp_path / "nodes.toml").write_text(node("web-9", "web", "192.0.2.19"))
    proc = pallet_here(tmp_path, "compile", "spec.pallet", "-o", "out")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["out/web-1/configure/run.sh  1 action",
                                        "out/web-2/configure/run.sh  1 action"]
    manifest = json.loads((tmp_path / "out/web-2/configure/manifest.json").read_text())
    assert manifest["os"]["family"] == "rocky" and manifest["os"]["packager"] == "dnf"
    proc = pallet_here(tmp_path, "compile", "spec.pallet", "--os", "alpine-3.20", "-o", "out")
    assert proc.stdout == "out/web/configure/run.sh  1 action\n"
    proc = pallet_here(tmp_path, "compile", "spec.pallet", "--nodes", "nodes.toml", "-o", "out")
    assert proc.stdout == "out/web-9/configure/run.sh  1 action\n"


# ---- explain and check -----------------------------------------------------------------------------

def test_explain_lists_actions_with_locations_and_crate_calls(project):
    proc = pallet(project, "explain", "spec.pallet", "--nodes", "nodes.toml")
    assert proc.returncode == 0, proc.stderr
    assert not (project / "out").exists()
    text = proc.stdout
    assert text.startswith("web-1 (group web, debian-12) phase :configure\n")
    block = text.split("db-1 (group db, debian-12) phase :configure\n")[1].split("db-2 ")[0]
    assert block.splitlines() == [
        "    1. directory /opt/db  [spec.pallet:15:27 (via lib/app.pallet/app-dir) lib/app.pallet:4:3]",
        "    2. file /opt/db/.ready  [spec.pallet:15:27 (via lib/app.pallet/app-dir) lib/app.pallet:5:3]",
        "    3. remote-file /etc/db/listen  [spec.pallet:16:27]",
        "    4. remote-file /etc/db/os  [spec.pallet:17:27]",
        "    5. remote-file /etc/db/motd  [spec.pallet:18:27]",
    ]
    assert "db-1 (group db, debian-12) phase :install\n    1. packages postgresql  [spec.pallet:13:33]\n" in text
    assert ":start" not in text
    # --phase overrides the spec's lift
    proc = pallet_here(project, "explain", "spec.pallet", "--nodes", "nodes.toml", "--phase", "start")
    assert proc.stdout.splitlines() == [
        "web-1 (group web, debian-12) phase :start", "    1. service nginx  [spec.pallet:9:31]",
        "web-2 (group web, debian-12) phase :start", "    1. service nginx  [spec.pallet:9:31]"]


def test_explain_shows_the_crate_calls_of_the_bundled_crates():
    proc = pallet(ROOT, "explain", "examples/hadoop.pallet", "--os", "debian-12", "--phase", "configure")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "task-tracker (group task-tracker, debian-12) phase :configure"
    assert re.fullmatch(r"    1\. packages openjdk-17-jdk-headless curl tar gzip procps  "
                        r"\[examples/hadoop\.pallet:\d+:\d+ \(via java/java\) <crate java>:\d+:\d+\]",
                        lines[1])
    assert any(re.fullmatch(r"    \d\. user hadoop  \[examples/hadoop\.pallet:\d+:\d+ "
                            r"\(via hadoop/install\) <crate hadoop>:\d+:\d+\]", x) for x in lines)


GATHERED = '''(def app
  (group-spec "app"
    :phases {:configure (phase-fn
                          (file "/etc/a")
                          (package "curl")
                          (directory "/srv/d")
                          (package "git")
                          (package-source "extra" :apt {:url "https://deb.example.org/debian"})
                          (service "cron" :action :start))}))
'''


def test_explain_the_manifest_and_compile_count_the_scripts_steps(tmp_path):
    """Package actions gathered into one step (and a source moved before it) number the
    script's steps differently from the recorded actions: explain, the manifest and
    compile's count all use the script's numbers, those of its PALLET-ACTION lines."""
    (tmp_path / "spec.pallet").write_text(GATHERED)
    proc = pallet_here(tmp_path, "compile", "spec.pallet", "--os", "debian-12", "-o", "out")
    assert proc.stdout == "out/app/configure/run.sh  5 actions\n"
    script = (tmp_path / "out/app/configure/run.sh").read_text()
    begins = re.findall(r"^pallet_begin (\d+) '([^']*)' (\S+)$", script, re.M)
    assert [(int(n), label) for n, label, _ in begins] == [
        (1, "file /etc/a"), (2, "package-source extra"), (3, "packages curl git"),
        (4, "directory /srv/d"), (5, "service cron")]
    manifest = json.loads((tmp_path / "out/app/configure/manifest.json").read_text())
    assert [(a["index"], a["kind"], a["label"], a["source"]) for a in manifest["actions"]] == [
        (1, "file", "file /etc/a", "spec.pallet:4:27"),
        (2, "package-source", "package-source extra", "spec.pallet:8:27"),
        (3, "packages", "packages curl git", "spec.pallet:5:27"),
        (4, "directory", "directory /srv/d", "spec.pallet:6:27"),
        (5, "service", "service cron", "spec.pallet:9:27")]
    assert manifest["actions"][2]["sources"] == ["spec.pallet:5:27", "spec.pallet:7:27"]
    proc = pallet_here(tmp_path, "explain", "spec.pallet", "--os", "debian-12")
    assert proc.stdout.splitlines() == [
        "app (group app, debian-12) phase :configure",
        "    1. file /etc/a  [spec.pallet:4:27]",
        "    2. package-source extra  [spec.pallet:8:27]",
        "    3. packages curl git  [spec.pallet:5:27]",
        "         gathered from spec.pallet:5:27",
        "         gathered from spec.pallet:7:27",
        "    4. directory /srv/d  [spec.pallet:6:27]",
        "    5. service cron  [spec.pallet:9:27]"]


def test_check_passes_clean_bundles_and_fails_a_broken_script(project):
    compile_(project)
    proc = pallet_here(project, "check", "out")
    assert proc.returncode == 0, proc.stderr
    assert "checked 8 scripts: 0 finding(s)" in proc.stdout + proc.stderr
    # one bundle, with an unquoted variable
    broken = project / "broken"
    shutil.copytree(project / "out/web-2", broken / "web-2")
    script = broken / "web-2/configure/run.sh"
    head, rest = script.read_text().split("\n", 1)
    script.write_text(head + '\nx="a b"\necho $x\n' + rest)
    proc = pallet(project, "check", "broken")
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0].startswith("broken/web-2/configure/run.sh:3:6: info SC2086: ")
    assert proc.stderr.splitlines()[-1] == "checked 1 script: 1 finding(s)"


def test_check_a_spec(project):
    proc = pallet(project, "check", "spec.pallet")     # for --os debian-12: a node per group
    assert proc.returncode == 0, proc.stderr
    assert "checked 3 scripts: 0 finding(s)" in proc.stdout + proc.stderr
    (project / "spec.pallet").write_text(SPEC.replace("(phase-fn (package", "(phase-fn (pakage"))
    proc = pallet(project, "check", "spec.pallet", "--nodes", "nodes.toml")
    assert proc.returncode == 2
    assert proc.stderr.startswith("spec.pallet:13:34: unknown symbol 'pakage'; did you mean 'package'?")


def test_check_a_spec_takes_the_options_of_compile(tmp_path):
    """check SPEC compiles as compile does: --crate-path, --phase, the spec's node-list."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine/motd.pallet").write_text(
        '(def-crate-fn banner [text] (remote-file "/etc/motd" :content text))\n')
    (tmp_path / "spec.pallet").write_text(
        '(def web (group-spec "web" :phases {:configure (phase-fn (motd/banner "hi\\n"))'
        ' :start (phase-fn (service "nginx"))}))\n')
    proc = pallet_here(tmp_path, "check", "spec.pallet")
    assert proc.returncode == 2 and "no crate or file named 'motd'" in proc.stderr
    proc = pallet_here(tmp_path, "check", "spec.pallet", "--crate-path", "mine")
    assert proc.returncode == 0, proc.stderr
    assert "checked 2 scripts: 0 finding(s)" in proc.stdout
    proc = pallet_here(tmp_path, "check", "spec.pallet", "--crate-path", "mine", "--phase", "start")
    assert "checked 1 script: 0 finding(s)" in proc.stdout
    (tmp_path / "nodes.pallet").write_text(NODE_LIST_SPEC)
    proc = pallet_here(tmp_path, "check", "nodes.pallet")     # web-1 and web-2 of its node-list
    assert "checked 2 scripts: 0 finding(s)" in proc.stdout
    proc = pallet_here(tmp_path, "check", "nodes.pallet", "--os", "alpine-3.20")
    assert "checked 1 script: 0 finding(s)" in proc.stdout
    compile_ = pallet_here(tmp_path, "compile", "nodes.pallet", "-o", "out/")
    assert compile_.stdout.splitlines()[0] == "out/web-1/configure/run.sh  1 action"
    proc = pallet_here(tmp_path, "check", "out", "--os", "debian-12")
    assert proc.returncode == 2 and "are for a SPEC" in proc.stderr


# ---- compiling in several processes ------------------------------------------------------------------

def compile_in(project: Path, out: str, jobs: int):
    from pallet.commands._spec import load_spec, local_file_reader
    from pallet.compiler.compile_project import compile_to_directory
    saved = os.getcwd()
    os.chdir(project)
    try:
        loaded = load_spec("spec.pallet", "nodes.toml", None, ())
        return compile_to_directory(*loaded, local_file_reader("spec.pallet"), Path(out),
                                    "spec.pallet", jobs=jobs)
    finally:
        os.chdir(saved)


def test_workers_make_what_one_process_makes(project, monkeypatch):
    """Nodes shared out among forked workers (planned, built and written there) give the
    same output, new or updated, as one process; a recompile still keeps what did not change."""
    import pallet.compiler.compile_project as compile_project
    monkeypatch.setattr(compile_project, "PARALLEL_FROM", 1)
    nodes = {**NODES, **{f"web-{i}": ("web", f"192.0.2.{100 + i}") for i in range(3, 12)}}
    (project / "nodes.toml").write_text(inventory(nodes))
    one = compile_in(project, "one", jobs=1)
    three = compile_in(project, "three", jobs=3)
    assert one == three and len(one) == 11 + 3 * 2
    assert tree(project / "one") == tree(project / "three")
    kept = (project / "three/db-1/install/run.sh").stat().st_ino
    nodes["db-1"] = ("db", "198.51.100.1")
    (project / "nodes.toml").write_text(inventory(nodes))
    compile_in(project, "one", jobs=1)
    compile_in(project, "three", jobs=3)
    assert tree(project / "one") == tree(project / "three")
    assert (project / "three/db-1/install/run.sh").stat().st_ino == kept
    assert any(b"198.51.100.1" in data for data, _ in tree(project / "three/db-1/configure").values())
    assert not [p for p in (project / "three").rglob(".*")]


def test_an_error_in_a_worker_is_located_and_changes_nothing(project, monkeypatch):
    import pallet.compiler.compile_project as compile_project
    from pallet.errors import PalletError
    monkeypatch.setattr(compile_project, "PARALLEL_FROM", 1)
    compile_in(project, "out", jobs=3)
    before = tree(project / "out")
    (project / "os.j2").write_text("debian {{ version }} {{ codename }}\n")  # the db nodes'
    with pytest.raises(PalletError) as caught:
        compile_in(project, "out", jobs=3)
    assert caught.value.span is not None and "codename" in caught.value.format()
    assert str(caught.value.span).startswith("spec.pallet:17:")
    assert tree(project / "out") == before
    assert not [p for p in (project / "out").rglob(".*")]


def _fleet(tmp_path: Path, count: int) -> None:
    """One group whose script has a shellcheck finding, on `count` alike nodes."""
    (tmp_path / "spec.pallet").write_text(
        '(def web (group-spec "web" :phases {:configure (phase-fn'
        ' (exec-script (raw "echo \\"$undefined_here\\"")))}))\n')
    (tmp_path / "nodes.toml").write_text("".join(
        f'[[node]]\nname = "web-{i}"\ngroup = "web"\nhost = "192.0.2.{i}"\n'
        f'os-family = "debian"\nos-version = "12"\n' for i in range(1, count + 1)))


def test_compile_and_check_print_every_bundle_for_a_few_dozen(tmp_path):
    _fleet(tmp_path, 3)
    proc = pallet_here(tmp_path, "compile", "spec.pallet", "--nodes", "nodes.toml", "-o", "out")
    assert proc.stdout.splitlines() == [f"out/web-{i}/configure/run.sh  1 action" for i in (1, 2, 3)]
    proc = pallet_here(tmp_path, "check", "out")
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [f"out/web-{i}/configure/run.sh" for i in (1, 2, 3)]
    assert all("SC2154" in line for line in lines[:-1])
    assert lines[-1] == "checked 3 scripts: 3 finding(s)"


def test_compile_and_check_summarise_past_a_few_dozen_bundles(tmp_path):
    """1,000 nodes would print 3,000 lines: past LIST_LIMIT bundles a summary, -v the list."""
    _fleet(tmp_path, 45)
    proc = pallet_here(tmp_path, "compile", "spec.pallet", "--nodes", "nodes.toml", "-o", "out")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "45 bundles for 45 nodes in 1 group, 1 phase (:configure), 45 actions, in out/",
        "  out/manifest.json lists every bundle; -v prints one line per bundle"]
    verbose = pallet_here(tmp_path, "compile", "spec.pallet", "--nodes", "nodes.toml", "-o", "out", "-v")
    assert len(verbose.stdout.splitlines()) == 45
    assert verbose.stdout.splitlines()[0] == "out/web-1/configure/run.sh  1 action"

    proc = pallet_here(tmp_path, "check", "out")       # 45 alike scripts: one shellcheck run
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 3, lines
    assert lines[0].startswith("out/web-1/configure/run.sh:") and "SC2154" in lines[0]
    assert lines[1] == "  (the same in 44 other scripts with this text; -v names them)"
    assert lines[2] == "checked 45 scripts (1 distinct): 45 finding(s) in 45 scripts"
    verbose = pallet_here(tmp_path, "check", "out", "-v")
    assert verbose.returncode == 1
    named = {line.split(":")[0] for line in verbose.stderr.splitlines()[:-1]}
    assert named == {f"out/web-{i}/configure/run.sh" for i in range(1, 46)}
    proc = pallet_here(tmp_path, "check", "spec.pallet", "--nodes", "nodes.toml")
    assert proc.returncode == 1 and proc.stderr.splitlines()[-1].endswith("45 finding(s) in 45 scripts")


@pytest.mark.parametrize("example", ["webapp.pallet", "hadoop.pallet", "windows.pallet"])
def test_a_bundles_manifest_is_written_as_dumped(example):
    """The writer's manifest.json (each step's line made once, shared by the nodes of a
    group) is byte for byte the JSON of the bundle's manifest."""
    from pallet.commands._spec import local_file_reader, plan_spec
    from pallet.compiler.bundle import _dump, build_bundles
    spec = str(ROOT / "examples" / example)
    project, nodes, plans = plan_spec(spec, None, None, (), default_os="debian-12")
    bundles = build_bundles(plans, nodes, local_file_reader(spec))
    assert bundles
    gathered = 0
    for b in bundles:
        assert b.manifest_json() == _dump(b.manifest())
        gathered += sum(len(s.sources) > 1 for s in b.steps)
    assert example != "hadoop.pallet" or gathered   # a step with several sources too
