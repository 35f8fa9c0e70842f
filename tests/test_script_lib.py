"""pallet.script.lib: every function Pallet's library had either compiles, for each kind of
target, to a script that passes shellcheck, or is a located error naming it as a Pallet name
not yet supported."""
from __future__ import annotations

import pytest

from pallet.checks import shellcheck
from pallet.errors import PalletError
from pallet.stevedore import compile_script_text, target_for
from pallet.stevedore.script_lib import FUNCTIONS, PALLET_NAMES

# One call of each function, as a Pallet script would write it.
SAMPLES = {
    "file": '(println (lib/file "/etc" "app" "a b.conf"))',
    "user-home": '(println (lib/user-home "deploy"))',
    "current-user": "(println (lib/current-user))",
    "tmp-dir": "(println (lib/tmp-dir))",
    "make-temp-file": '(println (lib/make-temp-file "x" :tmpdir "/var/tmp"))',
    "make-temp-dir": '(println (lib/make-temp-dir "x"))',
    "hostname": "(println (lib/hostname :fqdn true))",
    "exit": "(lib/exit 3)",
    "export": '(lib/export "APP_HOME" "/srv/app")',
    "source": '(lib/source "/etc/profile")',
    "alias": '(lib/alias "ll" "ls -l")',
    "mv": '(lib/mv "/a" "/b" :force true :backup :numbered)',
    "cp": '(lib/cp "/a" "/b" :preserve true)',
    "ln": '(lib/ln "/a" "/b" :symbolic true)',
    "chown": '(lib/chown "app:app" "/srv/app" :recursive true)',
    "chgrp": '(lib/chgrp "app" "/srv/app")',
    "chmod": '(lib/chmod "0644" "/srv/app/x")',
    "diff": '(lib/diff "/a" "/b" :unified true)',
    "tail": '(lib/tail "/var/log/syslog" :max-lines 5)',
    "cut": '(lib/cut "/etc/passwd" :fields 1 :delimiter ":")',
    "ls": '(lib/ls "/tmp" :sort-by-time true)',
    "heredoc": '(lib/heredoc "/etc/motd" "hello\\n" {:literal true})',
    "sed-file": '(lib/sed-file "/etc/app.conf" {"a" "b"} {:restriction "/^x/"})',
    "download-file": '(lib/download-file "https://example.com/a" "/tmp/a" :insecure true)',
    "create-user": '(lib/create-user "app" {:system true :shell "/bin/false"})',
    "modify-user": '(lib/modify-user "app" {:groups ["adm" "www-data"] :append true})',
    "remove-user": '(lib/remove-user "app" {:remove true})',
    "create-group": '(lib/create-group "app" {:system true})',
    "modify-group": '(lib/modify-group "app" {:new-name "app2"})',
    "remove-group": '(lib/remove-group "app" {})',
    "install-package": '(lib/install-package "curl")',
    "upgrade-package": '(lib/upgrade-package "curl")',
    "remove-package": '(lib/remove-package "curl")',
    "purge-package": '(lib/purge-package "curl")',
    "debconf-set-selections": '(lib/debconf-set-selections "tzdata tzdata/Areas select Etc")',
    "configure-service": '(lib/configure-service "nginx" :enable {})',
    "set-flag": '(lib/set-flag "restart")',
    "set-flag-value": '(lib/set-flag-value "port" 80)',
    "selinux-file-type": '(lib/selinux-file-type "/srv" "httpd_sys_content_t")',
    "selinux-bool": '(lib/selinux-bool "httpd_can_network_connect" "on" :persist true)',
    "env": '(lib/env :vars {:A 1})',
    "bash": "(lib/bash :login true)",
}
ONE_PATH = {"which", "has-command?", "canonical-path", "rm", "touch", "mkdir", "rmdir",
            "basename", "dirname", "path-owner", "path-group", "path-mode",
            "user-default-group", "cat", "md5sum", "user-exists?", "group-exists?",
            "lock-user", "unlock-user"}
TARGETS = ["debian-12", "ubuntu-22.04", "rocky-9", "alpine-3.20"]


def sample(name: str) -> str:
    if name in SAMPLES:
        return SAMPLES[name]
    if name in ONE_PATH:
        return f'(lib/{name} "/srv/app")'
    if FUNCTIONS[name].value:
        return f"(println (lib/{name}))"
    return f"(lib/{name})"


@pytest.mark.parametrize("os", TARGETS)
def test_every_function_compiles_and_passes_shellcheck(os):
    """Each function compiles alone; all of them in one script pass shellcheck (one run per
    target keeps this fast)."""
    target = target_for(os)
    shell = "sh" if os.startswith("alpine") else "bash"
    names = sorted(FUNCTIONS, key=lambda n: n == "exit")  # exit last: nothing after it
    for name in names:
        if name in ("etc-default", "pkg-etc-default") and os.startswith("alpine"):
            with pytest.raises(PalletError, match="has no variant"):
                compile_script_text(sample(name), "t.pallet", shell, target)
        else:
            compile_script_text(sample(name), "t.pallet", shell, target)
    usable = [n for n in names if not (n.endswith("etc-default") and os.startswith("alpine"))]
    text = compile_script_text("\n".join(sample(n) for n in usable), "t.pallet", shell, target)
    findings = [f for f in shellcheck(text, shell) if f.code not in ("SC2034", "SC1091")]
    assert not findings, (text, findings)  # unused variables, files not followed: fine


@pytest.mark.parametrize("name", sorted(PALLET_NAMES - set(FUNCTIONS)))
def test_the_other_pallet_names_are_located_errors(name):
    with pytest.raises(PalletError) as info:
        compile_script_text(f'\n  (lib/{name} "x")', "t.pallet", "bash", target_for("debian-12"))
    assert info.value.message == f"pallet.script.lib/{name} is a Pallet name not yet supported here"
    assert (info.value.span.line, info.value.span.column) == (2, 4)


def test_lib_alias_is_only_pallet_names():
    """`lib/` of a name Pallet's library did not have is an ordinary command (a relative
    path), and the full namespace of an unknown name is an error."""
    text = compile_script_text("(lib/run.sh -v)", "t.pallet")
    assert text.endswith("lib/run.sh -v\n")
    with pytest.raises(PalletError, match="pallet.script.lib has no function 'run'"):
        compile_script_text("(pallet.script.lib/run)", "t.pallet")


def test_unquoted_head_and_full_namespace():
    target = target_for("debian-12")
    a = compile_script_text('(~lib/rm "/x" :force true)', "t.pallet", "bash", target)
    b = compile_script_text('(pallet.script.lib/rm "/x" :force true)', "t.pallet", "bash", target)
    assert a == b and a.endswith("rm -f /x\n")


def test_packages_follow_the_packager():
    outputs = {os: compile_script_text('(lib/install-package "curl")', "t.pallet",
                                       "sh" if os.startswith("alpine") else "bash",
                                       target_for(os)).splitlines()[-1]
               for os in TARGETS}
    assert outputs == {"debian-12": "apt-get -qq -y install curl",
                       "ubuntu-22.04": "apt-get -qq -y install curl",
                       "rocky-9": "dnf install -y -q curl",
                       "alpine-3.20": "apk add -q curl"}


def test_empty_values_add_no_word():
    text = compile_script_text("(sed -i (lib/sed-ext) -e s/a/b/ f)", "t.pallet", "bash",
                               target_for("debian-12"))
    assert text.endswith("sed -i -e s/a/b/ f\n")
