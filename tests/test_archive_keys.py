"""The Ubuntu archive key is pinned by fingerprint: the OpenPGP reading that picks it out of
a keyring, checked against gpg on the keyrings this Debian machine has."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pallet.runtime.archive_keys import UBUNTU_ARCHIVE_2018, _packets, fingerprint, pinned_key

DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


def _gpg_fingerprints(data: bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / "k.gpg"
    path.write_bytes(data)
    out = subprocess.run(["gpg", "--homedir", str(tmp_path), "--show-keys", "--with-colons",
                          str(path)], capture_output=True, text=True, check=True).stdout
    found, after_pub = [], False
    for line in out.splitlines():        # the first fpr line after a pub line is its own
        if line.startswith("pub:"):
            after_pub = True
        elif line.startswith("fpr:") and after_pub:
            found.append(line.split(":")[9])
            after_pub = False
    return found


@pytest.mark.skipif(not DEBIAN_KEYRING.is_file() or not shutil.which("gpg"),
                    reason="needs Debian's archive keyring and gpg (Debian: debian-archive-keyring, gnupg)")
def test_picks_exactly_the_pinned_key(tmp_path):
    data = DEBIAN_KEYRING.read_bytes()
    ours = [fingerprint(body) for tag, _, body in _packets(data) if tag == 6]
    assert sorted(ours) == sorted(_gpg_fingerprints(data, tmp_path)) and len(ours) >= 2
    for fpr in ours:
        assert _gpg_fingerprints(pinned_key(data, fpr), tmp_path) == [fpr]
    # A keyring without the Ubuntu key gives nothing (so it is refused), never another key.
    assert pinned_key(data, UBUNTU_ARCHIVE_2018) == b""


def test_damaged_keyrings_are_refused():
    with pytest.raises(ValueError):
        pinned_key(b"not a keyring", UBUNTU_ARCHIVE_2018)
    with pytest.raises(ValueError):
        pinned_key(b"\x99\x01\x0d\x04", UBUNTU_ARCHIVE_2018)     # a key packet cut short
