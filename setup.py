"""The package list follows the folders: every folder with an `__init__.py` under one of the
mapped top-level folders is a subpackage of `pallet`, and its non-Python files of the kinds
below (in it or in plain subfolders without `__init__.py`) are its package data. Nothing
here is listed by hand, so a new subpackage cannot be left out of the wheel.

The metadata stays in pyproject.toml; this file only supplies `package_dir`, `packages` and
`package_data`, which setuptools cannot derive for a remapped layout on its own."""
from __future__ import annotations

import os
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
# import name -> folder of this repository
ROOTS = {"pallet": "pallet", "pallet.grammar": "grammar", "pallet.stevedore": "stevedore",
         "pallet.compiler": "compiler", "pallet.runtime": "runtime", "pallet.crates": "crates"}
DATA_SUFFIXES = (".lark", ".pallet", ".json", ".toml", ".sh", ".txt")


def _packages() -> tuple[dict[str, str], list[str], dict[str, list[str]]]:
    package_dir: dict[str, str] = {}
    data: dict[str, list[str]] = {}
    for name, folder in ROOTS.items():
        for where, dirs, files in os.walk(HERE / folder):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
            rel = Path(where).relative_to(HERE)
            if "__init__.py" not in files:
                continue
            sub = rel.relative_to(folder).parts
            package = ".".join((name, *sub))
            package_dir[package] = rel.as_posix()
            found = _data_files(Path(where))
            if found:
                data[package] = found
    return package_dir, sorted(package_dir), data


def _data_files(package: Path) -> list[str]:
    """Data files of a package: in it, and in subfolders that are not packages themselves."""
    found = []
    for where, dirs, files in os.walk(package):
        here = Path(where)
        if here != package and (here / "__init__.py").exists():
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        found += [(here / f).relative_to(package).as_posix() for f in sorted(files)
                  if f.endswith(DATA_SUFFIXES)]
    return found


PACKAGE_DIR, PACKAGES, PACKAGE_DATA = _packages()

if __name__ == "__main__":
    setup(package_dir=PACKAGE_DIR, packages=PACKAGES, package_data=PACKAGE_DATA)
