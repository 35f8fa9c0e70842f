"""java: the headless OpenJDK 17 runtime from Debian's packages (through the private node's apt
proxy), as java/server installs it; `java -version` answers."""
from __future__ import annotations

SPEC = r'''
(def app
  (group-spec "app"
    :extends [(java/server :kind :jre)]))
'''


def test_java_runtime(converge):
    result = converge(SPEC, {"app": 1}, network="private")
    assert result.sh("app-1", "dpkg-query -W -f '${Status}' openjdk-17-jre-headless") == (
        "install ok installed")
    assert result.sh("app-1", "java -version 2>&1 | head -1").startswith('openjdk version "17.')
