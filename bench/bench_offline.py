"""Offline bundles (`pallet bundle`, NODE.run) side by side with makeself on the same payload.

One run, both tools, the same scripts and .deb files (what `NODE.run --extract` unpacks):

  build     `pallet bundle` (warm package cache: the lists refreshed, nothing downloaded)
            against `makeself` (Debian's, its defaults: gzip, CRC and MD5) of the same files
  check     `sh NODE.run --check` (size and sha256) against `sh makeself.run --check`
  repeat    the run on a node that is converged already, inside a local node with no
            network: NODE.run decides package by package and unpacks none, makeself must
            check, extract everything and then run the same phases
  header    what each adds to its payload
  fleet     100 nodes without packages: `pallet bundle --no-packages` against `pallet
            compile` of the same spec and inventory

Goals (issue 10): header under 16 KiB; --check no slower than makeself's; the repeat run
at least 3x faster than makeself's extract-and-run; 100 bundles under 2x compile's time.
Needs root (the local node) and Debian's mirror the first time (packages are cached in
$PALLET_CACHE). Medians of ROUNDS runs; wall and CPU (user+sys of the children).
"""
from __future__ import annotations

import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
PACKAGES = os.environ.get("BENCH_PACKAGES", "nginx-light openjdk-17-jre-headless jq tree").split()
ROOT = Path(__file__).resolve().parent.parent
PALLET = [sys.executable, "-m", "pallet"]

SPEC = """
(def app
  (group-spec "app"
    :phases {:install (phase-fn (packages [%s]))
             :configure (phase-fn
                          (user "deploy" :create-home true)
                          (directory "/etc/app")
                          (remote-file "/etc/app/app.conf" :content "port = 8080\\n"))}))
"""

STARTUP = """#!/bin/sh
# makeself's startup script: the same phases, from the files makeself extracted.
d=$(pwd)
: > "$d/repo/.unpacked"
PALLET_PACKAGE_REPO=$d/repo
PALLET_RUN_FILE=/nonexistent
export PALLET_PACKAGE_REPO PALLET_RUN_FILE
for p in install configure; do
  (cd "$d/$p" && PALLET_BUNDLE_DIR=$d/$p bash ./run.sh) </dev/null || exit $?
done
"""


def timed(argv, **kw) -> tuple[float, float, subprocess.CompletedProcess]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, **kw)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall, cpu, proc


def median_of(fn, rounds=ROUNDS) -> tuple[float, float]:
    runs = [fn() for _ in range(rounds)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def in_node(nodes, name: str, command: str) -> tuple[float, float]:
    """Wall (seen from here) and the CPU the node's processes used (bash's `times`)."""
    t = time.perf_counter()
    r = nodes.exec_in(name, ["bash", "-c", f"{command} >/dev/null 2>&1 || exit $?; times"],
                      timeout=900)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{command} failed in the node ({r.returncode}): {r.stderr[-1500:]}")
    children = r.stdout.strip().splitlines()[-1].split()
    cpu = sum(_seconds(x) for x in children)
    return wall, cpu


def _seconds(text: str) -> float:
    m = re.fullmatch(r"(\d+)m([\d.]+)s", text)
    return int(m[1]) * 60 + float(m[2]) if m else 0.0


def reference_loop() -> float:
    t = time.perf_counter()
    sum(i * i for i in range(10**7))
    return time.perf_counter() - t


def row(name, ours, theirs, goal) -> str:
    ratio = theirs[0] / ours[0] if ours[0] else float("inf")
    return (f"{name:<28} {ours[0]:8.3f} s {ours[1]:7.3f} s   {theirs[0]:8.3f} s {theirs[1]:7.3f} s"
            f"   {ratio:6.2f}x   {goal}")


def main() -> None:
    if os.geteuid() != 0:
        print("bench_offline: skipped: it needs root (a local node for the repeat run)")
        return
    if not shutil.which("makeself"):
        raise SystemExit("makeself is not installed (apt-get install makeself)")
    from pallet.runtime.localnodes import LocalNodes
    work = Path(tempfile.mkdtemp(prefix="pallet-bench-offline."))
    nodes = LocalNodes(work / "nodes", egress=())
    try:
        spec = work / "app.pallet"
        spec.write_text(SPEC % " ".join(f'"{p}"' for p in PACKAGES))
        # Warm the cache (downloads once), then time the builds.
        timed([*PALLET, "bundle", str(spec), "--os", "debian-12", "-o", str(work / "warm")])
        build = median_of(lambda: timed([*PALLET, "bundle", str(spec), "--os", "debian-12",
                                         "-o", str(work / "out")])[:2])
        run_file = work / "out/app.run"
        payload = work / "payload"
        timed(["sh", str(run_file), "--extract", str(payload), "--quiet"])
        (payload / "pallet-phases.sh").write_text(STARTUP)
        (payload / "pallet-phases.sh").chmod(0o755)

        def makeself_build():
            target = work / "makeself.run"
            target.unlink(missing_ok=True)
            return timed(["makeself", "--tar-quietly", "--quiet", str(payload), str(target),
                          "app", "./pallet-phases.sh"])[:2]
        ms_build = median_of(makeself_build)
        ms_file = work / "makeself.run"
        check = median_of(lambda: timed(["sh", str(run_file), "--check", "--quiet"])[:2])
        ms_check = median_of(lambda: timed(["sh", str(ms_file), "--check"])[:2])

        (node,) = nodes.create_many(["bench-offline"], network="none")
        for path in (run_file, ms_file):
            Path(f"/proc/{node.init_pid}/root/root/{path.name}").write_bytes(path.read_bytes())
        in_node(nodes, node.name, "sh /root/app.run")              # converge once
        repeat = median_of(lambda: in_node(nodes, node.name, "sh /root/app.run"))
        ms_repeat = median_of(lambda: in_node(nodes, node.name, "sh /root/makeself.run"))

        from pallet.compiler.runfile import read_header
        ours_header = int(read_header(run_file.read_bytes())["HEADER"])
        ms_text = ms_file.read_bytes()
        sizes = re.search(rb'filesizes="(\d+)"', ms_text[:40000])
        ms_header = len(ms_text) - int(sizes.group(1)) if sizes else -1

        fleet, compile_ = fleet_times(work)
        loop = reference_loop()
        print(f"offline bundles: {len(PACKAGES)} packages asked ({', '.join(PACKAGES)}); "
              f"NODE.run {run_file.stat().st_size / 1e6:.1f} MB, makeself.run "
              f"{ms_file.stat().st_size / 1e6:.1f} MB; medians of {ROUNDS}; "
              f"reference loop {loop:.2f} s")
        print(f"{'':<28} {'pallet wall':>10} {'cpu':>9}   {'peer wall':>10} {'cpu':>9}   "
              f"{'peer/pallet':>8}")
        print(row("build (makeself)", build, ms_build, "(build includes apt-get update)"))
        print(row("--check (makeself)", check, ms_check, "goal: ratio >= 1"))
        print(row("repeat run (makeself)", repeat, ms_repeat, "goal: ratio >= 3"))
        print(row("100 nodes (pallet compile)", fleet, compile_, "goal: ratio >= 0.5"))
        print(f"header: pallet {ours_header:,} bytes (goal < 16,384), makeself {ms_header:,} bytes")
    finally:
        nodes.destroy_all()
        shutil.rmtree(work, ignore_errors=True)


def fleet_times(work: Path) -> tuple[tuple[float, float], tuple[float, float]]:
    inventory = work / "fleet.toml"
    inventory.write_text("".join(
        f'[[node]]\nname = "web-{i}"\ngroup = "fleet"\nhost = "192.0.2.{i % 250 + 1}"\n'
        f'os-family = "debian"\nos-version = "12"\n\n' for i in range(1, 101)))
    spec = str(ROOT / "examples/fleet.pallet")
    bundle = median_of(lambda: timed([*PALLET, "bundle", spec, "--nodes", str(inventory),
                                      "--no-packages", "-o", str(work / "fleet-bundles")])[:2])
    compile_ = median_of(lambda: timed([*PALLET, "compile", spec, "--nodes", str(inventory),
                                        "-o", str(work / "fleet-out")])[:2])
    return bundle, compile_


if __name__ == "__main__":
    main()
