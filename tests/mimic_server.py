"""An OpenStack compute API on loopback for the cloud tests: mimic (PyPI, Rackspace's 2016
API simulator under twistd), serving Keystone v2 tokens and Nova on 127.0.0.1.

    python tests/mimic_server.py PORT

mimic 2.2 uses `attr.validators.provides`, which attrs 24 dropped; it is put back here (the
same check: the value provides the interface) before mimic is imported, so the tests keep
the attrs the rest of the environment has.
"""
from __future__ import annotations

import sys


def _provides(interface):
    def check(instance, attribute, value):
        if not interface.providedBy(value):
            raise TypeError(f"{attribute.name} must provide {interface!r}, not {value!r}")
    return check


def main() -> None:
    import attr.validators
    if not hasattr(attr.validators, "provides"):
        attr.validators.provides = _provides
    port = int(sys.argv[1])
    from twisted.scripts.twistd import run
    # --nodaemon, no pid file, logs to stdout; mimic's own plugin, bound to loopback only
    sys.argv = ["twistd", "--nodaemon", "--pidfile=", "--logfile=-", "mimic",
                "--listen", f"tcp:{port}:interface=127.0.0.1"]
    run()


if __name__ == "__main__":
    main()
