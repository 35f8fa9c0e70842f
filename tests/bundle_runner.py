"""Run a compiled bundle on a real node the way `pallet lift` does, through the runtime's own
transport (one connection, one upload and exec per bundle), and read its status lines."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pallet.runtime.model import Endpoint, SshOptions
from pallet.runtime.transport import open_connection

STATUS = re.compile(r"^PALLET-ACTION (\d+) (ok|changed|failed) (.*)$", re.M)
SUMMARY = re.compile(r"^PALLET-SUMMARY ok=(\d+) changed=(\d+) failed=(\d+)$", re.M)


@dataclass
class Run:
    exit_status: int
    stdout: str
    stderr: str

    @property
    def actions(self) -> list[tuple[int, str, str]]:
        return [(int(n), status, label) for n, status, label in STATUS.findall(self.stdout)]

    @property
    def summary(self) -> dict[str, int]:
        m = SUMMARY.search(self.stdout)
        assert m, f"no summary line in:\n{self.stdout}\n{self.stderr}"
        return {"ok": int(m[1]), "changed": int(m[2]), "failed": int(m[3])}


def connect(node, known_hosts: Path):
    """A connection with strict host-key checking against the node's own key."""
    known_hosts.write_text(node.known_hosts_line() + "\n")
    endpoint = Endpoint(node.host, node.port, node.user, str(node.private_key))
    return open_connection(endpoint, SshOptions(known_hosts=known_hosts, use_agent=False))


def run_bundle(conn, bundle_dir: Path) -> Run:
    script = "run.ps1" if (bundle_dir / "run.ps1").exists() else "run.sh"
    shell = "sh" if (bundle_dir / script).read_text().startswith("#!/bin/sh") else "bash"
    files = {str(p.relative_to(bundle_dir)): p.read_bytes()
             for p in sorted(bundle_dir.rglob("*")) if p.is_file()}
    result = conn.run_bundle(files, script, shell)
    return Run(result.exit_status, result.stdout, result.stderr)


def run_command(conn, command: str) -> str:
    result = conn.run(command)
    assert result.exit_status == 0, f"{command}: exit {result.exit_status}: {result.stderr}"
    return result.stdout
