"""Bad input to crates is a compile error located in the spec: an unknown option, an option of
the wrong type, an OS the crate cannot serve. Each is checked through `pallet compile`, as a
user meets it: the first line of standard error is `file:line:col: message`, exit status 2."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PALLET = Path(sys.executable).parent / "pallet"


def where(text: str, needle: str, occurrence: int = 1) -> str:
    """line:col (1-based) of the n-th occurrence of needle in text."""
    index = -1
    for _ in range(occurrence):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"{line}:{column}"


def compile_error(tmp_path: Path, spec: str, os_name: str = "debian-12",
                  crate_path: Path | None = None) -> tuple[str, str]:
    """(first line of the error, the whole of standard error)."""
    (tmp_path / "spec.pallet").write_text(spec)
    args = [str(PALLET), "compile", "spec.pallet", "--os", os_name, "-o", "out"]
    if crate_path is not None:
        args += ["--crate-path", str(crate_path)]
    env = {k: v for k, v in os.environ.items() if k != "PALLET_PATH"}
    proc = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
    return proc.stderr.splitlines()[0], proc.stderr


def java_spec(call: str) -> str:
    return ('(def app\n'
            '  (group-spec "app"\n'
            '    :phases {:configure\n'
            f'             (phase-fn (user "app") {call})}}))\n')


# ---- a bundled crate: java ------------------------------------------------------------------------

def test_an_unknown_option_to_java_is_located_at_the_call(tmp_path):
    spec = java_spec("(java/java :jdk :versoin 17)")
    first, err = compile_error(tmp_path, spec)
    assert first == (f"spec.pallet:{where(spec, '(java/java')}: java/java: unknown option "
                     ":versoin; options: :version")
    assert "  in java/java, at <crate java>:" in err


def test_an_option_of_the_wrong_type_to_java_is_located_at_the_call(tmp_path):
    spec = java_spec('(java/java :version "x")')
    first, _ = compile_error(tmp_path, spec)
    assert first == (f"spec.pallet:{where(spec, '(java/java')}: java/java: :version is a major "
                     'version such as 17, not "x"')
    spec = java_spec("(java/java :server)")
    first, _ = compile_error(tmp_path, spec)
    assert first == (f"spec.pallet:{where(spec, '(java/java')}: java/java: the kind is :jdk or "
                     ":jre, not :server")


def test_java_on_an_os_it_cannot_serve_is_located_at_the_call(tmp_path):
    spec = java_spec("(java/java :jre)")
    first, err = compile_error(tmp_path, spec, os_name="windows")
    assert first == (f"spec.pallet:{where(spec, '(java/java')}: java: OpenJDK is not available "
                     "for windows")
    assert "  in java/java, at <crate java>:" in err


# ---- a crate of one's own: the same errors, with check-option for types -------------------------

MOTD = """\
;; motd: the message of the day.

(def-crate-fn banner
  "Write the message of the day."
  [text & {:keys [owner mode] :or {owner "root" mode "644"}}]
  (check-option :mode mode string? "a mode such as \\"644\\"")
  (check-option :owner owner (fn [o] (and (string? o) (not (blank? o)))) "a user name")
  (when (= (os-family) :windows)
    (fail "motd: Windows has no /etc/motd"))
  (remote-file "/etc/motd" :content (str text "\\n") :owner owner :mode mode))

(def-crate-fn site
  "A banner naming the site."
  [name & {:keys [mode]}]
  (banner (str "Welcome to " name) :mode mode))
"""


@pytest.fixture
def motd(tmp_path: Path) -> Path:
    d = tmp_path / "crates"
    d.mkdir()
    (d / "motd.pallet").write_text(MOTD)
    return d


def motd_spec(call: str) -> str:
    return ('(def web\n'
            '  (group-spec "web"\n'
            '    :phases {:configure (phase-fn\n'
            f'                          {call})}}))\n')


def test_an_unknown_option_to_a_user_crate_is_located_at_the_call_with_a_suggestion(tmp_path, motd):
    spec = motd_spec('(motd/banner "hi" :mdoe "600")')
    first, _ = compile_error(tmp_path, spec, crate_path=motd)
    assert first == (f"spec.pallet:{where(spec, '(motd/banner')}: motd/banner: unknown option "
                     ":mdoe; did you mean ':mode'?")


def test_check_option_locates_a_wrong_type_at_the_option_s_value(tmp_path, motd):
    spec = motd_spec('(motd/banner "hi" :mode 600)')
    first, _ = compile_error(tmp_path, spec, crate_path=motd)
    assert first == (f"spec.pallet:{where(spec, '600')}: motd/banner: :mode is a mode such as "
                     '"644", not 600')
    spec = motd_spec('(motd/banner "hi" :owner "")')
    first, _ = compile_error(tmp_path, spec, crate_path=motd)
    assert first == f'spec.pallet:{where(spec, chr(34) * 2)}: motd/banner: :owner is a user name, not ""'


def test_check_option_through_another_crate_function_is_located_at_the_spec_s_call(tmp_path, motd):
    # site passes :mode on to banner: the error is at the call the spec made, with a note
    # naming the value in the crate's call of banner
    spec = motd_spec('(motd/site "example.org" :mode 600)')
    first, err = compile_error(tmp_path, spec, crate_path=motd)
    assert first == (f"spec.pallet:{where(spec, '(motd/site')}: motd/banner: :mode is a mode "
                     'such as "644", not 600')
    assert f"  in motd/site, at {motd / 'motd.pallet'}:{where(MOTD, 'mode))', 2)}" in err


def test_an_os_a_user_crate_cannot_serve_is_located_at_the_call(tmp_path, motd):
    spec = motd_spec('(motd/banner "hi")')
    first, err = compile_error(tmp_path, spec, os_name="windows", crate_path=motd)
    assert first == f"spec.pallet:{where(spec, '(motd/banner')}: motd: Windows has no /etc/motd"
    assert f"  in motd/banner, at {motd / 'motd.pallet'}:{where(MOTD, '(fail')}" in err


def test_a_misspelt_crate_is_located_with_a_suggestion(tmp_path, motd):
    spec = motd_spec('(mtod/banner "hi")')
    first, _ = compile_error(tmp_path, spec, crate_path=motd)
    assert first.startswith(f"spec.pallet:{where(spec, 'mtod/banner')}: no crate or file named "
                            "'mtod' (looked in ")
    assert first.endswith("; did you mean 'motd'?")
