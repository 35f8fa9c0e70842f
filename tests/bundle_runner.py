"""Ship a compiled bundle to a real node over SSH and run it: what `pallet lift` automates.

One upload and one exec: the bundle travels as a tar stream on the command's stdin.
"""
from __future__ import annotations

import io
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

import paramiko

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


def connect(node, known_hosts: Path) -> paramiko.SSHClient:
    known_hosts.write_text(node.known_hosts_line() + "\n")
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(node.host, port=node.port, username=node.user, key_filename=node.private_key,
                   look_for_keys=False, allow_agent=False, timeout=10)
    return client


def tar_bytes(directory: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(directory, arcname=".")
    return buf.getvalue()


def run_bundle(client: paramiko.SSHClient, bundle_dir: Path, shell: str = "bash",
               where: str = "/tmp/pallet-bundle") -> Run:
    script = "run.ps1" if (bundle_dir / "run.ps1").exists() else "run.sh"
    command = (f"rm -rf {where} && mkdir -p {where} && tar -xzf - -C {where} && "
               f"{shell} {where}/{script}")
    stdin, stdout, stderr = client.exec_command(command, timeout=120)
    stdin.write(tar_bytes(bundle_dir))
    stdin.channel.shutdown_write()
    out = stdout.read().decode()
    err = stderr.read().decode()
    return Run(stdout.channel.recv_exit_status(), out, err)


def run_command(client: paramiko.SSHClient, command: str) -> str:
    _, stdout, stderr = client.exec_command(command, timeout=60)
    out = stdout.read().decode()
    status = stdout.channel.recv_exit_status()
    assert status == 0, f"{command}: exit {status}: {stderr.read().decode()}"
    return out
