"""admin-user and automated-admin-user: users with a home, their keys authorized, sudo rights
from /etc/sudoers.d; Pallet's own admin logs in over SSH with its key and runs sudo without a
password."""
from __future__ import annotations

import subprocess

from pallet.runtime.localnodes import LocalNodes

ALICE = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAliceAliceAliceAliceAliceAliceAliceAlice alice@laptop"

SPEC = r'''
(def admins
  (group-spec "admins"
    :extends [(admin-user/server :users {"alice" {:public-keys ["%s"] :groups ["adm"]}})
              (automated-admin-user/server :user "robot" :public-key-files ["robot.pub"])]
    :phases {:configure (phase-fn
                          (admin-user/admin-user "bob" :public-key-files ["bob.pub"]
                                                 :shell "/bin/sh" :comment "Bob B"))}))
'''


def test_admin_users(converge, tmp_path):
    key = tmp_path / "robot"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "robot@ci", "-f", str(key)],
                   check=True)
    robot_pub = (tmp_path / "robot.pub").read_text()
    bob_keys = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBobBobBobBobBobBobBobBobBobBobBobBobBobBobBo bob@a\n\n" \
               "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBob2Bob2Bob2Bob2Bob2Bob2Bob2Bob2Bob2Bob2 bob@b\n"
    result = converge(SPEC % ALICE, {"admins": 1},
                      files={"robot.pub": robot_pub, "bob.pub": bob_keys})
    node = "admins-1"
    # alice: a home, the admin group (sudo on Debian), her key, sudo with a password
    assert result.sh(node, "getent passwd alice | cut -d: -f6,7") == "/home/alice:/bin/bash\n"
    assert set(result.sh(node, "id -nG alice").split()) == {"alice", "sudo", "adm"}
    assert result.sh(node, "cat /home/alice/.ssh/authorized_keys") == ALICE + "\n"
    assert result.sh(node, "stat -c '%U %a' /home/alice/.ssh/authorized_keys") == "alice 644\n"
    alice_sudo = result.sh(node, "sudo -l -U alice")
    assert "(ALL : ALL) ALL" in alice_sudo and "NOPASSWD" not in alice_sudo, alice_sudo
    # bob: his keys from a file (blank lines left out), his shell and name
    assert result.sh(node, "getent passwd bob | cut -d: -f5,7") == "Bob B:/bin/sh\n"
    assert result.sh(node, "cat /home/bob/.ssh/authorized_keys") == bob_keys.replace("\n\n", "\n")
    # robot, Pallet's admin: sudo needs no password, no terminal
    robot_sudo = result.sh(node, "sudo -l -U robot")
    assert "(ALL : ALL) NOPASSWD: ALL" in robot_sudo and "!requiretty" in robot_sudo, robot_sudo
    assert result.sh(node, "stat -c '%a %U' /etc/sudoers.d/admin-robot") == "440 root\n"
    port = LocalNodes(result.state).get(node).port
    ssh = subprocess.run(["ssh", "-i", str(key), "-p", str(port), "-o", "BatchMode=yes",
                          "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                          "robot@127.0.0.1", "sudo -n id -u"],
                         capture_output=True, text=True, timeout=60)
    assert ssh.returncode == 0 and ssh.stdout == "0\n", ssh.stderr
