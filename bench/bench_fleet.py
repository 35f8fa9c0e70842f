"""The fleet job side by side: Pallet's whole `pallet lift` against the peers of
../shared/bench/peers (the paramiko floor, the same script over OpenSSH processes, pyinfra 3.x,
Ansible), on the same machine in one run, on fresh local Debian nodes (real sshd on 127.0.0.1).

For each size N (--sizes, default 10,40; the issue's figures: 10,40,200), --rounds times,
and for each tool in turn (a different one first each round): create N fresh local nodes
(not timed), write out the page cache (os.sync, not timed), time the tool's whole process on
them (first run), check on every node over SSH that the job was really done, sync again, time
a repeat run on the same nodes, check again, destroy the nodes. Each run is measured in wall
seconds and in CPU seconds: user + system of the tool's process and of all its children
(os.wait4; Ansible's forks, ssh processes; Pallet's forked SSH helper, also when it exits
after the command has returned: the benchmark is their subreaper). Then print the table
(tool x N x first/repeat, medians) and the ratios of the goals (issues [3/4] and [8/9]):

    Pallet / paramiko floor                     at most 1.3x wall, at most 1.5x CPU
    Pallet, OS detected / paramiko floor        at most 1.5x wall
    pyinfra / Pallet                            at least 3x
    Ansible / Pallet                            at least 15x

`pallet-detect` is `pallet lift` with an inventory that gives no os-family or os-version,
so Pallet must detect each node's OS before it can compile.

Needs root (local nodes); without it, says so and skips. pyinfra and Ansible come from the
optional extra `bench` (`pip install -e '.[bench]'`, which `make bench` does); a tool that is
not installed is skipped. Nodes live in a temporary state directory and are destroyed by
their stored pids after each tool, also when the benchmark fails or is interrupted.

    python bench/bench_fleet.py [--sizes 10,40,200] [--tools pallet,floor-paramiko,...]
                                [--rounds 3] [--json FILE]

Measured (2026-12-02, the shared 2-core machine, one round, load 6 to 35; docs/runtime.md
has the tables): Pallet / floor, wall / CPU, first and repeat: 10 nodes 1.32x / 1.94x and
1.42x / 1.78x, 40 nodes 1.21x / 2.04x and 1.31x / 1.97x, 200 nodes 1.21x / 2.06x and
1.36x / 1.95x; with OS detection 1.20x-1.65x wall; 500 nodes (`--sizes 500`, load 13 to
59) 1.31x / 2.85x and 1.32x / 2.37x, detection 1.30x-1.32x wall, 22.2 s for Pallet's first
run against the floor's 17.0 s. After one keepalive thread for all connections (the same
day, `--sizes 10,40,200 --tools pallet,floor-paramiko --rounds 1`, load 3.1 to 31.3): CPU
1.93x / 1.97x, 1.88x / 1.87x, 1.96x / 1.85x; wall 1.17x / 1.22x, 1.13x / 1.32x,
1.22x / 1.29x (docs/runtime.md: the old and new versions alternating on the same nodes).

Exit status: 0 when every tool ran and did the job (goals met or not: the figures are the
result), 1 when a tool failed or left the nodes wrong, 2 on bad arguments.
The machines are noisy: compare only figures taken in the same run.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# ../shared/bench/peers beside the checkout (or beside the directory of worktrees), or
# PALLET_BENCH_PEERS.
PEERS = Path(os.environ.get("PALLET_BENCH_PEERS") or next(
    (p for p in (ROOT.parent / "shared" / "bench" / "peers", ROOT.parent.parent / "shared" / "bench" / "peers")
     if p.is_dir()), ROOT.parent / "shared" / "bench" / "peers")).resolve()
SPEC = ROOT / "examples" / "fleet.pallet"
BIN = Path(sys.executable).parent
GROUP = "fleet"
RUN_TIMEOUT = 300.0          # seconds for one run of one tool (Ansible on 40 nodes takes ~1 min)

TOOLS = {                    # key -> label in the table
    "pallet": "pallet lift",
    "pallet-detect": "pallet lift, OS detected",
    "floor-paramiko": "floor_paramiko.py",
    "floor-openssh": "fleet_floor.sh over",
    "pyinfra": "pyinfra",
    "ansible": "Ansible",
}
GOALS = (                    # (numerator, denominator, measure, bound, "max"|"min", words)
    ("pallet", "floor-paramiko", "wall", 1.3, "max", "Pallet / paramiko floor, wall (goal: within 1.3x)"),
    ("pallet", "floor-paramiko", "cpu", 1.5, "max", "Pallet / paramiko floor, CPU (goal: within 1.5x)"),
    ("pallet-detect", "floor-paramiko", "wall", 1.5, "max",
     "Pallet with OS detection / paramiko floor, wall (goal: within 1.5x)"),
    ("pyinfra", "pallet", "wall", 3.0, "min", "pyinfra / Pallet (goal: at least 3x)"),
    ("ansible", "pallet", "wall", 15.0, "min", "Ansible / Pallet (goal: at least 15x)"),
)


VERSIONS: dict[str, str] = {}


class BenchError(Exception):
    pass


@dataclass
class Cell:
    """One tool on one size: the seconds of each round's first and repeat runs; the figure
    is their median (the machines are noisy; --rounds 3 or more evens that out)."""

    firsts: list[float] = field(default_factory=list)
    repeats: list[float] = field(default_factory=list)
    firsts_cpu: list[float] = field(default_factory=list)
    repeats_cpu: list[float] = field(default_factory=list)
    error: str | None = None

    def figure(self, which: str, measure: str = "wall") -> float | None:
        samples = getattr(self, which + "s" + ("_cpu" if measure == "cpu" else ""))
        return statistics.median(samples) if samples else None

    @property
    def first(self) -> float | None:
        return statistics.median(self.firsts) if self.firsts else None

    @property
    def repeat(self) -> float | None:
        return statistics.median(self.repeats) if self.repeats else None


@dataclass
class Results:
    sizes: list[int]
    tools: list[str]
    versions: dict[str, str] = field(default_factory=dict)
    cells: dict[tuple[str, int], Cell] = field(default_factory=dict)

    def cell(self, tool: str, n: int) -> Cell:
        return self.cells.setdefault((tool, n), Cell())


# -- the job and its check ------------------------------------------------------------------
def node_names(n: int) -> list[str]:
    return [f"fleet-{i}" for i in range(1, n + 1)]


def expected_state(name: str, names: list[str]) -> dict[str, str]:
    peers = ",".join(sorted(x for x in names if x != name))
    return {
        "/opt/app": "directory 755",
        "/opt/app/motd": "regular file 644 app",
        "/opt/app/app.conf": "regular file 640 app",
        "/etc/sysctl.d/99-app.conf": "present",
        "/opt/app/.initialized": "present",
        "current": "/opt/app",
        "user": "/opt/app:/bin/bash",
        "motd": "hello fleet",
        "app.conf": f"[app]|name = {name}|port = 8080|peers = {peers}",
        "sysctl": "net.ipv4.ip_forward = 1",
    }


# One exec per node: key=value lines (file contents with '|' for newlines).
CHECK_SCRIPT = r"""
st() { stat -c '%F %a %U' "$1" 2>/dev/null || echo missing; }
echo "/opt/app=$(stat -c '%F %a' /opt/app 2>/dev/null || echo missing)"
echo "/opt/app/motd=$(st /opt/app/motd)"
echo "/opt/app/app.conf=$(st /opt/app/app.conf)"
for f in /etc/sysctl.d/99-app.conf /opt/app/.initialized; do
  if [ -e "$f" ]; then echo "$f=present"; else echo "$f=missing"; fi
done
echo "current=$(readlink /opt/app/current)"
echo "user=$(getent passwd app | cut -d: -f6,7)"
echo "motd=$(paste -sd'|' /opt/app/motd 2>/dev/null)"
echo "app.conf=$(paste -sd'|' /opt/app/app.conf 2>/dev/null)"
echo "sysctl=$(paste -sd'|' /etc/sysctl.d/99-app.conf 2>/dev/null)"
"""


def check_nodes(nodes, known_hosts: Path) -> list[str]:
    """Every node over SSH (its host key checked): the fleet job's state, or what differs."""
    import paramiko

    names = [n.name for n in nodes]

    def one(node) -> list[str]:
        client = paramiko.SSHClient()
        client.load_host_keys(str(known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(node.host, port=node.port, username=node.user, key_filename=node.private_key,
                           look_for_keys=False, allow_agent=False, timeout=10)
            _, stdout, _ = client.exec_command(CHECK_SCRIPT, timeout=30)
            text = stdout.read().decode(errors="replace")
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            return [f"{node.name}: cannot check over SSH: {exc}"]
        finally:
            client.close()
        got = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        want = expected_state(node.name, names)
        return [f"{node.name}: {key}: expected {value!r}, found {got.get(key)!r}"
                for key, value in want.items() if got.get(key) != value]

    with cf.ThreadPoolExecutor(max_workers=min(32, len(nodes))) as pool:
        return [p for problems in pool.map(one, nodes) for p in problems]


# -- each tool's files ----------------------------------------------------------------------
def write_known_hosts(nodes, path: Path) -> None:
    path.write_text("".join(n.known_hosts_line() + "\n" for n in nodes))


def pallet_files(nodes, work: Path, known_hosts: Path, detect: bool = False) -> list[str]:
    rows = []
    for node in nodes:
        entry = node.inventory_entry(GROUP)
        if detect:  # no OS given: Pallet asks each node before it compiles
            entry = {k: v for k, v in entry.items() if k not in ("os-family", "os-version")}
        rows.append("[[node]]\n" + "".join(
            f"{k} = {json.dumps(v)}\n" for k, v in entry.items()))
    inv = work / "inventory.toml"
    inv.write_text("\n".join(rows))
    return [str(BIN / "pallet"), "lift", str(SPEC), "--nodes", str(inv),
            "--known-hosts", str(known_hosts), "--record-dir", str(work / "records")]


def floor_nodes_json(nodes, work: Path) -> Path:
    path = work / "nodes.json"
    path.write_text(json.dumps([{"name": n.name, "host": n.host, "port": n.port, "user": n.user,
                                 "key": n.private_key} for n in nodes], indent=1))
    return path


def floor_paramiko_files(nodes, work: Path, known_hosts: Path) -> list[str]:
    return [sys.executable, str(PEERS / "floor_paramiko.py"), str(floor_nodes_json(nodes, work))]


def floor_openssh_files(nodes, work: Path, known_hosts: Path) -> list[str]:
    """A bash driver: one `ssh host "bash -s NAME PEERS" < fleet_floor.sh` per node, all at once."""
    names = sorted(n.name for n in nodes)
    script = PEERS / "fleet_floor.sh"
    lines = ["#!/bin/bash", "pids=()"]
    for node in nodes:
        peers = ",".join(x for x in names if x != node.name)
        ssh = ["ssh", "-F", "/dev/null", "-p", str(node.port), "-i", node.private_key,
               "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ControlMaster=no",
               "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes",
               "-o", "LogLevel=ERROR", f"{node.user}@{node.host}", f"bash -s {node.name} {peers}"]
        lines.append(f"{shlex.join(ssh)} < {shlex.quote(str(script))} "
                     f"> {shlex.quote(str(work / ('ssh-' + node.name + '.log')))} 2>&1 & pids+=($!)")
    lines += ["fail=0", 'for p in "${pids[@]}"; do wait "$p" || fail=$((fail + 1)); done',
              'echo "floor-openssh nodes=${#pids[@]} failures=$fail"', '[ "$fail" = 0 ]']
    driver = work / "floor_openssh.sh"
    driver.write_text("\n".join(lines) + "\n")
    return ["bash", str(driver)]


def pyinfra_files(nodes, work: Path, known_hosts: Path) -> list[str]:
    shutil.copy(PEERS / "fleet_pyinfra.py", work / "fleet_pyinfra.py")
    hosts = [(n.name, {"ssh_hostname": n.host, "ssh_port": n.port, "ssh_user": n.user,
                       "ssh_key": n.private_key, "ssh_known_hosts_file": str(known_hosts),
                       "ssh_strict_host_key_checking": "yes"}) for n in nodes]
    (work / "inventory.py").write_text(f"fleet = {hosts!r}\n")
    return [str(BIN / "pyinfra"), "inventory.py", "fleet_pyinfra.py", "-y"]


def ansible_files(nodes, work: Path, known_hosts: Path) -> list[str]:
    for name in ("fleet_ansible.yml", "ansible.cfg"):
        shutil.copy(PEERS / name, work / name)
    # The interpreter is named so Ansible spends no round trip discovering it (in its favour).
    rows = [f"{n.name} ansible_host={n.host} ansible_port={n.port} ansible_user={n.user} "
            f"ansible_ssh_private_key_file={n.private_key} ansible_python_interpreter=/usr/bin/python3"
            for n in nodes]
    (work / "inventory.ini").write_text(f"[{GROUP}]\n" + "\n".join(rows) + "\n")
    return [str(BIN / "ansible-playbook"), "-i", "inventory.ini", "fleet_ansible.yml"]


def ansible_env(work: Path) -> dict[str, str]:
    (work / "cp").mkdir(exist_ok=True)
    return {"ANSIBLE_CONFIG": str(work / "ansible.cfg"), "ANSIBLE_HOME": str(work / "ansible-home"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(work / "cp"), "ANSIBLE_NOCOLOR": "1"}


def pallet_detect_files(nodes, work: Path, known_hosts: Path) -> list[str]:
    return pallet_files(nodes, work, known_hosts, detect=True)


SETUP = {"pallet": pallet_files, "pallet-detect": pallet_detect_files, "floor-paramiko": floor_paramiko_files,
         "floor-openssh": floor_openssh_files, "pyinfra": pyinfra_files, "ansible": ansible_files}


def versions(tools: list[str]) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version
    found = {}
    for tool, dist in (("pallet", "pallet-py"), ("pallet-detect", "pallet-py"), ("floor-paramiko", "paramiko"),
                       ("pyinfra", "pyinfra"), ("ansible", "ansible-core")):
        if tool in tools:
            try:
                found[tool] = version(dist)
            except PackageNotFoundError:
                pass
    if "floor-openssh" in tools:
        r = subprocess.run(["ssh", "-V"], capture_output=True, text=True)
        found["floor-openssh"] = (r.stderr or r.stdout).split(",")[0].strip().split(" ")[0].replace("_", " ")
    return found


def available(tool: str) -> str | None:
    """Why a tool cannot run here, or None."""
    need = {"pallet": BIN / "pallet", "pallet-detect": BIN / "pallet", "pyinfra": BIN / "pyinfra", "ansible": BIN / "ansible-playbook"}
    if tool in need and not need[tool].exists():
        return f"{need[tool]} is not installed (pip install -e '.[bench]')"
    if tool.startswith("floor") and not (PEERS / "fleet_floor.sh").exists():
        return f"the peers' files are not in {PEERS}"
    if tool == "floor-openssh" and not shutil.which("ssh"):
        return "no ssh client (apt-get install openssh-client)"
    return None


# -- running --------------------------------------------------------------------------------
def precompile() -> None:
    """Pallet's modules compiled to bytecode, as an installed package has them (pip compiles
    at install time; pyinfra and Ansible were): an editable install under
    PYTHONDONTWRITEBYTECODE=1 would otherwise compile ~30 modules from source every run."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    dirs = [str(ROOT / d) for d in ("pallet", "grammar", "stevedore", "compiler", "runtime", "crates")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *dirs], env=env,
                   stdout=subprocess.DEVNULL, check=False)


def _become_subreaper() -> None:
    """Processes a tool leaves behind (Pallet's SSH helper, which exits just after the command
    returns) become this process's children, so their CPU time is counted (Linux only)."""
    import ctypes
    try:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)   # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _reap_group(pgid: int, grace: float = 10.0) -> float:
    """Wait for the processes of the tool's group that outlived it (reparented to this
    process), killing what is left after `grace` seconds; their CPU seconds."""
    cpu, deadline = 0.0, time.perf_counter() + grace
    while True:
        try:
            pid, _, usage = os.wait4(-pgid, os.WNOHANG)
        except ChildProcessError:
            return cpu
        if pid:
            cpu += usage.ru_utime + usage.ru_stime
            continue
        if time.perf_counter() > deadline:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.005)


def timed_run(argv: list[str], cwd: Path, env: dict[str, str], log: Path) -> tuple[float, float, int]:
    """Wall seconds of the tool's whole process, its CPU seconds (user + system of it, of
    every child it waited for (wait4's figures) and of the processes of its group that
    outlived it, such as Pallet's SSH helper), and its exit status. The tool runs in a
    process group of its own, killed whole on a timeout or an interrupt (Ansible's forks too)."""
    _become_subreaper()
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = start + RUN_TIMEOUT
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() > deadline:
                    raise subprocess.TimeoutExpired(argv, RUN_TIMEOUT)
                time.sleep(0.005)
            wall = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
            left = _reap_group(proc.pid)
        except BaseException:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            raise
        return wall, usage.ru_utime + usage.ru_stime + left, proc.returncode


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("      " + line for line in text[-lines:])


def bench_tool(local, tool: str, n: int, base: Path, cell: Cell) -> None:
    """Fresh nodes, first run (timed, checked), repeat run (timed, checked), nodes destroyed."""
    work = base / f"{tool}-{n}"
    work.mkdir(parents=True)
    names = node_names(n)
    try:
        nodes = local.create_many(names)
        known_hosts = work / "known_hosts"
        write_known_hosts(nodes, known_hosts)
        argv = SETUP[tool](nodes, work, known_hosts)
        env = ansible_env(work) if tool == "ansible" else {}
        for which in ("first", "repeat"):
            log = work / f"{which}.log"
            # Untimed: what earlier runs (this tool's or another's) left in the page cache is
            # written now, not during this run.
            os.sync()
            try:
                seconds, cpu, code = timed_run(argv, work if tool in ("pyinfra", "ansible") else ROOT, env, log)
            except subprocess.TimeoutExpired:
                raise BenchError(f"{which} run did not finish in {RUN_TIMEOUT:.0f} s; its output:\n{tail(log)}")
            output = log.read_text(errors="replace")
            if code != 0 or (tool.startswith("floor") and "failures=0" not in output):
                raise BenchError(f"{which} run failed (exit {code}); its output:\n{tail(log)}")
            problems = check_nodes(nodes, known_hosts)
            if problems:
                more = f"\n      ... and {len(problems) - 5} more" if len(problems) > 5 else ""
                raise BenchError(f"{which} run exited 0 but did not do the job:\n      "
                                 + "\n      ".join(problems[:5]) + more)
            getattr(cell, which + "s").append(seconds)
            getattr(cell, which + "s_cpu").append(cpu)
            print(f"  {label(tool):<36} {n:>3} nodes  {which:<6} {seconds:7.2f} s wall {cpu:7.2f} s CPU"
                  f"  (checked; load {os.getloadavg()[0]:.1f})", flush=True)
    finally:
        made = [x for x in names if (local.state_dir / "nodes" / x / "node.json").exists()]
        if made:
            local.destroy_many(made)


# -- reporting ------------------------------------------------------------------------------
def label(tool: str, versions: dict[str, str] | None = None) -> str:
    versions = VERSIONS if versions is None else versions
    version = versions.get(tool) if tool != "floor-paramiko" else None
    return f"{TOOLS[tool]} {version}" if version else TOOLS[tool]


def fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f}"


def table(results: Results, measure: str = "wall") -> str:
    head = "| tool | " + " | ".join(f"{n} nodes" for n in results.sizes) + " |"
    rows = [head, "|---|" + "---|" * len(results.sizes)]
    for tool in results.tools:
        cells = []
        for n in results.sizes:
            c = results.cells.get((tool, n), Cell())
            first, repeat = c.figure("first", measure), c.figure("repeat", measure)
            cells.append("failed" if c.error and first is None else f"{fmt(first)} / {fmt(repeat)}")
        rows.append(f"| {label(tool, results.versions)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def ratios(results: Results) -> tuple[str, list[dict]]:
    lines, verdicts = [], []
    for num, den, measure, bound, kind, words in GOALS:
        if num not in results.tools or den not in results.tools:
            continue
        parts, met_all, complete = [], True, True
        for n in results.sizes:
            a, b = results.cells.get((num, n), Cell()), results.cells.get((den, n), Cell())
            for which in ("first", "repeat"):
                x, y = a.figure(which, measure), b.figure(which, measure)
                if x is None or y is None:
                    parts.append(f"{n} {which}: -")
                    complete = False
                    continue
                r = x / y
                ok = r <= bound if kind == "max" else r >= bound
                met_all &= ok
                parts.append(f"{n} {which}: {r:.2f}x{'' if ok else ' (not met)'}")
                verdicts.append({"goal": words, "nodes": n, "run": which, "measure": measure,
                                 "ratio": round(r, 3), "met": ok})
        verdict = "MET" if met_all and complete else "NOT MET" if not met_all else "incomplete"
        lines.append(f"{words}: {verdict}\n    " + ", ".join(parts))
    return "\n".join(lines), verdicts


# -- main -----------------------------------------------------------------------------------
def _interrupt(signum, frame):
    # SIGTERM (a CI timeout, say) unwinds like Ctrl-C, so the nodes are destroyed.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10,40",
                    help="node counts, comma-separated (default 10,40; the issue's: 10,40,200)")
    ap.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated, of: {', '.join(TOOLS)}")
    ap.add_argument("--rounds", type=int, default=3,
                    help="times each tool runs on each size, on fresh nodes each time, in turn "
                         "with the others; the table shows medians (default 3)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (tools' logs)")
    args = ap.parse_args(argv)
    try:
        sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    except ValueError:
        ap.error("--sizes: numbers, comma-separated")
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [t for t in tools if t not in TOOLS]
    if unknown or not tools or not sizes or min(sizes) < 2:
        ap.error(f"unknown tool(s) {unknown}" if unknown else "give tools, and sizes of 2 or more")

    from pallet.runtime.localnodes import LocalNodes, NodesUnavailable, preflight

    signal.signal(signal.SIGTERM, _interrupt)
    skipped = {t: why for t in tools if (why := available(t))}
    tools_run = [t for t in tools if t not in skipped]
    results = Results(sizes=sizes, tools=tools_run, versions=versions(tools_run))
    VERSIONS.update(results.versions)
    for tool, why in skipped.items():
        print(f"bench_fleet: skipping {TOOLS[tool]}: {why}")

    base = Path(tempfile.mkdtemp(prefix="pallet-bench-fleet-"))
    local = LocalNodes(state_dir=base / "nodes")
    failed = 0
    began = time.monotonic()
    loads = [os.getloadavg()]
    try:
        try:
            preflight(local.state_dir)
        except NodesUnavailable as exc:
            print(f"bench_fleet: skipped: {exc}")
            return 0
        precompile()
        print(f"fleet job on fresh local nodes, wall and CPU seconds of each tool's whole process "
              f"(first / repeat), sizes {sizes}; work dir {base}", flush=True)
        for n in sizes:
            for round_ in range(max(1, args.rounds)):
                # in turn, starting with another tool each round: no tool always goes first
                for tool in tools_run[round_ % len(tools_run):] + tools_run[:round_ % len(tools_run)]:
                    cell = results.cell(tool, n)
                    if cell.error:
                        continue
                    try:
                        bench_tool(local, tool, n, base / f"round{round_}", cell)
                    except BenchError as exc:
                        cell.error = str(exc)
                        failed += 1
                        print(f"  {label(tool):<36} {n:>3} nodes  FAILED: {exc}", flush=True)
    except KeyboardInterrupt:
        print("bench_fleet: interrupted; destroying the nodes", file=sys.stderr)
        failed += 1
    finally:
        leftover = [node.name for node in local.list()] if (base / "nodes").is_dir() else []
        if leftover:
            local.destroy_many(leftover)
        if args.keep or failed:
            print(f"bench_fleet: tools' logs kept in {base}")
            shutil.rmtree(base / "nodes", ignore_errors=True)
        else:
            shutil.rmtree(base, ignore_errors=True)

    loads.append(os.getloadavg())
    print()
    print(f"Measured side by side in one run ({os.cpu_count()} CPUs, {time.monotonic() - began:.0f} s in all, "
          f"load average {loads[0][0]:.1f} at the start, {loads[1][0]:.1f} at the end), "
          "first run / repeat run" + (f", medians of {args.rounds} rounds" if args.rounds > 1 else "")
          + ". Wall seconds of the whole process:")
    print()
    print(table(results))
    print()
    print("CPU seconds (user + system of the process and all its children):")
    print()
    print(table(results, "cpu"))
    print()
    text, verdicts = ratios(results)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "sizes": sizes, "versions": results.versions, "load_average": loads,
            "runs": [{"tool": t, "nodes": n, "first": c.first, "repeat": c.repeat,
                      "first_cpu": c.figure("first", "cpu"), "repeat_cpu": c.figure("repeat", "cpu"),
                      "first_samples": c.firsts, "repeat_samples": c.repeats,
                      "first_cpu_samples": c.firsts_cpu, "repeat_cpu_samples": c.repeats_cpu,
                      "error": c.error}
                     for (t, n), c in results.cells.items()],
            "goals": verdicts}, indent=2) + "\n")
    if failed:
        print(f"\nbench_fleet: {failed} tool run(s) failed (see above)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
