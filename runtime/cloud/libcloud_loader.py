"""libcloud's compute modules, loaded without paramiko.

libcloud imports paramiko at start (and paramiko imports invoke, which imports asyncio and
unittest.mock) for the SSH client of `deploy_node`, which Pallet never uses: its own
transport does SSH, in another process. That import is most of libcloud's start-up, paid
by every `pallet converge --compute` and `pallet nodes --compute`. libcloud runs without
it (its `have_paramiko` is then False), and paramiko stays importable afterwards.
"""
from __future__ import annotations

import sys


def import_libcloud() -> None:
    if "libcloud.compute.base" in sys.modules:
        return
    blocked = "paramiko" not in sys.modules
    if blocked:
        sys.modules["paramiko"] = None          # `import paramiko` raises ImportError
    try:
        import libcloud.compute.base  # noqa: F401 - it imports libcloud.compute.ssh
        import libcloud.compute.providers  # noqa: F401
    finally:
        if blocked and "paramiko" in sys.modules and sys.modules["paramiko"] is None:
            del sys.modules["paramiko"]
