"""The Ubuntu archive's signing key, for debootstrapping Ubuntu root filesystems from a
Debian machine (Debian 12 packages no Ubuntu keyring).

The key is pinned here by its full OpenPGP fingerprint (a SHA-1 over the key's own
material), so where its bytes come from does not matter: the host's
/usr/share/keyrings/ubuntu-archive-keyring.gpg when some package put one there, else the
`ubuntu-keyring` package fetched from the mirror being debootstrapped. Only the packets
of the pinned key (with its user ids, subkeys and signatures) go into the keyring
debootstrap checks the Release signature with; a file without that key is refused.
"""
from __future__ import annotations

import hashlib
import subprocess
import tempfile
import urllib.request
from pathlib import Path

from pallet.errors import PalletError

# "Ubuntu Archive Automatic Signing Key (2018) <ftpmaster@ubuntu.com>": signs jammy's Release.
UBUNTU_ARCHIVE_2018 = "F6ECB3762474EDA9D21B7022871920D1991BC93C"
HOST_KEYRING = Path("/usr/share/keyrings/ubuntu-archive-keyring.gpg")
# jammy's own ubuntu-keyring package (the release pocket never changes once released).
KEYRING_DEB = "pool/main/u/ubuntu-keyring/ubuntu-keyring_2021.03.26_all.deb"
KEYRING_IN_DEB = "./usr/share/keyrings/ubuntu-archive-keyring.gpg"


def _packets(data: bytes):
    """(tag, whole packet bytes, body) of a binary OpenPGP stream (RFC 4880 section 4.2)."""
    i = 0
    while i < len(data):
        start, first = i, data[i]
        if not first & 0x80:
            raise ValueError(f"not an OpenPGP packet at byte {i}")
        if first & 0x40:                      # new format
            tag, i = first & 0x3F, i + 1
            o = data[i]
            if o < 192:
                length, i = o, i + 1
            elif o < 224:
                length, i = ((o - 192) << 8) + data[i + 1] + 192, i + 2
            elif o == 255:
                length, i = int.from_bytes(data[i + 1:i + 5], "big"), i + 5
            else:
                raise ValueError("partial body lengths do not occur in keyrings")
        else:                                 # old format
            tag, kind, i = (first >> 2) & 0x0F, first & 0x03, i + 1
            if kind == 3:
                raise ValueError("indeterminate packet length in a keyring")
            size = (1, 2, 4)[kind]
            length, i = int.from_bytes(data[i:i + size], "big"), i + size
        body = data[i:i + length]
        if len(body) != length:
            raise ValueError("truncated OpenPGP packet")
        i += length
        yield tag, data[start:i], body


def fingerprint(body: bytes) -> str:
    """The v4 fingerprint of a public key packet's body."""
    if not body or body[0] != 4:
        return ""
    return hashlib.sha1(b"\x99" + len(body).to_bytes(2, "big") + body).hexdigest().upper()


def pinned_key(keyring: bytes, wanted: str) -> bytes:
    """The packets of the key with fingerprint `wanted` out of a binary keyring, or b""."""
    keys: list[tuple[str, list[bytes]]] = []
    for tag, whole, body in _packets(keyring):
        if tag == 6:                          # a public key starts a transferable key
            keys.append((fingerprint(body), [whole]))
        elif keys:
            keys[-1][1].append(whole)
    return b"".join(b"".join(parts) for fpr, parts in keys if fpr == wanted)


def ubuntu_keyring(cache: Path, mirror: str, timeout: float = 60) -> Path:
    """A keyring holding only the pinned Ubuntu archive key (made once, in the cache)."""
    out = cache / "keyrings" / f"ubuntu-archive-{UBUNTU_ARCHIVE_2018}.gpg"
    if out.is_file() and pinned_key(out.read_bytes(), UBUNTU_ARCHIVE_2018):
        return out
    sources = []
    if HOST_KEYRING.is_file():
        sources.append((str(HOST_KEYRING), HOST_KEYRING.read_bytes()))
    if not sources or not pinned_key(sources[0][1], UBUNTU_ARCHIVE_2018):
        url = f"{mirror.rstrip('/')}/{KEYRING_DEB}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                deb = r.read()
        except OSError as exc:
            raise PalletError(f"cannot fetch Ubuntu's keyring package {url}: {exc}") from None
        with tempfile.TemporaryDirectory(prefix="pallet-keyring.") as tmp:
            (Path(tmp) / "k.deb").write_bytes(deb)
            r = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(Path(tmp) / "k.deb")],
                               capture_output=True)
            if r.returncode != 0:
                raise PalletError(f"{url}: not a package dpkg-deb reads: {r.stderr.decode()[-300:]}")
            import io
            import tarfile
            try:
                with tarfile.open(fileobj=io.BytesIO(r.stdout)) as tar:
                    member = tar.extractfile(KEYRING_IN_DEB)
                    sources.append((url, member.read() if member else b""))
            except (KeyError, tarfile.TarError) as exc:
                raise PalletError(f"{url}: no {KEYRING_IN_DEB} inside ({exc})") from None
    for origin, data in sources:
        try:
            key = pinned_key(data, UBUNTU_ARCHIVE_2018)
        except ValueError as exc:
            raise PalletError(f"{origin}: not an OpenPGP keyring ({exc})") from None
        if key:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(".tmp")
            tmp.write_bytes(key)
            tmp.replace(out)
            return out
    raise PalletError(f"no Ubuntu archive key with fingerprint {UBUNTU_ARCHIVE_2018} in "
                      + ", ".join(origin for origin, _ in sources))
