"""Stevedore speed: compiling a 2,000-form script, and `pallet script` from process start to
exit on a small file. Figures vary with the machine's load: compare runs made together.

Targets (issue [1/4]): 2,000 forms in under 1 s; `pallet script` small file under 0.4 s.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pallet.stevedore import compile_script_text  # noqa: E402
from pallet.grammar.reader import read  # noqa: E402

# A mix of the forms people write, one top-level form each (the talk's loop among them).
FORMS = [
    '(doseq [x ["a" "b" "c"]] (println @x))',
    '(if (file-exists? "/etc/app.conf") (println "present") (touch "/etc/app.conf"))',
    '(var dest (str "/opt/app/" @release "/bin"))',
    '(apt-get "install" "-y" "nginx" "2>&1" ">>" "/var/log/pallet.log")',
    '(when-not (directory? @dest) (mkdir "-p" @dest))',
    '(println "it\'s $HOME `x`" @dest)',
    '(chain-or (grep "-q" "x" "/etc/hosts") (echo "127.0.0.1 x" ">>" "/etc/hosts"))',
    '(case @mode "start" (service "app" "start") :else (println "nothing to do"))',
]


def best_of(n, fn):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    source = "\n".join(FORMS[i % len(FORMS)] for i in range(2000))
    source = '(var release "1.0") (var mode "start")\n' + source
    read("(warm up)")
    best, median = best_of(5, lambda: compile_script_text(source, "bench.pallet", "bash"))
    print(f"compile 2,000 forms (bash):      best {best:.3f} s  median {median:.3f} s  (goal < 1 s)")
    best, median = best_of(5, lambda: compile_script_text(source, "bench.pallet", "powershell"))
    print(f"compile 2,000 forms (powershell): best {best:.3f} s  median {median:.3f} s")
    pallet = Path(sys.executable).parent / "pallet"
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "small.pallet"
        small.write_text(FORMS[0] + "\n" + FORMS[1] + "\n")
        run = lambda: subprocess.run([str(pallet), "script", str(small)], check=True,  # noqa: E731
                                     stdout=subprocess.DEVNULL)
        run()
        best, median = best_of(10, run)
        print(f"pallet script small file:        best {best:.3f} s  median {median:.3f} s  (goal < 0.4 s)")
        floor = lambda: subprocess.run([sys.executable, "-c", "pass"], check=True)  # noqa: E731
        fbest, _ = best_of(10, floor)
        print(f"  (python3 -c pass on this machine: {fbest:.3f} s)")


if __name__ == "__main__":
    main()
