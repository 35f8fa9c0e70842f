"""Forms read once, kept on disk: the bundled crates and a spec run again unchanged are the
same text every time, and reading them costs a command ~30 ms (with importing the parser);
unpickling what was read costs ~5 ms.

The cache is keyed by the text and its name (and the reader's version), lives in
$XDG_CACHE_HOME/pallet/forms (or ~/.cache/pallet/forms), keeps about MAX_ENTRIES (the
oldest go), and is only a speed-up: any problem reading or writing it and the text is simply
read. The reader (and lark) is imported only on a miss.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path

from .forms import Form

MAX_ENTRIES = 1000


def read(text: str, name: str, namespace: str = "user") -> tuple[Form, ...]:
    """The reader itself (lark is imported on the first call). `namespace` is the one `::kw`
    belongs to until the text's own (ns ...) names another."""
    from .reader import read as read_text
    return read_text(text, name, namespace)

_VERSION: bytes | None = None


def _version() -> bytes:
    """What the cached forms depend on besides the text: the reader, the grammar and the
    form classes. A change to any of them is a new cache key."""
    global _VERSION
    if _VERSION is None:
        import pallet.errors
        here = Path(__file__).parent
        digest = hashlib.sha256()
        for path in (here / "forms.py", here / "reader.py", here / "pallet.lark",
                     Path(pallet.errors.__file__)):
            try:
                digest.update(path.read_bytes())
            except OSError:
                digest.update(str(path).encode())
        _VERSION = digest.digest()
    return _VERSION


def _directory() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pallet" / "forms"


def read_cached(text: str, name: str, namespace: str = "user") -> tuple[Form, ...]:
    key = hashlib.sha256(_version() + name.encode() + b"\0" + namespace.encode() + b"\0"
                         + text.encode()).hexdigest()
    path = _directory() / f"{key}.pickle"
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except Exception:  # noqa: BLE001  (missing, stale or unreadable: read the text)
        pass
    forms = read(text, name, namespace)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(forms, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        if key.startswith("0"):  # one write in 16 looks at the size: pruning lists them all
            _prune(path.parent)
    except OSError:
        pass
    return forms


def _prune(directory: Path) -> None:
    """At most MAX_ENTRIES: the least recently written go first."""
    entries = [e for e in os.scandir(directory) if e.name.endswith(".pickle")]
    if len(entries) <= MAX_ENTRIES:
        return
    entries.sort(key=lambda e: e.stat().st_mtime_ns)
    for entry in entries[:len(entries) - MAX_ENTRIES]:
        try:
            os.unlink(entry.path)
        except OSError:
            pass
