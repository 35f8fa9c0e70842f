"""libcloud's compute modules, loaded without paramiko, and cryptography loaded when used.

libcloud imports paramiko at start (and paramiko imports invoke, which imports asyncio and
unittest.mock) for the SSH client of `deploy_node`, which Pallet never uses: its own
transport does SSH, in another process. That import is most of libcloud's start-up, paid
by every `pallet converge --compute` and `pallet nodes --compute`. libcloud runs without
it (its `have_paramiko` is then False), and paramiko stays importable afterwards.

libcloud also imports cryptography's key serialization at start (20 ms) for its key
fingerprint helpers (`libcloud.utils.publickey`), which Pallet's calls never reach (it
names key pairs itself): those helpers get it on their first use instead.
"""
from __future__ import annotations

import importlib
import sys

_CRYPTOGRAPHY = ("cryptography.hazmat.backends", "cryptography.hazmat.primitives.serialization")


class _OnFirstUse:
    """A module imported when one of its attributes is first read."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr):
        return getattr(importlib.import_module(self._name), attr)


def import_libcloud() -> None:
    if "libcloud.compute.base" in sys.modules:
        return
    blocked = [m for m in ("paramiko", *_CRYPTOGRAPHY) if m not in sys.modules]
    for m in blocked:
        sys.modules[m] = None                   # `import m` raises ImportError
    try:
        import libcloud.compute.base  # noqa: F401 - it imports libcloud.compute.ssh
        import libcloud.compute.providers  # noqa: F401
        import libcloud.utils.publickey  # noqa: F401 - the EC2 driver's, imported by it later
    finally:
        for m in blocked:
            if m in sys.modules and sys.modules[m] is None:
                del sys.modules[m]
    publickey = sys.modules.get("libcloud.utils.publickey")
    if publickey is not None and not publickey.cryptography_available and _CRYPTOGRAPHY[1] in blocked:
        backends = _OnFirstUse(_CRYPTOGRAPHY[0])
        publickey.serialization = _OnFirstUse(_CRYPTOGRAPHY[1])
        publickey.default_backend = lambda: backends.default_backend()
        publickey.cryptography_available = True
