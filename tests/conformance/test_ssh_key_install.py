"""ssh-key/install-key: a given key pair in place for a user, owned by it, private key 600."""
from __future__ import annotations

import subprocess


def test_install_key(converge, tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "deploy@ci",
                    "-f", str(tmp_path / "k")], check=True)
    private, public = (tmp_path / "k").read_text(), (tmp_path / "k.pub").read_text()
    spec = f'''
(def private-key "{private}")
(def app
  (group-spec "app"
    :phases {{:configure (phase-fn
                          (user "deploy" :create-home true :shell "/bin/sh")
                          (ssh-key/install-key "deploy" "id_deploy" private-key "{public.strip()}"))}}))
'''
    result = converge(spec, {"app": 1})
    node = "app-1"
    assert result.sh(node, "cat /home/deploy/.ssh/id_deploy") == private
    assert result.sh(node, "cat /home/deploy/.ssh/id_deploy.pub") == public
    assert result.sh(node, "cd /home/deploy/.ssh && stat -c '%n %a %U' . id_deploy id_deploy.pub") == (
        ". 700 deploy\nid_deploy 600 deploy\nid_deploy.pub 644 deploy\n")
    # the pair belongs together: the public key derived from the private one is the one given
    derived = result.sh(node, "su deploy -c 'ssh-keygen -y -f /home/deploy/.ssh/id_deploy'")
    assert derived.split()[:2] == public.split()[:2]
