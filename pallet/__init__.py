"""Pallet for Python: infrastructure as data, compiled to plain shell scripts.

The public Python API is re-exported here as it settles; the command line lives in
`pallet.cli`. This module stays cheap to import, because every `pallet` command pays for it.
"""
from __future__ import annotations


def _version() -> str:
    # The installed distribution's metadata is the one source of truth; the fallback covers
    # running from a source tree that was never installed (e.g. PYTHONPATH=.).
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover - always present on Python >= 3.8
        return "0.1.0"
    try:
        return version("pallet-py")
    except PackageNotFoundError:
        return "0.1.0"


__version__ = _version()

__all__ = ["__version__"]
