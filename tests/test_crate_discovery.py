"""Finding crates: `pallet crates`, `pallet doc`, crates on the search path and crates
installed as Python packages (entry points of the group `pallet.crates`).

The third-party crate is a real wheel, installed by pip into a temporary directory that the
`pallet` subprocesses get on their PYTHONPATH: importlib.metadata finds it as it finds any
installed distribution, and nothing is left in the project's environment.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pallet.compiler.crates import CrateIndex, file_names, namespace_of, summary_of

ROOT = Path(__file__).resolve().parent.parent
PALLET = Path(sys.executable).parent / "pallet"
BUNDLED = sorted(p for p in (ROOT / "crates").glob("*.pallet"))


def pallet(*args: str, cwd: Path = ROOT, pythonpath: Path | None = None,
           pallet_path: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PALLET_PATH", "PYTHONPATH")}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    if pallet_path is not None:
        env["PALLET_PATH"] = pallet_path
    proc = subprocess.run([str(PALLET), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=env)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    return proc


def bundled_namespace(path: Path) -> str:
    return namespace_of([path.name])


def listing(proc: subprocess.CompletedProcess) -> dict[str, str]:
    """namespace -> the rest of its line."""
    assert proc.returncode == 0, proc.stderr
    out = {}
    for line in proc.stdout.splitlines():
        name, _, rest = line.partition(" ")
        out[name] = " ".join(rest.split())
    return out


# ---- a user crate and a third-party package ---------------------------------------------------

MOTD = """\
;; motd: the message of the day.
;; Writes /etc/motd and lets the OS rebuild it.

(def-crate-fn banner
  "Write the message of the day.

  The file belongs to :owner, with :mode."
  [text & {:keys [owner mode] :or {owner "root" mode "644"}}]
  (check-option :mode mode string? "a mode such as \\"644\\"")
  (when (= (os-family) :windows)
    (fail "motd: Windows has no /etc/motd"))
  (remote-file "/etc/motd" :content (str text "\\n") :owner owner :mode mode))

(defn- private-helper [] 1)

(defn lines "The lines of a banner." [text] (split-lines text))
"""

GREETING = """\
;; greeting: a greeting in /etc/greeting, from an installed package.

(def-crate-fn hello
  "Write /etc/greeting."
  [& {:keys [text] :or {text "hello"}}]
  (remote-file "/etc/greeting" :content (str text "\\n")))
"""

PACKAGE_JAVA = """\
;; java: the package's own java, shadowing the bundled one.
(def-crate-fn java "A java of a package." [] (package "package-java"))
"""

PATH_JAVA = """\
;; java: the search path's java, shadowing every other.
(def-crate-fn java "A java of the search path." [] (package "path-java"))
"""


@pytest.fixture
def user_crates(tmp_path: Path) -> Path:
    d = tmp_path / "crates"
    (d / "my").mkdir(parents=True)
    (d / "motd.pallet").write_text(MOTD)
    (d / "my" / "web_tools.pallet").write_text(";; Tools for the web. Nested.\n"
                                               "(defn ping [] 1)\n")
    return d


def make_wheel(directory: Path, dist: str, files: dict[str, str], entry_points: str) -> Path:
    """A pure-Python wheel, written as any build backend would write it."""
    version = "0.1.0"
    info = f"{dist.replace('-', '_')}-{version}.dist-info"
    files = {**files,
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: pallet-tests\nRoot-Is-Purelib: true\n"
                              "Tag: py3-none-any\n",
             f"{info}/entry_points.txt": entry_points}
    path = directory / f"{dist.replace('-', '_')}-{version}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            data = text.encode()
            z.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(data)}")
        record.append(f"{info}/RECORD,,")
        z.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return path


def pip_install(wheel: Path, target: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--no-index", "--disable-pip-version-check", "--target", str(target),
                           str(wheel)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A directory where pip installed `pallet-mycrates`: its entry point
    `mycrates = "mycrates:crates"` names the directory crates/ of the package mycrates."""
    work = tmp_path_factory.mktemp("thirdparty")
    wheel = make_wheel(work, "pallet-mycrates", {
        "mycrates/__init__.py": "",
        "mycrates/crates/greeting.pallet": GREETING,
        "mycrates/crates/java.pallet": PACKAGE_JAVA,
    }, "[pallet.crates]\nmycrates = mycrates:crates\n")
    target = work / "site"
    pip_install(wheel, target)
    assert (target / "mycrates" / "crates" / "greeting.pallet").is_file()
    return target


# ---- naming -------------------------------------------------------------------------------------

def test_namespaces_and_file_names():
    assert namespace_of(["ssh_key.pallet"]) == "ssh-key"
    assert namespace_of(["my", "web_tools.pallet"]) == "my.web-tools"
    assert file_names("ssh-key") == (("ssh_key.pallet",), ("ssh-key.pallet",),
                                      ("ssh_key.clj",), ("ssh-key.clj",))
    assert file_names("my.crate") == (("my", "crate.pallet"), ("my", "crate.clj"))
    assert namespace_of(["pallet", "crate", "ssh_key.clj"]) == "pallet.crate.ssh-key"


def test_the_summary_is_the_first_sentence_of_the_header():
    assert summary_of(";; java: OpenJDK from packages.\n;; (java/java) the JDK\n(def x 1)",
                      "java") == "OpenJDK from packages."
    assert summary_of(";; ssh-key: authorize keys, generate\n;; and publish key pairs. More.\n",
                      "ssh-key") == "authorize keys, generate and publish key pairs."
    assert summary_of(";; No full stop here\n;; and here\n", "x") == "No full stop here"
    assert summary_of("(def x 1)\n;; late comment\n", "x") == ""
    assert summary_of("\n\n;; note: after blank lines.\n", "x") == "note: after blank lines."


# ---- pallet crates ------------------------------------------------------------------------------

def test_crates_lists_every_bundled_crate_with_its_summary():
    assert BUNDLED, "no bundled crates?"
    crates = listing(pallet("crates"))
    for path in BUNDLED:
        ns = bundled_namespace(path)
        assert ns in crates, f"{ns} ({path.name}) is not listed: {crates}"
        origin, _, summary = crates[ns].partition(" ")
        assert origin == "bundled"
        assert summary.strip(), f"{path.name} has no summary: start it with a ';; ' comment line"
    assert "core" not in crates and not any(n.startswith("core.") for n in crates)
    assert crates["java"] == "bundled OpenJDK from the OS's own packages."
    assert crates["hadoop"] == "bundled the talk's example crate."
    assert crates["ssh-key"].startswith("bundled authorize public keys for users")


def test_crates_as_json():
    proc = pallet("crates", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    java = next(c for c in data["crates"] if c["namespace"] == "java")
    assert java["origin"] == "bundled" and java["shadows"] == []
    assert java["summary"] == "OpenJDK from the OS's own packages."
    assert Path(java["file"]).name == "java.pallet"
    assert data["problems"] == []


def test_a_crate_on_the_search_path_is_listed_and_shadows_the_bundled_one(user_crates):
    (user_crates / "java.pallet").write_text(PATH_JAVA)
    crates = listing(pallet("crates", "--crate-path", str(user_crates)))
    assert crates["motd"] == f"path {user_crates} the message of the day."
    assert crates["my.web-tools"] == f"path {user_crates} Tools for the web."
    assert crates["java"] == (f"path {user_crates} the search path's java, shadowing every "
                              "other. [shadows bundled]")
    # PALLET_PATH is the same search path
    assert listing(pallet("crates", pallet_path=str(user_crates)))["motd"].startswith("path ")


# ---- pallet doc ---------------------------------------------------------------------------------

def test_doc_of_java_java_shows_its_options_and_defaults():
    proc = pallet("doc", "java/java")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("(java/java")
    assert "crate function of the crate java (bundled with Pallet), defined at " in out
    assert str(ROOT / "crates" / "java.pallet") in out
    # java/java reads its arguments itself: its kinds, :version and the default are in its
    # docstring (or, when it declares them, in its :arglists)
    for word in (":version", ":jdk", ":jre", "default"):
        assert word in out, out


def test_doc_shows_arguments_options_and_defaults_from_the_parameters(user_crates):
    out = pallet("doc", "ssh-key/authorize-key").stdout
    assert out.splitlines()[0] == ("(ssh-key/authorize-key user public-key-string "
                                   "& {:keys [authorize-for-user home]})")
    assert "Arguments:\n  user\n  public-key-string\n" in out
    assert "Options:\n  :authorize-for-user\n  :home\n" in out      # no :or, no default shown
    assert "Authorize a public key on the specified user" in out

    proc = pallet("doc", "motd/banner", "--crate-path", str(user_crates))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        '(motd/banner text & {:keys [owner mode] :or {owner "root" mode "644"}})\n'
        "\n"
        f"  crate function of the crate motd (search path {user_crates}), defined at "
        f"{user_crates / 'motd.pallet'}:4:1\n"
        "\n"
        "Arguments:\n"
        "  text\n"
        "\n"
        "Options:\n"
        '  :owner  default: "root"\n'
        '  :mode   default: "644"\n'
        "\n"
        "  Write the message of the day.\n"
        "\n"
        "  The file belongs to :owner, with :mode.\n")


def test_doc_reads_the_arglists_of_a_function_that_parses_its_own_arguments(tmp_path):
    (tmp_path / "jdk.pallet").write_text(
        ";; jdk: a java of one's own.\n"
        "(def-crate-fn install\n"
        '  "Install a JDK: (jdk/install), (jdk/install :jre :version 21)."\n'
        "  {:arglists '([& {:keys [version] :or {version 17}}] [kind & {:keys [version]}])}\n"
        "  [& args]\n"
        '  (package "jdk"))\n')
    proc = pallet("doc", "jdk/install", "--crate-path", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["(jdk/install & {:keys [version] :or {version 17}})",
                         "(jdk/install kind & {:keys [version]})"]
    assert "Arguments:\n  kind\n\nOptions:\n  :version  default: 17\n" in proc.stdout


def test_doc_of_a_whole_crate_lists_its_public_functions(user_crates):
    proc = pallet("doc", "motd", "--crate-path", str(user_crates))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith(f"motd: a crate (search path {user_crates}), "
                          f"{user_crates / 'motd.pallet'}\n\n"
                          "  motd: the message of the day.\n"
                          "  Writes /etc/motd and lets the OS rebuild it.\n\n")
    assert "Crate functions:\n  motd/banner  Write the message of the day.\n" in out
    assert "Functions:\n  motd/lines  The lines of a banner.\n" in out
    assert "private-helper" not in out

    out = pallet("doc", "java").stdout
    assert out.startswith(f"java: a crate (bundled with Pallet), {ROOT / 'crates' / 'java.pallet'}"
                          "\n\n  java: OpenJDK from the OS's own packages.\n")
    assert "\n  java/java  " in out and "\n  java/settings  " in out and "parse-args" not in out


@pytest.mark.parametrize("name,message", [
    ("jav/java", "no crate or file named 'jav' (looked in installed crate packages and the "
                 "bundled crates); did you mean 'java'?"),
    ("java/jav", "the crate java has no function 'jav'; did you mean 'java/java'?"),
    ("java/parse-args", "the crate java has no public function 'parse-args'"),
    ("jaav", "no crate named 'jaav'; did you mean 'java'?"),
    ("authorize-key", "no crate named 'authorize-key'; did you mean 'ssh-key/authorize-key'?"),
    ("package", "'package' is not a crate: it is part of the core library"),
])
def test_doc_of_an_unknown_name_fails_with_a_suggestion(name, message):
    proc = pallet("doc", name)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"error: {message}"), proc.stderr


# ---- a user crate is used like a bundled one ----------------------------------------------------

SPEC = """\
(def web
  (group-spec "web"
    :phases {:configure (phase-fn
                          (motd/banner "Authorised use only." :owner "admin")
                          (java/java))}))
"""


def test_a_crate_on_the_search_path_compiles_from_a_spec(tmp_path, user_crates):
    (tmp_path / "spec.pallet").write_text(SPEC)
    (user_crates / "java.pallet").write_text(PATH_JAVA)
    proc = pallet("compile", "spec.pallet", "--os", "debian-12", "--crate-path", str(user_crates),
                  "-o", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "out" / "web" / "configure" / "manifest.json").read_text())
    labels = [a["label"] for a in manifest["actions"]]
    assert labels[0] == "remote-file /etc/motd"
    assert labels[1].startswith("package") and labels[1].endswith(" path-java")
    script = (tmp_path / "out" / "web" / "configure" / "run.sh").read_text()
    assert "admin" in script


# ---- a crate installed as a Python package ------------------------------------------------------

def test_an_installed_package_s_crates_are_listed(site):
    crates = listing(pallet("crates", pythonpath=site))
    assert crates["greeting"] == ("package pallet-mycrates 0.1.0 a greeting in /etc/greeting, "
                                  "from an installed package.")
    assert crates["java"] == ("package pallet-mycrates 0.1.0 the package's own java, shadowing "
                              "the bundled one. [shadows bundled]")
    data = json.loads(pallet("crates", "--json", pythonpath=site).stdout)
    greeting = next(c for c in data["crates"] if c["namespace"] == "greeting")
    assert greeting["entry_point"] == "mycrates"
    assert greeting["file"] == str(site / "mycrates" / "crates" / "greeting.pallet")
    # without the package on the path, it is not there
    assert "greeting" not in listing(pallet("crates"))


def test_the_search_path_comes_before_packages_before_bundled(site, user_crates):
    (user_crates / "java.pallet").write_text(PATH_JAVA)
    crates = listing(pallet("crates", "--crate-path", str(user_crates), pythonpath=site))
    assert crates["java"].endswith("[shadows package pallet-mycrates 0.1.0; bundled]")
    assert crates["java"].startswith(f"path {user_crates} ")


def test_an_installed_package_s_crate_is_documented_and_compiles(tmp_path, site):
    proc = pallet("doc", "greeting/hello", pythonpath=site)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith('(greeting/hello & {:keys [text] :or {text "hello"}})\n\n'
                                  "  crate function of the crate greeting (package "
                                  "pallet-mycrates 0.1.0), defined at "
                                  f"{site / 'mycrates' / 'crates' / 'greeting.pallet'}:3:1\n")
    assert 'Options:\n  :text  default: "hello"\n' in proc.stdout

    (tmp_path / "spec.pallet").write_text(
        '(def g (group-spec "g" :phases {:configure (phase-fn\n'
        '  (greeting/hello :text "hi")\n'
        '  (java/java))}))\n')
    proc = pallet("compile", "spec.pallet", "--os", "debian-12", "-o", "out", cwd=tmp_path,
                  pythonpath=site)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "out" / "g" / "configure" / "manifest.json").read_text())
    labels = [a["label"] for a in manifest["actions"]]
    assert labels[0] == "remote-file /etc/greeting"
    assert labels[1].startswith("package") and labels[1].endswith(" package-java")
    # errors in a package's crate are located like any other
    (tmp_path / "spec.pallet").write_text(
        '(def g (group-spec "g" :phases {:configure (phase-fn\n'
        '  (greeting/hello :txt "hi"))}))\n')
    proc = pallet("compile", "spec.pallet", "--os", "debian-12", "-o", "out", cwd=tmp_path,
                  pythonpath=site)
    assert proc.returncode == 2
    assert proc.stderr.startswith("spec.pallet:2:3: greeting/hello: unknown option :txt; "
                                  "did you mean ':text'?")


def test_a_broken_entry_point_is_a_warning_not_a_failure(tmp_path):
    wheel = make_wheel(tmp_path, "pallet-broken", {"brokencrates/__init__.py": ""},
                       "[pallet.crates]\nnothere = no_such_module:crates\n"
                       "nodir = brokencrates:crates\n")
    target = tmp_path / "site"
    pip_install(wheel, target)
    proc = pallet("crates", pythonpath=target)
    assert proc.returncode == 0
    assert "warning: pallet-broken 0.1.0 (entry point nothere): cannot import no_such_module" in proc.stderr
    assert ("warning: pallet-broken 0.1.0 (entry point nodir): brokencrates:crates is not a "
            "directory of .pallet crates") in proc.stderr
    assert "java" in listing(proc)
    proc = pallet("doc", "java/java", pythonpath=target)
    assert proc.returncode == 0, proc.stderr


def test_installed_packages_are_read_only_when_the_search_path_misses(user_crates):
    index = CrateIndex([user_crates])
    assert index.find("motd").origin == "path"
    assert index._packages is None          # entry points not read
    assert index.find("java").origin == "bundled"
    assert index._packages is not None
