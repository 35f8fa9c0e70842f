"""etc-hosts: a block of /etc/hosts from groups and entries; the other lines stay."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pallet.runtime.localnodes import LocalNodes

PALLET = str(Path(sys.executable).parent / "pallet")

SPEC = r'''
(def db (group-spec "db" :roles #{:database}))
(def web
  (group-spec "web"
    :extends [(etc-hosts/server :groups [:web] :roles [:database] :domain "internal"
                                :entries {"10.0.0.9" ["backup" "backup.internal"]})]))
'''


CHANGED = r'''
(def web (group-spec "web" :phases {:configure (phase-fn (etc-hosts/hosts :entries {"10.0.0.10" "backup"}))}))
'''


def test_etc_hosts_block(converge, tmp_path):
    result = converge(SPEC, {"db": 1, "web": 2})
    for node in ("web-1", "web-2"):
        hosts = result.sh(node, "cat /etc/hosts")
        # the lines the node was made with are still there, first
        assert hosts.startswith(f"127.0.0.1\tlocalhost\n127.0.1.1\t{node}\n"), hosts
        block = hosts[hosts.index("# BEGIN pallet etc-hosts\n"):]
        assert block == ("# BEGIN pallet etc-hosts\n"
                         "127.0.0.1 web-1.internal web-1\n"
                         "127.0.0.1 web-2.internal web-2\n"
                         "127.0.0.1 db-1.internal db-1\n"
                         "10.0.0.9 backup backup.internal\n"
                         "# END pallet etc-hosts\n"), hosts
        assert result.sh(node, "getent hosts backup.internal") == "10.0.0.9        backup backup.internal\n"
        assert result.sh(node, "stat -c '%a %U' /etc/hosts") == "644 root\n"
    assert "BEGIN pallet" not in result.sh("db-1", "cat /etc/hosts")

    # Another block replaces the old one (at the end of the file); a line added by hand stays.
    hosts = result.sh("web-1", "cat /etc/hosts")
    before = hosts[:hosts.index("# BEGIN pallet")]
    result.sh("web-1", "echo '192.0.2.1 by-hand' >> /etc/hosts")
    (tmp_path / "changed.pallet").write_text(CHANGED)
    subprocess.run([PALLET, "compile", "changed.pallet", "--os", "debian-12", "-o", "out"],
                   cwd=tmp_path, check=True, capture_output=True)
    script = (tmp_path / "out/web/configure/run.sh").read_text()
    for expect in ("changed", "ok"):
        run = LocalNodes(result.state).exec_in("web-1", ["bash", "-c", script], timeout=60)
        assert f"PALLET-ACTION 1 {expect}" in run.stdout, run.stdout + run.stderr
    assert result.sh("web-1", "cat /etc/hosts") == (
        before + "192.0.2.1 by-hand\n# BEGIN pallet etc-hosts\n10.0.0.10 backup\n# END pallet etc-hosts\n")
