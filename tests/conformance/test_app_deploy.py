"""app-deploy: releases from a local archive, `current` switched, a restart only when it
changed, old releases pruned; each later version deployed by lifting a new spec on the node."""
from __future__ import annotations

import io
import pathlib
import json
import tarfile

from .conftest import _pallet


def archive(version: str) -> bytes:
    """app-VERSION.tar.gz with one top directory, as release tarballs have."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, text in ((f"app-{version}/index.html", f"<h1>{version}</h1>\n"),
                           (f"app-{version}/bin/run", "#!/bin/sh\necho run\n")):
            info = tarfile.TarInfo(name)
            data = text.encode()
            info.size, info.mode = len(data), 0o755 if "bin/" in name else 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def spec(version: str) -> str:
    return f'''
(def web
  (group-spec "web"
    :extends [(app-deploy/server
                :keep 2
                :apps {{"shop" {{:version "{version}" :archive "app-{version}.tar.gz"
                               :strip-components 1 :owner "www-data"
                               :restart "echo {version} >> /srv/shop/restarts"}}}})]))
'''


def test_app_deploy(converge, tmp_path_factory):
    work = tmp_path_factory.mktemp("archives")
    for v in ("1.0", "2.0", "3.0"):
        (work / f"app-{v}.tar.gz").write_bytes(archive(v))
    text = spec("1.0").replace('"app-1.0.tar.gz"', f'"{work}/app-1.0.tar.gz"')
    result = converge(text, {"web": 1})
    node = "web-1"
    sh = lambda c: result.sh(node, c)  # noqa: E731
    assert sh("readlink /srv/shop/current") == "/srv/shop/releases/1.0\n"
    assert sh("cat /srv/shop/current/index.html") == "<h1>1.0</h1>\n"
    assert sh("stat -c '%U %a' /srv/shop/releases/1.0/bin/run") == "www-data 755\n"
    assert sh("cat /srv/shop/restarts") == "1.0\n"       # the second run did not restart
    assert sh("ls -A /srv/shop/releases") == "1.0\n"

    state, cwd = result.state, pathlib.Path(result.state).parent
    for version in ("2.0", "3.0"):
        (cwd / f"v{version}.pallet").write_text(
            spec(version).replace(f'"app-{version}.tar.gz"', f'"{work}/app-{version}.tar.gz"'))
        code, report, err = _pallet(["lift", f"v{version}.pallet"], state, "host", cwd)
        assert code == 0 and report["ok"], json.dumps(report, indent=1) + err
    assert sh("readlink /srv/shop/current") == "/srv/shop/releases/3.0\n"
    assert sh("cat /srv/shop/current/index.html") == "<h1>3.0</h1>\n"
    assert sh("cat /srv/shop/restarts") == "1.0\n2.0\n3.0\n"
    # :keep 2: the release in use and the one before it; 1.0 and its archive are gone
    assert sh("ls -A /srv/shop/releases") == "2.0\n3.0\n"
    assert sh("ls /srv/shop/archives") == "2.0.tar.gz\n3.0.tar.gz\n"
    # once more: nothing changes, nothing restarts
    code, report, err = _pallet(["lift", "v3.0.pallet"], state, "host", cwd)
    assert code == 0 and not any(p["changed"] for n in report["nodes"] for p in n["phases"]), report
    assert sh("cat /srv/shop/restarts") == "1.0\n2.0\n3.0\n"
