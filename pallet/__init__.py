"""Pallet for Python: infrastructure as data, compiled to plain shell scripts.

The public Python API is re-exported here as it settles; the command line lives in
`pallet.cli`. This module stays cheap to import, because every `pallet` command pays for it:
the version is a constant (importlib.metadata alone costs ~20 ms), and a test keeps it equal
to pyproject.toml's.
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
