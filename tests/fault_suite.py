"""The fault suite (`make faults`, and tests/test_faults.py in `make test`): each fault of
FAULT-NOTES.md made for real on local Debian nodes while `pallet lift` runs, one row each:
the fault, what the run reported, how long it took to report it, and what the node holds
afterwards (the managed file whole, old or new, never half-written; no temporary file beside
it; no bundle directory left once its step ended). Every row asserts what it expects; the
suite exits 1 when one does not hold.

    python tests/fault_suite.py [--json] [--jobs N] [ROW ...]      (as root)

Each row runs in a process of its own, in a network namespace of its own (`unshare --net`):
its nodes, the run, and the nftables rules or the tc qdisc that make its fault live there and
go with it; nothing touches the machine's own network. Keepalive and connect options are
small where a row would otherwise wait out the defaults, except the frozen session, which
shows the defaults (15 s, 3: reported 45 to 60 s after the freeze).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

PALLET = str(Path(sys.executable).parent / "pallet")
ROW_TIMEOUT = 150            # seconds one row may take, nodes included

# The spec of every row: `w` (the witness) and `v` (the victim) each write a managed file,
# then v marks that its step started and holds for HOLD seconds, then both write a second
# file. Phase :start follows, for the faults between phases.
SPEC = r'''
(def f (group-spec "f" :phases {
  :configure (phase-fn
    (remote-file "/srv/app.conf" :content (str "new " (target-name) "\n"))
    (when (= (target-name) "VICTIM")
      (exec-script "hold" (touch "/run/fault-started") (sleep HOLD)))
    (remote-file "/srv/after.conf" :content "after\n"))
  :start (phase-fn
    (when (= (target-name) "VICTIM") (exec-script "wait" (sleep BARRIER)))
    (remote-file "/srv/started.conf" :content "started\n"))}))
'''

ROWS: dict[str, tuple[str, object]] = {}
HOLD = {"reboot": 8, "sshdrestart": 5}
WORK = ""                   # the row's work directory, left out of the messages shown      # rows whose step must hold longer than 3 s


def row(name: str, fault: str):
    def register(fn):
        ROWS[name] = (fault, fn)
        return fn
    return register


class Failed(Exception):
    """A row's expectation that did not hold."""


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise Failed(what)


# ---- one row's world --------------------------------------------------------------------------

class Scene:
    """Two fresh nodes (`<row>-w`, `<row>-v`) in this process's network namespace, an
    inventory and known_hosts for them, the spec, and a way to run pallet on them."""

    def __init__(self, name: str, work: Path, hold: float = 3, barrier: float = 0):
        from pallet.runtime.localnodes import LocalNodes
        self.name, self.work = name, work
        self.manager = LocalNodes(work / "nodes", egress=())
        self.nodes = {n.name: n for n in self.manager.create_many([f"{name}-w", f"{name}-v"])}
        self.v = f"{name}-v"
        self.w = f"{name}-w"
        self.ports = {n: node.port for n, node in self.nodes.items()}
        self.known = work / "known_hosts"
        self.known.write_text("".join(n.known_hosts_line() + "\n" for n in self.nodes.values()))
        self.spec = work / "f.pallet"
        self.spec.write_text(SPEC.replace("VICTIM", self.v).replace("HOLD", f"{hold:g}")
                             .replace("BARRIER", f"{barrier:g}"))
        self.inventory = work / "inventory.toml"
        self.write_inventory()
        self.record = work / "runs"

    def write_inventory(self, **override) -> None:
        rows = []
        for n, node in self.nodes.items():
            e = {**node.inventory_entry("f"), **override.get(n, {})}
            rows.append("[[node]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in e.items()))
        self.inventory.write_text("\n".join(rows))

    def start(self, *options: str) -> subprocess.Popen:
        args = [PALLET, "lift", str(self.spec), "--nodes", str(self.inventory), "--known-hosts",
                str(self.known), "--record-dir", str(self.record), "--json", *options]
        self.started = time.monotonic()
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(self, proc: subprocess.Popen, timeout: float = 120) -> tuple[int, dict]:
        out, err = proc.communicate(timeout=timeout)
        self.ended = time.monotonic()
        expect("Traceback" not in err, f"a traceback: {err[-800:]}")
        try:
            return proc.returncode, json.loads(out)
        except ValueError:
            raise Failed(f"no JSON report (exit {proc.returncode}): {err[-800:]}") from None

    def run(self, *options: str) -> tuple[int, dict]:
        return self.finish(self.start(*options))

    def wait_started(self, proc: subprocess.Popen, timeout: float = 60) -> float:
        """Wait until v's step has started (its mark file); returns the time."""
        deadline = time.monotonic() + timeout
        while self.sh(self.v, "test -e /run/fault-started").returncode != 0:
            if proc.poll() is not None:
                raise Failed(f"the run ended before the step started: {proc.communicate()}")
            expect(time.monotonic() < deadline, "the step never started")
            time.sleep(0.05)
        return time.monotonic()

    def sh(self, node: str, script: str, check: bool = False) -> subprocess.CompletedProcess:
        return self.manager.exec_in(node, ["sh", "-c", script], check=check)

    def holds(self, node: str, wait: float = 20) -> str:
        """What the node holds: its managed files (whole or absent), temporary files beside
        them, bundle directories and bundle processes; waits up to `wait` s for the bundle's
        directory to go (its step must end first). Fails on a half-written file or leftovers."""
        deadline = time.monotonic() + wait
        while True:
            left = self.sh(node, "ls -d /tmp/pallet-bundle.* 2>/dev/null").stdout.split()
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        expect(not left, f"{node} still holds {left}")
        temps = self.sh(node, "ls -A /srv 2>/dev/null | grep '^\\.pallet\\.' || true").stdout.split()
        expect(not temps, f"{node} holds temporary files {temps}")
        files = []
        for path, whole in (("app.conf", f"new {node}\n"), ("after.conf", "after\n"),
                            ("started.conf", "started\n")):
            got = self.sh(node, f"cat /srv/{path} 2>/dev/null").stdout
            if got == "" and self.sh(node, f"test -e /srv/{path}").returncode != 0:
                continue
            expect(got in (whole, "old\n"), f"{node}:/srv/{path} is half-written: {got[:40]!r}")
            files.append(path + ("(old)" if got == "old\n" else ""))
        return f"{', '.join(files) or 'no files'}; no temp file, no bundle dir"

    def close(self) -> None:
        self.manager.destroy_all()


def outcome(report: dict, node: str, phase: str = "configure") -> dict:
    for n in report["nodes"]:
        if n["name"] == node:
            for p in n["phases"]:
                if p["phase"] == phase:
                    return p
    raise Failed(f"no outcome for {node} :{phase} in {report}")


def short(error: str | None, limit: int = 120) -> str:
    """The message's head and its tail (where a cause is), without the row's work paths."""
    error = (error or "").replace("\n", " ")
    if WORK:
        error = error.replace(WORK + "/", "")
    return error if len(error) <= limit else f"{error[:limit // 2 - 3]} ... {error[-(limit // 2 - 2):]}"


def nft(*rules: str) -> None:
    """A table `fault` whose output hook applies `rules` (on loopback, output sees both ways)."""
    text = ("table inet fault {\n chain out {\n  type filter hook output priority 0;\n"
            + "".join(f"  {r}\n" for r in rules) + " }\n}\n")
    subprocess.run(["nft", "-f", "-"], input=text, text=True, check=True, capture_output=True)


def nft_off() -> None:
    subprocess.run(["nft", "delete", "table", "inet", "fault"], check=True, capture_output=True)


def mid_phase(scene: Scene, inject, *options: str, cleanup=None) -> tuple[dict, float]:
    """Run; inject the fault once v's step started; the victim must fail and the witness
    finish. Returns (v's outcome, seconds from the fault to the end of the run)."""
    proc = scene.start(*options)
    try:
        scene.wait_started(proc)
        at = time.monotonic()
        inject()
        code, report = scene.finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        if cleanup:
            cleanup()
    expect(code == 1, f"exit {code}")
    expect(outcome(report, scene.w)["status"] == "changed", f"the witness: {outcome(report, scene.w)}")
    v = outcome(report, scene.v)
    expect(v["status"] == "failed", f"the victim: {v}")
    return v, scene.ended - at


# ---- the rows -------------------------------------------------------------------------------

QUICK = ("--keepalive-interval", "1", "--keepalive-count", "3")


@row("none", "none (the same run without a fault, for comparison)")
def none(scene: Scene) -> tuple[str, float, str]:
    code, report = scene.run()
    v = outcome(report, scene.v)
    expect(code == 0 and v["status"] == "changed", str(v))
    expect(outcome(report, scene.v, "start")["status"] == "changed", str(report))
    return "changed (ok)", scene.ended - scene.started, scene.holds(scene.v)


@row("dropped", "connection dropped mid-phase (kill -9 the session's sshd)")
def dropped(scene: Scene) -> tuple[str, float, str]:
    from faults import drop_sessions
    v, took = mid_phase(scene, lambda: drop_sessions(scene.manager, scene.v))
    expect(v["cause"] == "dropped" and "connection broke" in v["error"], v["error"])
    expect(took < 10, f"{took:.1f} s")
    return short(v["error"]), took, scene.holds(scene.v)


@row("reset", "reset (nft: reject with tcp reset)")
def reset(scene: Scene) -> tuple[str, float, str]:
    port = scene.ports[scene.v]
    v, took = mid_phase(scene, lambda: nft(f"tcp dport {port} tcp flags != rst reject with tcp reset"),
                        *QUICK, cleanup=nft_off)
    expect(v["cause"] == "dropped", v["error"])
    expect(took < 10, f"{took:.1f} s")
    return short(v["error"]), took, scene.holds(scene.v)


@row("blackhole", "blackhole (nft: drop both ways)")
def blackhole(scene: Scene) -> tuple[str, float, str]:
    port = scene.ports[scene.v]
    v, took = mid_phase(scene, lambda: nft(f"tcp dport {port} drop", f"tcp sport {port} drop"),
                        *QUICK, cleanup=nft_off)
    expect(v["cause"] == "dropped" and "stopped answering: no reply to 3 keepalive requests "
           "sent 1 s apart" in v["error"], v["error"])
    expect(2 <= took < 12, f"{took:.1f} s")
    return short(v["error"]), took, scene.holds(scene.v, wait=40)


@row("frozen", "frozen session (SIGSTOP sshd and all under it), default keepalives")
def frozen(scene: Scene) -> tuple[str, float, str]:
    from faults import freeze_sessions, thaw
    pids: list[int] = []
    v, took = mid_phase(scene, lambda: pids.extend(freeze_sessions(scene.manager, scene.v)),
                        cleanup=lambda: thaw(scene.manager, scene.v, pids))
    expect(bool(pids), "nothing was frozen")
    expect(v["cause"] == "dropped" and "stopped answering: no reply to 3 keepalive requests "
           "sent 15 s apart" in v["error"], v["error"])
    expect(44 <= took < 75, f"{took:.1f} s")
    expect(outcome_seconds(scene, scene.w) < 20, "the witness waited for the victim")
    return short(v["error"]), took, scene.holds(scene.v)


def outcome_seconds(scene: Scene, node: str) -> float:
    result = next(scene.record.glob(f"*/{node}/configure/result.json"))
    return json.loads(result.read_text())["seconds"]


@row("latency", "latency 250 ms each way (a delaying proxy)")
def latency(scene: Scene) -> tuple[str, float, str]:
    from faults import DelayProxy
    proxy = DelayProxy(scene.ports[scene.v], 0.25)
    try:
        node = scene.nodes[scene.v]
        scene.known.write_text(scene.known.read_text() + node.known_hosts_line().replace(
            f"]:{node.port} ", f"]:{proxy.port} ") + "\n")
        scene.write_inventory(**{scene.v: {"port": proxy.port}})
        code, report = scene.run("--connect-timeout", "0.4")
        v = outcome(report, scene.v)
        expect(code == 1 and v["cause"] == "timeout" and "(3 attempts)" in v["error"]
               and "No existing session" not in v["error"], v["error"])
        fast = scene.ended - scene.started
        code, report = scene.run()
        slow = scene.ended - scene.started
        expect(code == 0 and outcome(report, scene.v)["status"] == "changed", str(report))
    finally:
        proxy.close()
    return (short(v["error"], 80) + f"; default --connect-timeout: changed in {slow:.1f} s",
            fast, scene.holds(scene.v))


@row("loss", "loss 10% each way (nft numgen)")
def loss(scene: Scene) -> tuple[str, float, str]:
    port = scene.ports[scene.v]
    nft(f"tcp dport {port} numgen random mod 100 < 10 drop",
        f"tcp sport {port} numgen random mod 100 < 10 drop")
    try:
        code, report = scene.run()
    finally:
        nft_off()
    v = outcome(report, scene.v)
    expect(code == 0 and v["status"] == "changed", str(v))
    return f"changed (ok), {v['seconds']:.1f} s for the phase", scene.ended - scene.started, \
        scene.holds(scene.v)


@row("slowlink", "slow link (tc tbf 4 Mbit/s, MTU 1500), 1 MB file")
def slowlink(scene: Scene) -> tuple[str, float, str]:
    size = 16 * 65536
    scene.spec.write_text(scene.spec.read_text().replace(
        '(remote-file "/srv/after.conf" :content "after\\n")',
        '(remote-file "/srv/after.conf" :content "after\\n") '
        '(remote-file "/srv/big" :content (apply str (repeat 65536 "0123456789abcdef")))'))
    subprocess.run(["ip", "link", "set", "lo", "mtu", "1500"], check=True)
    subprocess.run(["tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "4mbit", "burst",
                    "32kb", "latency", "200ms"], check=True)
    try:
        code, report = scene.run()
    finally:
        subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], check=True)
    v = outcome(report, scene.v)
    expect(code == 0 and v["status"] == "changed", str(v))
    got = scene.sh(scene.v, "wc -c < /srv/big").stdout.strip()
    expect(got == str(size), f"/srv/big has {got} bytes")
    took = scene.ended - scene.started
    expect(took > 1.5, f"{took:.1f} s: the link was not slow")
    return f"changed (ok): 1 MB over 4 Mbit/s", took, scene.holds(scene.v) + ", big whole"


@row("hostkey", "host key changed (ssh-keygen -A, HUP)")
def hostkey(scene: Scene) -> tuple[str, float, str]:
    before = scene.known.read_bytes()
    from faults import listener_pid
    scene.sh(scene.v, "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null", check=True)
    scene.sh(scene.v, f"kill -HUP {listener_pid(scene.manager, scene.v)}", check=True)
    time.sleep(0.3)
    code, report = scene.run()
    v = outcome(report, scene.v)
    expect(code == 1 and v["cause"] == "host-key-changed", v["error"])
    expect(str(scene.known) in v["error"], v["error"])
    expect(scene.known.read_bytes() == before, "known_hosts changed")
    expect(outcome(report, scene.w)["status"] == "changed", "the witness")
    return short(v["error"]), scene.ended - scene.started, \
        scene.holds(scene.v) + "; known_hosts byte-identical"


@row("cahostkey", "CA-signed host key (@cert-authority); then a CA that did not sign it")
def cahostkey(scene: Scene) -> tuple[str, float, str]:
    from faults import listener_pid
    for name in ("ca", "other-ca"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f",
                        str(scene.work / name)], check=True)
    host = scene.work / "host.pub"
    host.write_text(scene.sh(scene.v, "cat /etc/ssh/ssh_host_ed25519_key.pub", check=True).stdout)
    subprocess.run(["ssh-keygen", "-q", "-s", str(scene.work / "ca"), "-h", "-I", scene.v, "-n",
                    "127.0.0.1", "-V", "-5m:+1h", str(host)], check=True)
    cert = (scene.work / "host-cert.pub").read_text()
    scene.manager.exec_in(scene.v, ["sh", "-c", "cat > /etc/ssh/ssh_host_ed25519_key-cert.pub && "
                                    "echo 'HostCertificate /etc/ssh/ssh_host_ed25519_key-cert.pub' "
                                    ">> /etc/ssh/sshd_config.d/pallet.conf"], input=cert, check=True)
    scene.sh(scene.v, f"kill -HUP {listener_pid(scene.manager, scene.v)}", check=True)
    time.sleep(0.5)
    witness = scene.nodes[scene.w].known_hosts_line()
    port = scene.ports[scene.v]

    def trust(ca: str) -> bytes:
        public = " ".join((scene.work / f"{ca}.pub").read_text().split()[:2])
        scene.known.write_text(f"{witness}\n@cert-authority [127.0.0.1]:{port} {public}\n")
        return scene.known.read_bytes()

    before = trust("other-ca")
    code, report = scene.run()
    refused = outcome(report, scene.v)
    expect(code == 1 and (refused["cause"] or "").startswith("host-key"), str(refused))
    expect(scene.known.read_bytes() == before, "known_hosts changed")
    trust("ca")
    code, report = scene.run()
    v = outcome(report, scene.v)
    expect(code == 0 and v["status"] == "changed", str(v))
    return (f"changed (ok) with the CA; another CA: {short(refused['error'], 70)}",
            scene.ended - scene.started, scene.holds(scene.v) + "; known_hosts byte-identical")


@row("refusedkey", "refused key (a key the node does not know)")
def refusedkey(scene: Scene) -> tuple[str, float, str]:
    key = scene.work / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    scene.write_inventory(**{scene.v: {"private-key": str(key)}})
    code, report = scene.run()
    v = outcome(report, scene.v)
    expect(code == 1 and v["cause"] == "auth" and "refused to log in root" in v["error"]
           and "attempts" not in v["error"], v["error"])
    return short(v["error"]), scene.ended - scene.started, scene.holds(scene.v)


@row("closedport", "closed port (nothing listens)")
def closedport(scene: Scene) -> tuple[str, float, str]:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    scene.write_inventory(**{scene.v: {"port": port}})
    code, report = scene.run()
    v = outcome(report, scene.v)
    expect(code == 1 and v["cause"] == "unreachable" and "(3 attempts)" in v["error"], v["error"])
    took = scene.ended - scene.started
    return short(v["error"]), took, scene.holds(scene.v)


@row("diskfull", "disk full under the managed file (tmpfs 64k)")
def diskfull(scene: Scene) -> tuple[str, float, str]:
    scene.sh(scene.v, "mkdir -p /srv && mount -t tmpfs -o size=64k tmpfs /srv && "
                      "echo old > /srv/app.conf", check=True)
    scene.spec.write_text(scene.spec.read_text().replace(
        '(str "new " (target-name) "\\n")',
        f'(if (= (target-name) "{scene.v}") (apply str (repeat 20000 "0123456789")) '
        '(str "new " (target-name) "\\n"))'))
    code, report = scene.run()
    v = outcome(report, scene.v)
    expect(code == 1 and v["error"].endswith("No space left on device")
           and "remote-file /srv/app.conf" in v["error"], v["error"])
    return short(v["error"]), scene.ended - scene.started, scene.holds(scene.v)


@row("tmpfull", "disk full in /tmp (the bundle cannot unpack)")
def tmpfull(scene: Scene) -> tuple[str, float, str]:
    scene.sh(scene.v, "mount -t tmpfs -o size=64k tmpfs /tmp && "
                      "head -c 65536 /dev/zero > /tmp/filler 2>/dev/null; true", check=True)
    code, report = scene.run()
    v = outcome(report, scene.v)
    expect(code == 1 and ("No space left on device" in v["error"] or "I/O error" in v["error"]),
           v["error"])
    scene.sh(scene.v, "rm -f /tmp/filler", check=True)
    return short(v["error"]), scene.ended - scene.started, scene.holds(scene.v)


def between_phases(scene: Scene, fault) -> tuple[str, float, str]:
    """v's :configure ends at once; w's holds the barrier (HOLD s), during which v suffers
    the fault; v must run :start on a new connection."""
    scene.spec.write_text(scene.spec.read_text().replace(
        f'(when (= (target-name) "{scene.v}")\n      (exec-script "hold"',
        f'(when (= (target-name) "{scene.w}")\n      (exec-script "hold"'))
    proc = scene.start()
    try:
        deadline = time.monotonic() + 60
        while not list(scene.record.glob(f"*/{scene.v}/configure/result.json")):
            expect(proc.poll() is None and time.monotonic() < deadline, "v's :configure never ended")
            time.sleep(0.05)
        away = fault()
        code, report = scene.finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    expect(code == 0, f"exit {code}: {report}")
    v = outcome(report, scene.v, "start")
    expect(v["status"] == "changed", str(v))
    # took: v's :start, connecting again included
    return f"{v['status']} (ok): :start ran on a new connection{away}", v["seconds"], \
        scene.holds(scene.v)


@row("reboot", "reboot between phases (kill -9 PID 1, start again)")
def reboot_row(scene: Scene) -> tuple[str, float, str]:
    from faults import reboot
    old = scene.manager.get(scene.v).init_pid

    def fault():
        away = reboot(scene.manager, scene.v)
        expect(scene.manager.get(scene.v).init_pid != old, "the node did not reboot")
        return f" (the node was away {away:.1f} s)"
    return between_phases(scene, fault)


@row("sshdrestart", "sshd restarted between phases (sessions killed)")
def sshdrestart(scene: Scene) -> tuple[str, float, str]:
    from faults import drop_sessions, listener_pid

    def fault():
        expect(bool(drop_sessions(scene.manager, scene.v)), "no session to drop")
        # SIGHUP: sshd re-executes itself, as `service ssh restart` would restart it
        scene.sh(scene.v, f"kill -HUP {listener_pid(scene.manager, scene.v)}", check=True)
        return ""
    return between_phases(scene, fault)


@row("ctrlc", "Ctrl-C (SIGINT to pallet) mid-phase")
def ctrlc(scene: Scene) -> tuple[str, float, str]:
    proc = scene.start()
    try:
        scene.wait_started(proc)
        time.sleep(0.3)
        at = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code, report = scene.finish(proc, timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    took = scene.ended - at
    expect(code == 130 and report["interrupted"] is True, f"exit {code}")
    expect(took < 2.0, f"{took:.2f} s")
    v = outcome(report, scene.v)
    expect(v["cause"] == "interrupted", str(v))
    result = json.loads(next(Path(report["record"]).glob(f"{scene.v}/configure/result.json")).read_text())
    expect(result["cause"] == "interrupted", str(result))
    return short(v["error"], 80) + "; result.json says so", took, scene.holds(scene.v)


# ---- running rows -------------------------------------------------------------------------------

def run_row(name: str, work: Path) -> dict:
    """Inside the row's own network namespace: make the scene, run the row, report it."""
    global WORK
    fault, fn = ROWS[name]
    WORK = str(work)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    result = {"row": name, "fault": fault, "ok": False, "reported": "", "seconds": None, "node": ""}
    scene = None
    try:
        scene = Scene(name, work, hold=HOLD.get(name, 3))
        reported, seconds, holds = fn(scene)
        result.update(ok=True, reported=reported, seconds=round(seconds, 2), node=holds)
    except Failed as e:
        result["reported"] = f"EXPECTATION FAILED: {e}"
    except Exception:  # noqa: BLE001 - a row's crash is its failure, with the trace
        result["reported"] = "CRASHED: " + traceback.format_exc()[-1500:]
    finally:
        if scene is not None:
            scene.close()
    return result


def spawn_row(name: str, root: Path) -> dict:
    from pallet.runtime.localnodes import LocalNodes
    work = root / name
    work.mkdir()
    cmd = ["unshare", "--net", "--", sys.executable, __file__, "--in-namespace", name, str(work)]
    start = time.monotonic()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=ROW_TIMEOUT)
        lines = done.stdout.strip().splitlines()
        result = json.loads(lines[-1]) if lines else None
    except subprocess.TimeoutExpired:
        result, done = None, None
    finally:
        if (work / "nodes").exists():   # a row killed before its own cleanup: its nodes, by pid
            LocalNodes(work / "nodes").destroy_all()
    if result is None:
        why = f"no result ({'timeout' if done is None else done.stderr[-800:]})"
        result = {"row": name, "fault": ROWS[name][0], "ok": False, "reported": why,
                  "seconds": None, "node": ""}
    result["wall"] = round(time.monotonic() - start, 1)
    return result


def table(results: list[dict]) -> str:
    head = ("fault", "reported", "took", "node afterwards", "")
    rows = [(r["fault"], r["reported"].replace("\n", " ")[:160],
             "" if r["seconds"] is None else f"{r['seconds']:.1f} s", r["node"],
             "ok" if r["ok"] else "FAILED") for r in results]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--in-namespace"]:
        print(json.dumps(run_row(argv[1], Path(argv[2]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", nargs="*", help=f"rows to run (default all: {', '.join(ROWS)})")
    parser.add_argument("--jobs", type=int, default=4, help="rows at once (default 4)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("fault_suite: local nodes need root", file=sys.stderr)
        return 2
    unknown = [r for r in args.rows if r not in ROWS]
    if unknown:
        print(f"fault_suite: no rows {unknown}; rows: {', '.join(ROWS)}", file=sys.stderr)
        return 2
    from pallet.runtime.localnodes import ensure_rootfs
    ensure_rootfs()              # in this namespace: building it needs the mirror
    names = args.rows or list(ROWS)
    names.sort(key=lambda n: n != "frozen")       # the longest first
    root = Path(tempfile.mkdtemp(prefix="pallet-faults-"))
    start = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            done = dict(zip(names, pool.map(lambda n: spawn_row(n, root), names)))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    results = [done[n] for n in ROWS if n in done]
    print(table(results))
    failed = [r["row"] for r in results if not r["ok"]]
    print(f"\n{len(results) - len(failed)} of {len(results)} rows as expected, "
          f"{time.monotonic() - start:.0f} s" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    if args.json:
        print(json.dumps(results, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
