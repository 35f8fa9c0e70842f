"""package-repo: an apt source (Debian's bookworm-backports, through the private node's apt
proxy) signed by a key from a local file: the key lands in /etc/apt/keyrings, the source names
it with signed-by, and apt fetched and verified that source's index; a changed source is
refreshed again, once."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pallet.runtime.localnodes import ensure_rootfs

PALLET = str(Path(sys.executable).parent / "pallet")

SPEC = r'''
(def node
  (group-spec "node"
    :extends [(package-repo/server
                :repositories {"backports" {:url "http://deb.debian.org/debian"
                                            :release "bookworm-backports"
                                            :components %(components)s
                                            :key-file "keys/debian-automatic.asc"}})]))
'''


def lift(result, spec: str) -> dict:
    work = result.state.parent
    (work / "spec.pallet").write_text(spec)
    env = {**os.environ, "PALLET_NODES_DIR": str(result.state), "PALLET_LOCAL_NETWORK": "private"}
    run = subprocess.run([PALLET, "lift", "spec.pallet", "--json", "--record-dir", str(work / "runs")],
                         capture_output=True, text=True, env=env, cwd=work, timeout=300)
    report = json.loads(run.stdout)
    assert run.returncode == 0 and report["ok"], run.stdout + run.stderr
    return report


def test_package_repo_apt_source_with_key(converge, local_nodes):
    # The key that signs Debian's bookworm-backports, as the node's own keyring package has it.
    key = (ensure_rootfs(local_nodes.cache_dir)
           / "etc/apt/trusted.gpg.d/debian-archive-bookworm-automatic.asc").read_text()
    result = converge(SPEC % {"components": '["main"]'}, {"node": 1}, network="private",
                      files={"keys/debian-automatic.asc": key})
    node = "node-1"
    assert result.sh(node, "cat /etc/apt/keyrings/backports.asc") == key
    assert result.sh(node, "stat -c '%a %U' /etc/apt/keyrings/backports.asc") == "644 root\n"
    assert result.sh(node, "grep -v '^#' /etc/apt/sources.list.d/backports.list") == (
        "deb [signed-by=/etc/apt/keyrings/backports.asc] http://deb.debian.org/debian "
        "bookworm-backports main\n")
    # apt fetched the source's index and verified it with that key alone.
    assert "bookworm-backports/main" in result.sh(node, "apt-cache policy")
    assert result.sh(node, "ls /var/lib/apt/lists | grep -c 'bookworm-backports_InRelease$'") == "1\n"
    # A changed source: the file and the refresh change, once.
    report = lift(result, SPEC % {"components": '["main" "contrib"]'})
    assert [p["changed"] for n in report["nodes"] for p in n["phases"]] == [2]
    assert "bookworm-backports/contrib" in result.sh(node, "apt-cache policy")
    report = lift(result, SPEC % {"components": '["main" "contrib"]'})
    assert [p["changed"] for n in report["nodes"] for p in n["phases"]] == [0]
