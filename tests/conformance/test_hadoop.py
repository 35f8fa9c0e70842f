"""hadoop: the talk's crate on a private node, with a small stand-in for the Apache tarball
(bin/yarn starts a python3 sleeper as the daemon, its pid in Hadoop's pid file) copied to the
node and installed from a file:// URL with its real sha512 (the checksum Apache publishes);
the daemons of the group's roles run as the hadoop user, and a changed configuration restarts
them, once."""
from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

from .relift import changes, lift


YARN = """#!/bin/sh
# A stand-in for Hadoop's bin/yarn: --daemon start|stop ROLE, with Hadoop's pid file.
pidfile="${HADOOP_PID_DIR:-/tmp}/hadoop-$(id -un)-$3.pid"
case "$1 $2" in
  "--daemon start")
    nohup python3 -c 'import time; time.sleep(1000000)' "$3" >/dev/null 2>&1 </dev/null &
    echo "$!" > "$pidfile" ;;
  "--daemon stop")
    kill "$(cat "$pidfile")" && rm -f "$pidfile" ;;
esac
"""

SPEC = r'''
(def dist
  (server-spec
    :phases {:bootstrap (phase-fn
                          (directory "/srv/dist" :mode "755")
                          (remote-file "/srv/dist/hadoop-3.3.6.tar.gz" :local-file "%(tarball)s"))}))

(def hadoop
  (group-spec "hadoop"
    :roles #{:jobtracker :tasktracker}
    :extends [dist
              (hadoop/server :settings {:version "3.3.6"
                                        :url "file:///srv/dist/hadoop-3.3.6.tar.gz"
                                        :sha512 "%(sha512)s"
                                        :core-site {"fs.defaultFS" "hdfs://master:8020"}
                                        :yarn-site {"yarn.nodemanager.resource.memory-mb" %(memory)s}})]))
'''


def fake_tarball(path: Path) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, mode, data in (("hadoop-3.3.6/bin/yarn", 0o755, YARN.encode()),
                                 ("hadoop-3.3.6/etc/hadoop/README", 0o644, b"fake\n")):
            info = tarfile.TarInfo(name)
            info.mode, info.size = mode, len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buffer.getvalue())
    return hashlib.sha512(buffer.getvalue()).hexdigest()


def test_hadoop_from_a_checked_tarball(converge, tmp_path):
    tarball = tmp_path / "hadoop-3.3.6.tar.gz"
    values = {"tarball": tarball, "sha512": fake_tarball(tarball), "memory": 4096}
    result = converge(SPEC % values, {"hadoop": 1}, network="private")
    node = "hadoop-1"
    assert result.sh(node, "readlink /opt/hadoop/current") == "/opt/hadoop/hadoop-3.3.6\n"
    assert result.sh(node, "cat /opt/hadoop/current/etc/hadoop/core-site.xml") == (
        '<?xml version="1.0"?>\n<configuration>\n'
        "  <property><name>fs.defaultFS</name><value>hdfs://master:8020</value></property>\n"
        "</configuration>\n")
    pids = {}
    for daemon in ("resourcemanager", "nodemanager"):
        pids[daemon] = result.sh(node, f"cat /tmp/hadoop-hadoop-{daemon}.pid").strip()
        assert result.sh(node, f"ps -o user=,args= -p {pids[daemon]}").split() == [
            "hadoop", "python3", "-c", "import", "time;", "time.sleep(1000000)", daemon]
    # A changed configuration restarts both daemons, once.
    report = lift(result, SPEC % {**values, "memory": 8192})
    assert changes(report) == 3  # yarn-site, 2 daemons
    for daemon in ("resourcemanager", "nodemanager"):
        restarted = result.sh(node, f"cat /tmp/hadoop-hadoop-{daemon}.pid").strip()
        assert restarted != pids[daemon]
        assert result.sh(node, f"kill -0 {pids[daemon]} 2>/dev/null || echo gone") == "gone\n"
    report = lift(result, SPEC % {**values, "memory": 8192})
    assert changes(report) == 0
