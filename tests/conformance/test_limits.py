"""limits: a file of /etc/security/limits.d that pam_limits applies at the next login."""
from __future__ import annotations

SPEC = r'''
(def app
  (group-spec "app"
    :extends [(limits/server :files {"app" {"app" {:nofile 4096 :nproc {:soft 512 :hard 1024}}}})]
    :phases {:configure (phase-fn (user "app" :create-home true :shell "/bin/sh"))}))
'''


def test_limits(converge):
    result = converge(SPEC, {"app": 1})
    node = "app-1"
    assert result.sh(node, "cat /etc/security/limits.d/app.conf") == (
        "# Managed by Pallet (limits crate): changes made here are overwritten.\n"
        "app - nofile 4096\napp soft nproc 512\napp hard nproc 1024\n")
    assert result.sh(node, "stat -c '%a %U' /etc/security/limits.d/app.conf") == "644 root\n"
    # su's PAM stack runs pam_limits: a login of app gets them
    assert result.sh(node, "su - app -s /bin/bash -c 'ulimit -n; ulimit -S -u; ulimit -H -u'") == "4096\n512\n1024\n"
