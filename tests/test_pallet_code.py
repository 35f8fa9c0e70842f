"""Pallet 0.8's own code, compiled as written (tests/pallet08: java-crate's java.clj, pallet's
ssh_key.clj and automated_admin_user.clj, the pallet-hadoop-example cluster) through two-line
driver specs, for Debian 12 and Ubuntu 22.04: golden bundles (`make golden` rewrites them)
whose scripts pass `pallet check`, and what the bundles do, asserted on their steps.
Converging them on real nodes is tests/test_pallet_code_nodes.py."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pallet import checks
from pallet.commands._spec import local_file_reader
from pallet.compiler.bundle import build_bundles
from pallet.compiler.project import load_project
from pallet.grammar.forms import Keyword

from golden import bundles_text

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "pallet08"
SRC = DATA / "src"
GOLDEN = ROOT / "tests" / "golden" / "pallet08"
UPDATE = os.environ.get("PALLET_UPDATE_GOLDEN") == "1"
OSES = ("debian-12", "ubuntu-22.04")
DRIVERS = ("java", "java_jre17", "ssh_key", "automated_admin_user")
CASES = [(d, o) for d in DRIVERS for o in OSES]


def compile_driver(driver: str, os_spec: str):
    spec = f"tests/pallet08/{driver}.pallet"
    cwd = os.getcwd()
    os.chdir(ROOT)  # paths (and so the source locations in the scripts) relative to the repository
    try:
        project = load_project(spec, (Path("tests/pallet08/src"),))
        nodes = project.targets(None, os_spec)
        plans = project.plan(nodes)
        bundles = build_bundles(plans, nodes, local_file_reader(spec))
    finally:
        os.chdir(cwd)
    return spec, plans, bundles


def labels(plans) -> list[str]:
    return [a.label for actions in plans.values() for a in actions]


@pytest.mark.parametrize("driver,os_spec", CASES, ids=[f"{d}@{o}" for d, o in CASES])
def test_golden_bundle_of_pallet_code(driver, os_spec):
    spec, _, bundles = compile_driver(driver, os_spec)
    text, scripts = bundles_text(bundles, spec)
    text = f";; pallet compile {spec} --crate-path tests/pallet08/src --os {os_spec}\n" + text
    path = GOLDEN / f"{driver}@{os_spec}.golden"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
    assert path.exists(), f"no golden file {path}: run make golden"
    assert text == path.read_bytes().decode(), f"{path} differs from the compiler's output (make golden)"
    for name, script in scripts:
        findings = checks.check_script(name, script)
        assert not findings, checks.format_findings(findings, name)


@pytest.mark.parametrize("os_spec,package", [("debian-12", "openjdk-6-jdk"),
                                              ("ubuntu-22.04", "openjdk-7-jdk")])
def test_java_crate_chooses_as_pallet_0_8_did(os_spec, package):
    """java.clj's os-map: OpenJDK 6 on Linux, 7 on Ubuntu past 12 (the crate's defaults were
    never updated); :components #{:jdk}, so JAVA_HOME comes from javac."""
    _, plans, bundles = compile_driver("java", os_spec)
    assert labels(plans) == [f"package {package}",
                             "exec-checked-script Add java environment to /etc/environment: JAVA_HOME"]
    script = next(b.script for b in bundles if b.phase == "install")
    assert "update-alternatives --query javac | grep Best: | cut -f 2 -d ' '" in script
    assert 'pallet_env_set /etc/environment JAVA_HOME "JAVA_HOME=\\"$(jdk_home)\\""' in script


def test_java_crate_with_a_package_strategy_sets_java_home_from_the_jre():
    _, plans, bundles = compile_driver("java_jre17", "debian-12")
    assert labels(plans) == ["package openjdk-17-jre-headless",
                             "exec-checked-script Add java environment to /etc/environment: JAVA_HOME"]
    script = next(b.script for b in bundles if b.phase == "install")
    assert "update-alternatives --query java |" in script and "$(java_home)" in script


def test_ssh_key_authorizes_in_the_home_the_node_knows():
    """user-ssh-dir is (str (script (~lib/user-home ~user)) "/.ssh/"): the path each action
    takes is the user's home on the node, expanded when the step runs."""
    _, plans, bundles = compile_driver("ssh_key", "debian-12")
    home = '$(getent passwd root | cut -d: -f6)'
    assert labels(plans) == [f'directory "{home}/.ssh/"', f'file "{home}/.ssh/authorized_keys"',
                             "exec-checked-script authorize-key on user root",
                             "exec-checked-script Set selinux permissions"]
    script = bundles[0].script
    assert "pallet_directory \"$(getent passwd root | cut -d: -f6)/.ssh/\" create root '' 755 ''" in script
    assert 'auth_file="$(getent passwd root | cut -d: -f6)/.ssh/authorized_keys"' in script
    # (println (quoted ~key) ">>" @auth_file): Pallet's echo appended the key to the file
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBDmq7hXo6DTuhjBcI2Rd2q6rGCtLTv3GlyJm3xQnPfV pallet@test"
    assert "printf '%s\\n' '" + key + "' >> \"${auth_file}\"" in script
    assert f"if ! grep -F '{key}' \"${{auth_file}}\"; then" in script  # fgrep, as grep -F


def test_automated_admin_user_makes_a_sudoer_with_the_key():
    _, plans, bundles = compile_driver("automated_admin_user", "ubuntu-22.04")
    assert labels(plans)[:3] == ["packages sudo", "exec-checked-script sudoers includes /etc/sudoers.d",
                                 "user pallet"]
    script = bundles[0].script
    assert "pallet_user pallet '' /bin/bash '' true '' ''" in script   # :shell :bash
    assert "pallet ALL=(ALL) NOPASSWD: ALL" in script
    assert 'Defaults env_keep="SSH_AUTH_SOCK"' in script
    key = (DATA / "pallet.pub").read_text().strip()
    assert f"grep -F '{key}'" in script  # the key file was read where the spec is (slurp)


def test_pallet_hadoop_example_cluster_compiles():
    """The cluster definition of pallet-hadoop-example (a pallet-hadoop program of Pallet's
    0.6 era): one group per tag, with the phases of its roles."""
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        project = load_project("tests/pallet08/pallet-hadoop-example/core.clj")
        nodes = project.targets(None, "ubuntu-22.04")
        plans = project.plan(nodes)
    finally:
        os.chdir(cwd)
    by_group = {g.name: g for g in project.groups}
    assert sorted(by_group) == ["hadoop-jobtracker", "hadoop-slaves"]
    jt, slaves = by_group["hadoop-jobtracker"], by_group["hadoop-slaves"]
    assert (jt.count, slaves.count) == (1, 2)
    assert {"configure", "publish-ssh-key", "start-jobtracker", "start-namenode"} <= set(jt.phase_names)
    assert {"configure", "start-hdfs", "start-mapred", "authorize-jobtracker"} <= set(slaves.phase_names)
    assert "start-namenode" not in slaves.phase_names
    assert jt.node_spec.hardware == {Keyword("min-ram"): 4096}
    configure = labels({k: v for k, v in plans.items() if k == ("hadoop-slaves", "configure")})
    assert configure[:4] == ["package-manager :update", "package openjdk-17-jdk-headless",
                             "packages curl tar gzip procps", "user hadoop"]
    assert labels({k: v for k, v in plans.items() if k == ("hadoop-jobtracker", "start-namenode")}) == [
        "exec-checked-script format the hadoop name node", "exec-checked-script start hadoop namenode"]


def test_the_driver_compiles_from_the_command_line(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "pallet", "compile", str(DATA / "ssh_key.pallet"),
                           "--crate-path", str(SRC), "--os", "debian-12", "-o", str(out), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (out / "keys" / "configure" / "run.sh").exists()
