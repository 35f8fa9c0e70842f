"""Forms read once, kept on disk: the bundled crate library is the same text on every run, and
reading it costs a command ~30 ms; unpickling what was read costs ~5 ms.

The cache is keyed by the text and its name (and the reader's version), lives in
$XDG_CACHE_HOME/pallet/forms (or ~/.cache/pallet/forms), and is only a speed-up: any problem
reading or writing it and the text is simply read.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path

from .forms import Form
from .reader import read

_VERSION = b"forms-1"


def _directory() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pallet" / "forms"


def read_cached(text: str, name: str) -> tuple[Form, ...]:
    key = hashlib.sha256(_VERSION + name.encode() + b"\0" + text.encode()).hexdigest()
    path = _directory() / f"{key}.pickle"
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except Exception:  # noqa: BLE001  (missing, stale or unreadable: read the text)
        pass
    forms = read(text, name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(forms, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        pass
    return forms
