"""Secrets: (env "NAME") and (secret v), compiled and run for real (bash, dash, busybox sh),
and grepped for: a secret's value reaches the node's files and commands, and nothing else
(scripts, manifests, listings, explain, errors). The run side, on real nodes, is in
test_secrets_nodes.py."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from pallet.checks import parse_powershell, shellcheck
from pallet.compiler.bundle import _write_bundle, build_bundles
from pallet.compiler.project import load_project
from pallet.errors import PalletError
from pallet.secret import MASK, Redactor, Secret

PALLET = str(Path(sys.executable).parent / "pallet")
PASSWORD = "Tr0ub4dor&3-hunter2"      # what every test greps for
SHELLS = {"debian-12": ["bash"], "alpine-3.20": ["dash", "busybox sh"]}


def load(text: str, environ=None, name: str = "spec.pallet"):
    return load_project(name, text=text, environ={"DB_PASSWORD": PASSWORD} if environ is None
                        else environ)


def bundles_of(text: str, os_name: str = "debian-12", environ=None, read_file=None):
    project = load(text, environ)
    nodes = project.targets(os_spec=os_name)
    return build_bundles(project.plan(nodes), nodes, read_file or (lambda p: b""))


def value_of(text: str, name: str, environ=None):
    project = load(text + '\n(def g (group-spec "g"))', environ)
    return project.evaluator.namespaces["user"].env.vars[name]


def hits(root: Path, needle: str, skip=lambda p: False) -> list[str]:
    """Every file under root whose bytes hold `needle`."""
    return [str(p) for p in sorted(root.rglob("*")) if p.is_file() and not skip(p)
            and needle.encode() in p.read_bytes()]


def run(bundle, directory: Path, shell: str, state: Path) -> subprocess.CompletedProcess:
    _write_bundle(bundle, directory)
    env = {**os.environ, "PALLET_STATE_DIR": str(state), "PALLET_BUNDLE_DIR": str(directory)}
    return subprocess.run([*shell.split(), str(directory / bundle.script_name)], env=env,
                          capture_output=True, text=True, timeout=60)


# -- the language: env, secret, and what stays secret ------------------------------------------

def test_env_reads_the_environment_handed_in_and_fails_located_when_unset():
    assert value_of('(def x (env "DB_PASSWORD"))', "x") == PASSWORD
    assert value_of('(def x (env "NOPE" "fallback"))', "x") == "fallback"
    with pytest.raises(PalletError) as e:
        load('(def x\n  (env "NOPE"))\n(def g (group-spec "g"))', environ={})
    assert str(e.value.span) == "spec.pallet:2:3"
    assert 'NOPE is not set in the environment of pallet' in e.value.message
    assert '(env "NOPE" "...")' in e.value.message
    # The compiler never reads os.environ itself: without an environment, env says so.
    os.environ["PALLET_TEST_ONLY_VAR"] = "x"
    try:
        with pytest.raises(PalletError, match="given no environment"):
            load_project("s.pallet", text='(def x (env "PALLET_TEST_ONLY_VAR"))')
    finally:
        del os.environ["PALLET_TEST_ONLY_VAR"]
    with pytest.raises(PalletError, match="name of an environment variable"):
        load('(def x (env :DB_PASSWORD))')


def test_what_is_made_from_a_secret_stays_secret():
    spec = '''
(def pw (secret (env "DB_PASSWORD")))
(def db {:user "app" :password pw :port 5432})
(def joined (str "password=" pw))
(def formatted (format "%s:%s@%d" (:user db) (:password db) (:port db)))
(def shouted (str/upper-case pw))
(def parts (str/split (str "a," pw) ","))
(def kw (keyword pw))
(def in-vector [(str pw "!") "plain"])
(def user (get db :user))
(def port (:port db))
(def empty (empty? pw))
(def same (= pw "x"))
(def length (count pw))
(def nothing (secret nil))
(def marked (secret {:a "x" :b [1 :k]}))
'''
    v = {k: value_of(spec, k) for k in ("pw", "db", "joined", "formatted", "shouted", "parts",
                                       "kw", "in-vector", "user", "port", "empty", "same",
                                       "length", "nothing", "marked")}
    for name in ("pw", "joined", "formatted", "shouted", "kw"):
        assert type(v[name]) is Secret, name
        assert str(v[name]) == repr(v[name]) == MASK
    assert v["joined"].value == "password=" + PASSWORD
    assert v["formatted"].value == f"app:{PASSWORD}@5432"
    assert v["shouted"].value == PASSWORD.upper()
    assert [p.value for p in v["parts"]] == ["a", PASSWORD]
    # A collection holds its secret as it is; its other values stay plain.
    assert type(v["db"][next(k for k in v["db"] if k.name == "password")]) is Secret
    assert v["user"] == "app" and v["port"] == 5432
    assert type(v["in-vector"][0]) is Secret and v["in-vector"][1] == "plain"
    # Tests work on secrets; their truth values, a length, are not secret.
    assert v["empty"] is False and v["same"] is False and v["length"] == len(PASSWORD)
    assert v["nothing"] is None
    marked = {k.name: val for k, val in v["marked"].items()}
    assert type(marked["a"]) is Secret and all(type(x) is Secret for x in marked["b"])


def test_errors_about_a_secret_do_not_show_it():
    for code in ('(Integer/parseInt (secret (env "DB_PASSWORD")))',
                 '(fail "bad password %s" (secret (env "DB_PASSWORD")))',
                 '(throw (ex-info (str "no " (secret (env "DB_PASSWORD"))) {}))',
                 '(+ 1 (secret (env "DB_PASSWORD")))',
                 '(subs (secret (env "DB_PASSWORD")) 50)',
                 '(fn-that-does-not-exist (secret (env "DB_PASSWORD")))'):
        with pytest.raises(PalletError) as e:
            load(f'(def x {code})\n(def g (group-spec "g"))')
        assert PASSWORD not in e.value.format(), code


SPEC = '''
(def pw (secret (env "DB_PASSWORD")))

(def app
  (group-spec "app"
    :phases {:configure
             (phase-fn
               (remote-file "ROOT/app.conf" :content (format "user=app\\npassword=%s\\n" pw)
                            :mode "640")
               (remote-file "ROOT/app.tmpl" :template "app.j2" :values {:password pw :port 5432})
               (remote-file "ROOT/key.pem" :local-file "key.pem" :secret true)
               (remote-file "ROOT/plain.txt" :content "nothing secret\\n")
               (exec-checked-script "write the password"
                 (printf "%s" ~pw ">" "ROOT/printed")
                 (pipe (printf "%s\\n" ~(str "app:" pw)) (cat ">" "ROOT/piped")))
               (exec-script (heredoc "ROOT/heredoc" ~pw)))}))
'''


def spec_for(root: Path) -> str:
    return SPEC.replace("ROOT", str(root))


def reader(files: dict[str, bytes]):
    return lambda name: files[name]


TEMPLATE = {"app.j2": b"port={{ port }}\npassword={{ password }}\n", "key.pem": b"KEY\nMATERIAL\n"}


@pytest.mark.parametrize("os_name", SHELLS)
def test_a_bundle_carries_its_secrets_apart_and_the_node_gets_them(tmp_path, os_name):
    root = tmp_path / "node"
    root.mkdir()
    (bundle,) = bundles_of(spec_for(root), os_name, read_file=reader(TEMPLATE))
    # Only secrets/ holds the value: not the script, not the manifest; a secret file is named
    # by its number (its sha256 would find a short password), and has no checksum shown.
    assert PASSWORD not in bundle.script
    assert set(bundle.secret_files) >= {"secrets/1", "secrets/file-1", "secrets/file-2",
                                        "secrets/file-3"}
    manifest = json.dumps(bundle.manifest())
    assert PASSWORD not in manifest and "secrets/file-1" in manifest
    for name, data in bundle.files:
        if name.startswith("secrets/file-"):
            import hashlib
            assert hashlib.sha256(data).hexdigest() not in bundle.script + manifest
    assert shellcheck(bundle.script, "sh" if os_name.startswith("alpine") else "bash") == []
    for shell in SHELLS[os_name]:
        for f in root.iterdir():
            f.unlink()
        first = run(bundle, tmp_path / f"bundle-{shell.split()[0]}", shell, tmp_path / "state")
        assert first.returncode == 0, first.stderr
        assert "PALLET-SUMMARY ok=0 changed=6 failed=0" in first.stdout
        assert (root / "app.conf").read_text() == f"user=app\npassword={PASSWORD}\n"
        assert (root / "app.tmpl").read_text() == f"port=5432\npassword={PASSWORD}\n"
        assert (root / "key.pem").read_bytes() == TEMPLATE["key.pem"]
        assert (root / "printed").read_text() == PASSWORD
        assert (root / "piped").read_text() == f"app:{PASSWORD}\n"
        assert (root / "heredoc").read_text() == PASSWORD
        # New secret files are made 600 unless a mode is given; the node's record of their
        # checksum is root's alone.
        assert stat.S_IMODE((root / "app.conf").stat().st_mode) == 0o640
        assert stat.S_IMODE((root / "app.tmpl").stat().st_mode) == 0o600
        assert stat.S_IMODE((root / "plain.txt").stat().st_mode) == 0o644
        records = list((tmp_path / "state" / "files").rglob("app.tmpl.sha256"))
        assert records and stat.S_IMODE(records[0].stat().st_mode) == 0o600
        # No diff of a secret file, ever: not even when it is replaced.
        assert PASSWORD not in first.stdout + first.stderr
        again = run(bundle, tmp_path / f"again-{shell.split()[0]}", shell, tmp_path / "state")
        assert again.returncode == 0 and "PALLET-SUMMARY ok=4 changed=2" in again.stdout
    # A new value replaces the file, with no diff shown (a fresh state: no drift guard).
    new = bundles_of(spec_for(root), os_name, environ={"DB_PASSWORD": PASSWORD + "-new"},
                     read_file=reader(TEMPLATE))[0]
    (root / "app.conf").write_text("user=app\npassword=old\n")
    changed = run(new, tmp_path / "changed", SHELLS[os_name][0], tmp_path / "state2")
    assert changed.returncode == 0, changed.stderr
    assert "old" not in changed.stderr and PASSWORD not in changed.stderr
    assert (root / "app.conf").read_text().endswith(PASSWORD + "-new\n")


def test_a_bundle_without_its_secrets_stops_and_says_why(tmp_path):
    root = tmp_path / "node"
    root.mkdir()
    (bundle,) = bundles_of(spec_for(root), read_file=reader(TEMPLATE))
    directory = tmp_path / "record-copy"
    _write_bundle(bundle, directory)
    for name in bundle.secret_files:
        (directory / name).unlink()
    result = subprocess.run(["bash", str(directory / "run.sh")], capture_output=True, text=True,
                            env={**os.environ, "PALLET_STATE_DIR": str(tmp_path / "state")})
    assert result.returncode == 1
    assert "secrets/1 is missing: this bundle uses a secret value that it does not carry" in result.stderr
    assert not (root / "app.conf").exists()


@settings(max_examples=40, deadline=None)
@given(st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)),
               min_size=1, max_size=40))
def test_any_secret_arrives_byte_for_byte(tmp_path_factory, value):
    """Whatever its characters (quotes, $, newlines at the end), a secret reaches the node
    exactly, in bash and in sh, and never appears in the script."""
    tmp = tmp_path_factory.mktemp("exact")
    spec = f'''(def g (group-spec "g" :phases {{:configure (phase-fn
      (exec-script (printf "%s" ~(secret (env "V")) ">" "{tmp}/out")))}}))'''
    value = "marker:" + value     # so that "not in the script" means something
    for os_name, shell in (("debian-12", "bash"), ("alpine-3.20", "dash")):
        (bundle,) = bundles_of(spec, os_name, environ={"V": value})
        assert "marker:" not in bundle.script
        result = run(bundle, tmp / f"b-{shell}", shell, tmp / "state")
        assert result.returncode == 0, result.stderr
        assert (tmp / "out").read_bytes() == value.encode()


def test_a_secret_is_never_an_argument_of_a_program():
    def compile_body(body: str):
        return bundles_of(f'''(def pw (secret (env "DB_PASSWORD")))
(def g (group-spec "g" :phases {{:configure (phase-fn
  (exec-script {body}))}}))''')
    for body in ('(mysql "-p" ~pw)', '(curl (str "https://u:" ~pw "@example.org"))',
                 '(env (str "PW=" ~pw) "true")', '(sudo "-S" ~pw)', '(~pw)',
                 '(if (= @(cat "/x" ~pw) "") (true))'):
        with pytest.raises(PalletError) as e:
            compile_body(body)
        assert "a secret cannot be" in e.value.message, body
        assert "ps, /proc/PID/cmdline" in e.value.message
        assert str(e.value.span).startswith("spec.pallet:3:")
    for body in ('(println ~pw)', '(printf "%s" ~pw ">" "/tmp/x")', '(echo ~pw)',
                 '(pipe (printf "%s" ~pw) (chpasswd))', '(if (= ~pw "") (true))',
                 '(export PGPASSWORD ~pw)', '(var x ~pw)', '(test -n ~pw)'):
        (bundle,) = compile_body(body)
        assert PASSWORD not in bundle.script and "pallet_secret_1" in bundle.script, body


@pytest.mark.parametrize("form, where", [
    ('(file ~pw)', "its arguments"),
    ('(remote-file "/etc/x" :content "x" :owner pw)', ":owner"),
    ('(user "app" :comment pw)', ":comment"),
    ('(package "curl" :version pw)', ":version"),
    ('(sed "/etc/x" {"^a=.*" (str "a=" pw)})', "its arguments"),
    ('(remote-file "/etc/x" :url (str "https://u:" pw "@h/f") :sha256 "%s")' % ("0" * 64), ":url"),
    ('(package-source "x" :apt {:url (str "https://u:" pw "@h") :release "bookworm"})', ":apt"),
    ('(exec-checked-script "n" :creates pw (true))', ":creates"),
])
def test_secrets_go_only_where_they_stay_secret(form, where):
    form = form.replace("~pw", "pw")
    with pytest.raises(PalletError) as e:
        bundles_of(f'''(def pw (secret (env "DB_PASSWORD")))
(def g (group-spec "g" :phases {{:configure (phase-fn
  {form})}}))''')
    message = e.value.message
    assert (f"a secret cannot be in {where}" in message if where != "its arguments"
            else "a secret cannot be in its arguments" in message
            or "expected a string, got a secret value" in message), message
    assert str(e.value.span).startswith("spec.pallet:3:")


def test_powershell_bundles_carry_secrets_the_same_way():
    (bundle,) = bundles_of('''(def pw (secret (env "DB_PASSWORD")))
(def w (group-spec "w" :phases {:configure (phase-fn
  (remote-file "C:/app/app.conf" :content (str "password=" pw))
  (exec-script (Set-Content -Path "C:/app/pw" -Value ~pw)))}))''', "windows")
    assert bundle.script_name == "run.ps1" and PASSWORD not in bundle.script
    assert "$pallet_secret_1" in bundle.script or "${pallet_secret_1}" in bundle.script
    assert parse_powershell(bundle.script) == []


# -- what the commands print and write ------------------------------------------------------

def cli(*args, cwd: Path, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([PALLET, *args], capture_output=True, text=True, cwd=cwd, timeout=120,
                          env={**os.environ, "DB_PASSWORD": PASSWORD, **(env or {})})


def test_compile_explain_and_check_show_no_secret(tmp_path):
    root = tmp_path / "node"
    (tmp_path / "spec.pallet").write_text(spec_for(root))
    for name, data in TEMPLATE.items():
        (tmp_path / name).write_bytes(data)
    leaks = []
    for args in (("compile", "spec.pallet", "--os", "debian-12", "-o", "out", "--check"),
                 ("compile", "spec.pallet", "--os", "debian-12", "-o", "out", "-v"),
                 ("explain", "spec.pallet", "--os", "debian-12"),
                 ("check", "spec.pallet", "--os", "debian-12")):
        result = cli(*args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        leaks += [args for text in (result.stdout, result.stderr) if PASSWORD in text]
    assert "1 bundle carries secret values, in NODE/PHASE/secrets/" in cli(
        "compile", "spec.pallet", "--os", "debian-12", "-o", "out", cwd=tmp_path).stdout
    out = tmp_path / "out"
    # Only the files meant to carry it do: secrets/, mode 600 in a 700 directory.
    assert hits(out, PASSWORD, skip=lambda p: "secrets" in p.parts) == []
    carried = hits(out, PASSWORD)
    assert carried and all("/secrets/" in p for p in carried)
    secrets_dir = out / "app" / "configure" / "secrets"
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in secrets_dir.iterdir())
    assert leaks == []
    # Recompiling the same input changes nothing; a new value is written.
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert cli("compile", "spec.pallet", "--os", "debian-12", "-o", "out", cwd=tmp_path).returncode == 0
    assert before == {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert cli("compile", "spec.pallet", "--os", "debian-12", "-o", "out", cwd=tmp_path,
               env={"DB_PASSWORD": "another one"}).returncode == 0
    assert hits(out, "another one") and not hits(out, PASSWORD)


def test_an_error_in_a_spec_with_secrets_shows_none(tmp_path):
    (tmp_path / "spec.pallet").write_text('''(def pw (secret (env "DB_PASSWORD")))
(def g (group-spec "g" :phases {:configure (phase-fn
  (file (str "/etc/" pw)))}))''')
    result = cli("compile", "spec.pallet", "--os", "debian-12", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "a secret cannot be in its arguments" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr


def test_the_redactor_masks_values_lines_and_json():
    r = Redactor(["hunter22", "-----BEGIN KEY-----\nAAAABBBBCCCC\n-----END KEY-----\n", "ab"])
    assert r.text("pw=hunter22; x") == "pw=<secret>; x"
    assert r.text("line AAAABBBBCCCC seen") == "line <secret> seen"
    assert r.text("ab stays: too short to mask") == "ab stays: too short to mask"
    assert r.data({"e": ["hunter22"], "n": 1}) == {"e": ["<secret>"], "n": 1}
    err = r.error(PalletError("no hunter22 here"))
    assert err.format() == "error: no <secret> here"
    assert Redactor().text("hunter22") == "hunter22"


def test_a_node_list_takes_its_passwords_from_secrets(tmp_path):
    from pallet.runtime.providers import SpecNodeList
    project = load('''(def servers (node-list [{:name "n1" :group "g" :host "192.0.2.1"
                             :password (secret (env "DB_PASSWORD"))
                             :sudo-password (secret "sudo-pass")}]))
(def g (group-spec "g"))''')
    (record,) = SpecNodeList(project.spec_nodes(), tmp_path).list_nodes()
    assert (record.endpoint.password, record.endpoint.sudo_password) == (PASSWORD, "sudo-pass")
    assert PASSWORD not in repr(record) + repr(project.spec_nodes())
    with pytest.raises(PalletError, match=":password must be a string"):
        load('(def s (node-list [{:name "n" :group "g" :host "h" :password 5}]))\n(def g (group-spec "g"))')


def test_an_offline_bundle_carries_secrets_for_its_node_alone(tmp_path):
    """pallet bundle: NODE.run is its owner's alone, --list and --info show no secret (nor
    its sha256), the node gets the values, extracted they are 600; no cloud-init for it."""
    import hashlib
    root = tmp_path / "node"
    root.mkdir()
    (tmp_path / "spec.pallet").write_text(spec_for(root))
    for name, data in TEMPLATE.items():
        (tmp_path / name).write_bytes(data)
    made = cli("bundle", "spec.pallet", "--os", "debian-12", "--no-packages", "-o", "out",
               cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    run_file = tmp_path / "out" / "app.run"
    assert stat.S_IMODE(run_file.stat().st_mode) == 0o700
    digests = {hashlib.sha256(PASSWORD.encode()).hexdigest(),
               hashlib.sha256(f"user=app\npassword={PASSWORD}\n".encode()).hexdigest()}
    shown = made.stdout + made.stderr
    for args in (["--list"], ["--info"], ["--check"]):
        result = subprocess.run(["sh", str(run_file), *args], capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stderr
        shown += result.stdout + result.stderr
    assert "configure/secrets/1" in shown and "(secret)" in shown
    assert PASSWORD not in shown and not any(d in shown for d in digests)
    # What it unpacks: the secrets 600 in a 700 directory.
    out = tmp_path / "x"
    assert subprocess.run(["sh", str(run_file), "--extract", str(out)], timeout=60).returncode == 0
    assert stat.S_IMODE((out / "configure/secrets").stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600
               for p in (out / "configure/secrets").iterdir())
    assert hits(out, PASSWORD, skip=lambda p: "secrets" in p.parts) == []
    # Run, it gives the node the values.
    ran = subprocess.run(["sh", str(run_file)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PALLET_STATE_DIR": str(tmp_path / "state")})
    assert ran.returncode == 0, ran.stderr
    assert (root / "app.conf").read_text() == f"user=app\npassword={PASSWORD}\n"
    assert (root / "printed").read_text() == PASSWORD
    refused = cli("bundle", "spec.pallet", "--os", "debian-12", "--no-packages", "--cloud-init",
                  "-o", "out2", cwd=tmp_path)
    assert refused.returncode == 2 and "carries secret values" in refused.stderr
    assert not (tmp_path / "out2").exists() and PASSWORD not in refused.stderr
