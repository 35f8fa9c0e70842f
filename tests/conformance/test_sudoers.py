"""sudoers: files in /etc/sudoers.d from data, checked by visudo before they are moved in place."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pallet.runtime.localnodes import LocalNodes

PALLET = str(Path(sys.executable).parent / "pallet")

SPEC = r'''
(def app
  (group-spec "app"
    :extends [(sudoers/server :files {"ops" {:rules {"%ops" {:commands ["ALL"]}}}})]
    :phases {:configure
             (phase-fn
               (group "ops")
               (user "deploy" :create-home true :shell "/bin/sh")
               (sudoers/sudoers "deploy"
                 :user-defaults {"deploy" {"lecture" false}}
                 :rules {"deploy" {:run-as "root" :nopasswd true
                                   :commands ["/usr/bin/id -u" "/bin/echo a,b"]}}))}))
'''

BAD = r'''
(def app
  (group-spec "app"
    :phases {:configure (phase-fn (sudoers/sudoers "bad" :defaults {"no_such_setting" true}))}))
'''


def test_sudoers_files_are_checked_then_in_place(converge, tmp_path):
    result = converge(SPEC, {"app": 1})
    node = "app-1"
    assert result.sh(node, "stat -c '%a %U %G' /etc/sudoers.d/deploy /etc/sudoers.d/ops") == (
        "440 root root\n440 root root\n")
    assert result.sh(node, "cat /etc/sudoers.d/ops").endswith("%ops ALL=(ALL) ALL\n")
    listing = result.sh(node, "sudo -l -U deploy")
    assert "(root) NOPASSWD: /usr/bin/id -u, /bin/echo a\\,b" in listing, listing
    assert result.sh(node, "su deploy -c 'sudo -n /usr/bin/id -u'") == "0\n"
    assert result.sh(node, "su deploy -c 'sudo -n /bin/echo a,b'") == "a,b\n"
    # A rule not granted is refused, without a password prompt.
    assert result.sh(node, "su deploy -c 'sudo -n /usr/bin/whoami' 2>&1", check=False).strip() != "root"
    assert result.sh(node, "visudo -c -q && echo valid") == "valid\n"

    # A file visudo rejects never reaches /etc/sudoers.d: the step fails, sudo keeps working.
    (tmp_path / "bad.pallet").write_text(BAD)
    subprocess.run([PALLET, "compile", "bad.pallet", "--os", "debian-12", "-o", "out"],
                   cwd=tmp_path, check=True, capture_output=True)
    script = (tmp_path / "out/app/configure/run.sh").read_text()
    run = LocalNodes(result.state).exec_in(node, ["bash", "-c", script], timeout=60)
    assert run.returncode != 0 and "PALLET-ACTION 1 failed" in run.stdout, run.stdout + run.stderr
    assert result.sh(node, "ls -A /etc/sudoers.d") == "README\ndeploy\nops\n"
    assert result.sh(node, "su deploy -c 'sudo -n /usr/bin/id -u'") == "0\n"
