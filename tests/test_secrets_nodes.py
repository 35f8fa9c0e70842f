"""Secrets at run time, on a real local node over real SSH, with the real CLI: a spec's
(secret (env ...)), an inventory's password and sudo-password, and PALLET_SUDO_PASSWORD
reach the node (its files, its commands' input) and nothing else. Every output is grepped
for every one of them: the terminal (stdout, stderr), --json, explain, compile's listing and
output directory (outside secrets/), the run records, and the command line of every process
on the machine (the controller's and the node's, sampled while the bundles run)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

PALLET = str(Path(sys.executable).parent / "pallet")
pytestmark = pytest.mark.nodes

DB_PASSWORD = "db-Tr0ub4dor&3"
NEW_DB_PASSWORD = "db-correct horse battery"
LOGIN_PASSWORD = "login-'p4ss\"$word"      # a passphrase Pallet is given (keys log in)
SUDO_PASSWORD = "sudo-s3cret 'pass\"$x"    # the inventory's sudo-password of ops
ENV_SUDO_PASSWORD = "envsudo-An0ther one"  # PALLET_SUDO_PASSWORD, for ops2
SECRETS = (DB_PASSWORD, NEW_DB_PASSWORD, LOGIN_PASSWORD, SUDO_PASSWORD, ENV_SUDO_PASSWORD)

SPEC = r'''
(def pw (secret (env "DB_PASSWORD")))

(def app
  (group-spec "app"
    :phases {:configure
             (phase-fn
               (let [dir (str "/srv/" (target-name))]
                 (directory dir)
                 (remote-file (str dir "/app.conf") :content (str "password=" pw "\n"))
                 (remote-file (str dir "/db.conf") :template "db.j2" :values {:password pw})
                 (exec-checked-script "use the password"
                   (pipe (printf "%s" ~pw) (sha256sum ">" ~(str dir "/pw.sha")))
                   (println "the password:" ~pw)
                   (printf "%s\n" ~pw ">&2")
                   (cat "/root/planted")
                   (cat "/root/planted" ">&2")
                   (sleep 2))
                 (when (= (target-name) "s-3")
                   (exec-checked-script "fail on purpose"
                     (printf "%s\n" ~(str "cannot use " pw) ">&2")
                     (cat "/root/planted" ">&2")
                     (exit 3)))))}))
'''


@pytest.fixture(scope="module")
def node(debian_nodes, local_nodes):
    """One node with users ops (sudo asks for SUDO_PASSWORD) and ops2 (ENV_SUDO_PASSWORD),
    and a file /root/planted holding the passwords Pallet is given, which the spec's script
    prints (as a careless script could)."""
    (a,) = debian_nodes(1, prefix="sec")
    public = Path(a.private_key + ".pub").read_text().strip()
    setup = f"""set -e
for u in ops ops2; do
  useradd -m -s /bin/bash "$u"
  install -d -m 700 -o "$u" -g "$u" "/home/$u/.ssh"
  echo '{public}' > "/home/$u/.ssh/authorized_keys"
  chown "$u:$u" "/home/$u/.ssh/authorized_keys"
  echo "$u ALL=(ALL) ALL" > "/etc/sudoers.d/$u"
  chmod 440 "/etc/sudoers.d/$u"
done
read -r one; read -r two
printf '%s\n%s\n' "$one" "$two" | chpasswd
cat > /root/planted
"""
    feed = f"ops:{SUDO_PASSWORD}\nops2:{ENV_SUDO_PASSWORD}\n"
    planted = "\n".join((LOGIN_PASSWORD, SUDO_PASSWORD, ENV_SUDO_PASSWORD)) + "\n"
    local_nodes.exec_in(a.name, ["sh", "-c", setup], input=feed + planted, check=True)
    return a


@pytest.fixture
def project(tmp_path, node):
    (tmp_path / "spec.pallet").write_text(SPEC)
    (tmp_path / "db.j2").write_text("password={{ password }}\n")
    (tmp_path / "kh").write_text(node.known_hosts_line() + "\n")
    entries = [("s-1", "root", {"password": LOGIN_PASSWORD}),
               ("s-2", "ops", {"sudo-password": SUDO_PASSWORD}),
               ("s-3", "ops2", {})]
    toml = ""
    for name, user, extra in entries:
        toml += (f'[[node]]\nname = "{name}"\ngroup = "app"\nhost = "{node.host}"\n'
                 f'port = {node.port}\nuser = "{user}"\nprivate-key = "{node.private_key}"\n'
                 'os-family = "debian"\nos-version = "12"\n'
                 + "".join(f"{k} = {json.dumps(v)}\n" for k, v in extra.items()) + "\n")
    (tmp_path / "inventory.toml").write_text(toml)
    return tmp_path


class CmdlineSampler:
    """Reads the command line of every process on the machine, again and again, in a
    thread: the controller's, the SSH helper's, sshd's and the bundle's on the node."""

    def __init__(self):
        self.seen: set[bytes] = set()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for entry in os.scandir("/proc"):
                if entry.name.isdigit():
                    try:
                        with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                            self.seen.add(f.read())
                    except OSError:
                        pass
            self.samples += 1
            time.sleep(0.005)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def pallet(cwd: Path, *args, env=None) -> subprocess.CompletedProcess:
    environ = {**os.environ, "DB_PASSWORD": DB_PASSWORD, "PALLET_SUDO_PASSWORD": ENV_SUDO_PASSWORD,
               **(env or {})}
    result = subprocess.run([PALLET, *args], capture_output=True, text=True, cwd=cwd,
                            env=environ, timeout=300)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def in_node(local_nodes, node, command: str) -> str:
    return local_nodes.exec_in(node.name, ["sh", "-c", command], check=True).stdout


def test_no_secret_leaves_pallet_but_for_the_node(project, node, local_nodes):
    runs = ["lift", "spec.pallet", "--nodes", "inventory.toml", "--known-hosts", "kh",
            "--record-dir", "runs"]
    outputs: dict[str, str] = {}
    with CmdlineSampler() as sampler:
        first = pallet(project, *runs)
        again = pallet(project, *runs, "--json", env={"DB_PASSWORD": NEW_DB_PASSWORD})
    assert first.returncode == 1 and again.returncode == 1, first.stdout + first.stderr
    outputs.update({"lift stdout": first.stdout, "lift stderr": first.stderr,
                    "lift --json stdout": again.stdout, "lift --json stderr": again.stderr})
    report = json.loads(again.stdout)
    by_node = {n["name"]: n["phases"][0] for n in report["nodes"]}
    assert by_node["s-1"]["status"] == by_node["s-2"]["status"] == "changed", report
    assert by_node["s-3"]["status"] == "failed" and by_node["s-3"]["cause"] == "action"
    assert "fail on purpose" in by_node["s-3"]["error"]
    # What the node printed of them is masked where Pallet keeps it.
    logs = [p.read_text() for p in (project / "runs").rglob("*.log")]
    assert any("the password: <secret>" in text for text in logs)
    assert any("cannot use <secret>" in text for text in logs)

    # The node got the values: its files, its commands' standard input. No diff of a secret
    # file was shown when the new password replaced the old one.
    for name in ("s-1", "s-2", "s-3"):
        assert in_node(local_nodes, node, f"cat /srv/{name}/app.conf") == f"password={NEW_DB_PASSWORD}\n"
        assert in_node(local_nodes, node, f"cat /srv/{name}/db.conf") == f"password={NEW_DB_PASSWORD}\n"
        assert in_node(local_nodes, node, f"cut -c1-64 /srv/{name}/pw.sha") == \
            hashlib.sha256(NEW_DB_PASSWORD.encode()).hexdigest() + "\n"
        assert in_node(local_nodes, node, f"stat -c %a /srv/{name}/app.conf") == "600\n"

    # explain, compile's listing and its output directory.
    for args in (("explain", "spec.pallet", "--nodes", "inventory.toml"),
                 ("compile", "spec.pallet", "--nodes", "inventory.toml", "-o", "out", "-v")):
        result = pallet(project, *args)
        assert result.returncode == 0, result.stderr
        outputs[" ".join(args[:1]) + " stdout"] = result.stdout
        outputs[" ".join(args[:1]) + " stderr"] = result.stderr

    leaks: dict[str, int] = {}
    for where, text in outputs.items():
        for secret in SECRETS:
            if secret in text:
                leaks[f"{where}: {secret}"] = text.count(secret)
    looked = {"outputs": len(outputs), "record files": 0, "compile output files": 0}
    for base, skip in ((project / "runs", ()), (project / "out", ("secrets",))):
        for path in sorted(base.rglob("*")):
            if not path.is_file() or any(part in skip for part in path.relative_to(base).parts):
                continue
            looked["record files" if base.name == "runs" else "compile output files"] += 1
            data = path.read_bytes()
            for secret in SECRETS:
                if secret.encode() in data:
                    leaks[f"{path.relative_to(project)}: {secret}"] = data.count(secret.encode())
    for cmdline in sampler.seen:
        for secret in SECRETS:
            if secret.encode() in cmdline:
                leaks[f"cmdline {cmdline!r}"] = 1
    # The sampler saw the bundles run (their scripts, their sleep) and the SSH helper.
    assert any(b"./run.sh" in c for c in sampler.seen), sorted(sampler.seen)[:50]
    looked["command lines"] = len(sampler.seen)
    looked["samples of /proc"] = sampler.samples
    print(f"\nsecret leaks: {sum(leaks.values())}; looked at {looked}")
    assert leaks == {}

    # The record keeps each bundle without its secrets/, and says which it had.
    records = sorted((project / "runs").iterdir())
    bundle = records[-1] / "s-1" / "configure"
    assert not (bundle / "secrets").exists()
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["secrets"] and all(name.startswith("secrets/") for name in manifest["secrets"])
    # The compile output holds them, in secrets/ only.
    carried = [p for p in (project / "out").rglob("*") if p.is_file()
               and DB_PASSWORD.encode() in p.read_bytes()]
    assert carried and all(p.parent.name == "secrets" for p in carried)
