"""Compiling a large cluster: 10 groups x N nodes, 3 phases, 20 actions each, to bundles.

Goal (issue [2/4]): 1,000 nodes compile in under 3 s, and the cost grows linearly with the
number of nodes. Two in five actions differ per node (a rendered file, an exec-script body),
the rest are the same for a whole group. Measured: `pallet compile` as a whole process
(start, load, plan, render, write every bundle), against an inventory of N*10 nodes.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

GROUPS, PHASES, ACTIONS = 10, ("install", "configure", "start"), 20


def spec_text() -> str:
    groups = []
    for g in range(GROUPS):
        phases = []
        for p in PHASES:
            acts = []
            for a in range(ACTIONS):
                kind = a % 5
                base = f"/opt/g{g}/{p}"
                if kind == 0:
                    acts.append(f'(directory "{base}/d{a}" :mode "755")')
                elif kind == 1:
                    acts.append(f'(remote-file "{base}/f{a}" :content (str "node=" (target-name) "\\n") :mode "644")')
                elif kind == 2:
                    acts.append(f'(file "{base}/t{a}" :mode "600")')
                elif kind == 3:
                    acts.append(f'(symbolic-link "/opt/g{g}" "{base}/l{a}")')
                else:
                    acts.append(f'(exec-checked-script "step {a}" :creates "{base}/x{a}" '
                                f'(echo ~(target-name) ">" "{base}/x{a}"))')
            phases.append(f":{p} (phase-fn {' '.join(acts)})")
        groups.append(f'(def g{g} (group-spec "g{g}" :phases {{{" ".join(phases)}}}))')
    return "\n".join(groups) + "\n"


def inventory_text(per_group: int) -> str:
    rows = []
    for g in range(GROUPS):
        for i in range(per_group):
            rows.append(f'[[node]]\nname = "g{g}-{i}"\ngroup = "g{g}"\nhost = "127.0.0.1"\n'
                        f'port = {2000 + g * per_group + i}\nos-family = "debian"\nos-version = "12"\n')
    return "\n".join(rows)


def main() -> None:
    pallet = Path(sys.executable).parent / "pallet"
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "big.pallet"
        spec.write_text(spec_text())
        for per_group in (10, 30, 100):
            inv = Path(tmp) / f"inv{per_group}.toml"
            inv.write_text(inventory_text(per_group))
            times = []
            for attempt in range(3):  # each into a new directory: a whole compile
                out = Path(tmp) / f"out{per_group}-{attempt}"
                start = time.perf_counter()
                subprocess.run([str(pallet), "compile", str(spec), "--nodes", str(inv), "-o", str(out)],
                               check=True, stdout=subprocess.DEVNULL)
                times.append(time.perf_counter() - start)
            start = time.perf_counter()  # again into the last one: nothing changed
            subprocess.run([str(pallet), "compile", str(spec), "--nodes", str(inv), "-o", str(out)],
                           check=True, stdout=subprocess.DEVNULL)
            again = time.perf_counter() - start
            nodes = per_group * GROUPS
            results.append((nodes, min(times)))
            bundles = sum(1 for _ in out.glob("*/*/run.sh"))
            print(f"{nodes:>5} nodes, {bundles:>5} bundles: best of 3 {min(times):.2f} s "
                  f"({min(times) / nodes * 1000:.2f} ms per node); recompiled unchanged {again:.2f} s")
    (n0, t0), (n1, t1) = results[0], results[-1]
    print(f"growth: {n1 // n0}x the nodes took {t1 / t0:.1f}x the time "
          f"(linear would be {n1 // n0}x; process start and loading are fixed costs)")
    print(f"goal: 1,000 nodes under 3 s -> {'met' if t1 < 3 else 'NOT met'} ({t1:.2f} s)")


if __name__ == "__main__":
    main()
