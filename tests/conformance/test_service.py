"""service: a python3 HTTP server as an init.d service (local nodes have no systemd): it runs as
its user, answers on its port, a second run leaves the same process, and a changed definition
restarts it once."""
from __future__ import annotations

from .relift import changed_phases, lift


SPEC = r'''
(def web
  (group-spec "web"
    :extends [(service/server :name "web"
                              :command ["/usr/bin/python3" "-m" "http.server" "8765"
                                        "--bind" "127.0.0.1"]
                              :user "nobody"
                              :directory "/tmp"
                              :environment {"GREETING" "%(greeting)s"})]))
'''

FETCH = ("python3 -c 'import urllib.request; "
         "print(urllib.request.urlopen(\"http://127.0.0.1:8765/\", timeout=5).status)'")


def test_service_init_d(converge):
    result = converge(SPEC % {"greeting": "hello"}, {"web": 1}, network="private")
    node = "web-1"
    pid = result.sh(node, "cat /run/web.pid").strip()
    assert result.sh(node, f"ps -o user= -p {pid}").strip() == "nobody"
    assert result.sh(node, f"tr '\\0' '\\n' < /proc/{pid}/environ | grep ^GREETING=") == "GREETING=hello\n"
    assert result.sh(node, f"readlink /proc/{pid}/cwd") == "/tmp\n"
    assert result.sh(node, FETCH) == "200\n"
    assert "### BEGIN INIT INFO\n# Provides:          web\n" in result.sh(node, "cat /etc/init.d/web")
    assert result.sh(node, "ls /etc/rc2.d/ | grep -c 'S[0-9]*web$'") == "1\n"
    assert result.sh(node, "service web status") == "web is running\n"
    # The second run (inside converge) left it alone: the process that answers is the first one.
    assert result.sh(node, "cat /run/web.pid").strip() == pid
    # A changed definition restarts it once; the run after that leaves it alone.
    assert changed_phases(lift(result, SPEC % {"greeting": "bonjour"})) == [(node, "configure"), (node, "start")]
    restarted = result.sh(node, "cat /run/web.pid").strip()
    assert restarted != pid
    assert result.sh(node, f"kill -0 {pid} 2>/dev/null || echo gone") == "gone\n"
    assert result.sh(node, f"tr '\\0' '\\n' < /proc/{restarted}/environ | grep ^GREETING=") == "GREETING=bonjour\n"
    assert result.sh(node, FETCH) == "200\n"
    assert changed_phases(lift(result, SPEC % {"greeting": "bonjour"})) == []
    assert result.sh(node, "cat /run/web.pid").strip() == restarted
