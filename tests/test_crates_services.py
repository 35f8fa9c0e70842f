"""The crates service, firewall, package-repo, nginx, postgresql (and java's and hadoop's
servers): bad input is a located compile error, and the files they render (init scripts, OpenRC
scripts, ufw scripts, hadoop-env.sh) are shellcheck-clean and read back exactly the values they
were given. The bundles themselves are in tests/test_crates_golden.py; the nodes' side in
tests/conformance/."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pallet import checks
from pallet.compiler.bundle import build_bundles
from pallet.compiler.project import load_project

PALLET = Path(sys.executable).parent / "pallet"


def where(text: str, needle: str) -> str:
    index = text.index(needle)
    return f"{text.count(chr(10), 0, index) + 1}:{index - (text.rfind(chr(10), 0, index) + 1) + 1}"


def compile_error(tmp_path: Path, spec: str, os_name: str = "debian-12") -> str:
    (tmp_path / "spec.pallet").write_text(spec)
    proc = subprocess.run([str(PALLET), "compile", "spec.pallet", "--os", os_name, "-o", "out"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc.stderr.splitlines()[0]


def in_phase(call: str) -> str:
    return f'(def app\n  (group-spec "app"\n    :phases {{:configure (phase-fn {call})}}))\n'


def extending(call: str) -> str:
    return f'(def app\n  (group-spec "app"\n    :extends [{call}]))\n'


# Each case: the spec, where the error is (a needle of the spec), and the message.
ERRORS = {
    "service-relative-program": (
        in_phase('(service/supervise "web" :command "python3 -m http.server")'),
        '(service/supervise', 'service: the program of :command must be an '
        'absolute path, not "python3"'),
    "service-no-command": (
        in_phase('(service/supervise "web" :user "www-data")'), '(service/supervise',
        'service: :command is required: a vector such as ["/usr/bin/python3" '
        '"-m" "http.server"] or a string'),
    "service-command-type": (
        in_phase('(service/supervise "web" :command 42)'), '42',
        'service/supervise: :command is a vector of words such as ["/usr/bin/python3" "-m" '
        '"http.server"], or a string, not 42'),
    "service-environment-line-break": (
        in_phase('(service/supervise "web" :command ["/bin/app"] :environment {"A" "x\\ny"})'),
        '(service/supervise',
        'service: the value of "A" cannot hold a line break or a control '
        'character: "x\\ny"'),
    "service-unknown-server-option": (
        extending('(service/server :name "web" :command ["/bin/app"] :usr "app")'),
        '(service/server', "service/server: unknown option :usr; did you mean ':user'?"),
    "service-supervisor-of-another-os": (
        in_phase('(service/supervise "web" :command ["/bin/app"] :supervisor :openrc)'),
        '(service/supervise', 'service: supervisor :openrc is not available '
        'for debian (it has :systemd :sysvinit)'),
    "firewall-port": (
        in_phase('(firewall/firewall :allow [{:port 70000}])'), '(firewall/firewall',
        'firewall: a :port is a number from 1 to 65535 or a range such as '
        '"8000-8100", not 70000'),
    "firewall-source": (
        in_phase('(firewall/firewall :allow [{:port 22 :source "anywhere"}])'), '(firewall/firewall',
        'firewall: a :source is an IPv4 or IPv6 address or network such as '
        '"10.0.0.0/8", not "anywhere"'),
    "firewall-policy": (
        extending('(firewall/server :policy :block)'), ':block',
        'firewall/server: :policy is :drop, :reject or :accept, not :block'),
    "firewall-backend-of-another-os": (
        in_phase('(firewall/firewall :backend :ufw)'), '(firewall/firewall',
        'firewall: the backend :ufw is not available for debian (it has '
        ':nftables :iptables)'),
    "package-repo-no-url": (
        in_phase('(package-repo/repository "x" :key "k")'), '(package-repo/repository',
        'package-repo: x needs :url'),
    "package-repo-key-url-without-sha256": (
        in_phase('(package-repo/repository "x" :url "https://r.example.org" :key-url "https://k")'),
        '(package-repo/repository', 'package-repo: :key-url needs '
        ":key-sha256, the 64 hex digits of the key file's sha256"),
    "package-repo-two-keys": (
        in_phase('(package-repo/repository "x" :url "https://r" :key "k" :key-file "k.asc")'),
        '(package-repo/repository',
        'package-repo: give one of :key :key-file :key-url, not :key :key-file'),
    "package-repo-component-with-space": (
        in_phase('(package-repo/repository "x" :url "https://r" :components ["main contrib"])'),
        '(package-repo/repository', 'package-repo: each of :components '
        'must be one word (no space, bracket, # or line break), not "main contrib"'),
    "nginx-site-without-content": (
        in_phase('(nginx/site "www" :listen 80)'), '(nginx/site',
        'nginx: site www needs :root (files to serve) or :proxy-pass (upstreams), or both'),
    "nginx-root-with-a-variable": (
        in_phase('(nginx/site "www" :root "/srv/$host")'), '(nginx/site',
        'nginx: :root "/srv/$host" is not one nginx would read as it is'),
    "nginx-server-site-option": (
        extending('(nginx/server :sites {"shop" {:server-names ["x"] :root "/srv"}})'), '(nginx/server',
        "nginx: site shop has no option :server-names; a site's options are :server-name :listen "
        ":root :index :proxy-pass :default-server"),
    "package-repo-server-option": (
        extending('(package-repo/server :repositories {"x" {:url "https://r" :keyfile "k.asc"}})'),
        '(package-repo/server', "package-repo: repository x has no option :keyfile; its options are "
        ":url :release :components :architectures :source :description :key :key-file :key-url "
        ":key-sha256 :key-name :key-id"),
    "nginx-listen-type": (
        in_phase('(nginx/site "www" :root "/srv" :listen 80.5)'), '80.5',
        'nginx/site: :listen is a port, "address:port", or a vector of them, not 80.5'),
    "postgresql-port-type": (
        extending('(postgresql/server :port "5432")'), '"5432"',
        'postgresql/server: :port is a port number such as 5432, not "5432"'),
    "postgresql-role-option": (
        in_phase('(postgresql/role "app" :pasword "x")'), '(postgresql/role',
        "postgresql/role: unknown option :pasword; did you mean ':password'?"),
    "postgresql-hba-address": (
        in_phase('(postgresql/configure :hba [{:database "app" :user "app"}])'), '(postgresql/configure',
        'postgresql: a pg_hba.conf host entry needs :address, such as '
        '"10.0.0.0/8"'),
    "postgresql-unknown-release": (
        in_phase('(postgresql/install)'), '(postgresql/install',
        'postgresql: give :version, the major version: the one debian-99 '
        'ships is not known'),
    "java-server-kind": (
        extending('(java/server :kind :server)'), ':server',
        'java/server: :kind is :jdk or :jre, not :server'),
    "hadoop-unknown-setting": (
        in_phase('(hadoop/install :apache :settings {:sha256 "x" :core-sites {}})'), '(hadoop/install',
        "hadoop: no setting :core-sites; the settings are :version :home :user :url :sha256 "
        ":sha512 :core-site :hdfs-site :mapred-site :yarn-site :env :packages"),
    "hadoop-server-daemons": (
        extending('(hadoop/server :settings {:sha256 "x"} :daemons :datanode)'), ':datanode)',
        'hadoop/server: :daemons is a vector of daemons such as [:datanode :nodemanager], not :datanode'),
}

OSES = {"postgresql-unknown-release": "debian-99"}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_bad_input_is_located(tmp_path, case):
    spec, needle, message = ERRORS[case]
    first = compile_error(tmp_path, spec, OSES.get(case, "debian-12"))
    assert first == f"spec.pallet:{where(spec, needle)}: {message}"


@pytest.mark.parametrize("crate,call", [
    ("service", '(service/server :name "web" :command ["/bin/app"] :directory "/srv")'),
    ("firewall", "(firewall/server :allow [80])"),
    ("package-repo", '(package-repo/server :repositories {"x" {:url "https://r"}})'),
    ("nginx", '(nginx/server :sites {"www" {:root "/srv/www"}})'),
    ("postgresql", "(postgresql/server)"),
    ("java", "(java/server)"),
    ("hadoop", '(hadoop/server)'),
])
def test_windows_is_refused_with_the_os_named(tmp_path, crate, call):
    first = compile_error(tmp_path, extending(call), "windows")
    assert first.startswith("<crate ") and "not available for windows" in first, first


# ---- the files the crates render ------------------------------------------------------------

TRICKY = "it's 100% $HOME \"quoted\" `ticks` \\back"


def bundle_files(spec: str, os_name: str, tmp_path: Path) -> dict[str, bytes]:
    """Every file the bundles of the spec carry, by the path its remote-file gives it."""
    (tmp_path / "spec.pallet").write_text(spec)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        project = load_project("spec.pallet")
        nodes = project.targets(None, os_name)
        bundles = build_bundles(project.plan(nodes), nodes, lambda name: b"")
    finally:
        os.chdir(cwd)
    out: dict[str, bytes] = {}
    for b in bundles:
        files = dict(b.files)
        for line in b.script.splitlines():
            words = line.split()
            if line.startswith("pallet_remote_file ") and f"files/{words[2]}" in files:
                out[words[1]] = files[f"files/{words[2]}"]   # not a download
    return out


SERVICE = extending('(service/server :name "web" :command ["/usr/bin/python3" "-m" "http.server" '
                    '"%s"] :user "www-data" :environment {"GREETING" "%s"})'
                    % ("a b", TRICKY.replace("\\", "\\\\").replace('"', '\\"')))


@pytest.mark.parametrize("os_name,path", [("debian-12", "/etc/init.d/web"),
                                          ("rocky-9", "/etc/init.d/web"),
                                          ("alpine-3.20", "/etc/init.d/web")])
def test_service_scripts_are_clean_and_quote_exactly(tmp_path, os_name, path):
    text = bundle_files(SERVICE, os_name, tmp_path)[path].decode()
    assert not checks.shellcheck(text, "sh"), checks.format_findings(checks.shellcheck(text, "sh"), path)
    exports = "\n".join(line for line in text.splitlines() if line.startswith("export "))
    run = subprocess.run(["dash", "-c", exports + '\nprintf %s "$GREETING"'], capture_output=True,
                         text=True)
    assert run.stdout == TRICKY
    if os_name == "alpine-3.20":   # openrc-run evaluates command_args once more
        args = next(line for line in text.splitlines() if line.startswith("command_args="))
        run = subprocess.run(["dash", "-c", args + '\neval "set -- $command_args"; printf "[%s]" "$@"'],
                             capture_output=True, text=True)
        assert run.stdout == "[-m][http.server][a b]"


def test_service_systemd_unit_escapes_specifiers_and_variables(tmp_path):
    unit = bundle_files(SERVICE, "debian-12", tmp_path)["/etc/systemd/system/web.service"].decode()
    assert 'ExecStart=/usr/bin/python3 -m http.server "a b"\n' in unit
    assert ('Environment="GREETING=it\'s 100%% $HOME \\"quoted\\" `ticks` \\\\back"\n') in unit
    assert "User=www-data\n" in unit


def test_ufw_script_and_hadoop_env_are_clean(tmp_path):
    ufw = bundle_files(extending('(firewall/server :allow [80 {:port "8000-8100" :proto :udp}])'),
                       "ubuntu-22.04", tmp_path)["/etc/ufw/pallet-firewall.sh"].decode()
    assert not checks.shellcheck(ufw, "sh")
    assert "ufw allow proto udp from any to any port 8000:8100\n" in ufw
    env = bundle_files(extending('(hadoop/server :settings {:env {"OPTS" "%s"}})'
                                 % TRICKY.replace("\\", "\\\\").replace('"', '\\"')),
                       "debian-12", tmp_path)["/opt/hadoop/current/etc/hadoop/hadoop-env.sh"].decode()
    assert not checks.shellcheck(env, "bash")
    run = subprocess.run(["bash", "-c", env + '\nprintf %s "$OPTS"'], capture_output=True, text=True)
    assert run.stdout == TRICKY


def test_nginx_and_postgresql_render_data_as_their_formats_read_it(tmp_path):
    site = bundle_files(extending('(nginx/server :sites {"app" {:listen [8080 "[::]:8080"] '
                                  ':proxy-pass ["127.0.0.1:8000" "unix:/run/app.sock"]}})'),
                        "rocky-9", tmp_path)["/etc/nginx/conf.d/app.conf"].decode()
    assert "upstream app_upstream {\n    server 127.0.0.1:8000;\n    server unix:/run/app.sock;\n}" in site
    assert "    listen 8080;\n    listen [::]:8080;\n" in site
    files = bundle_files(extending('(postgresql/server :config {"search_path" "it\'s"} '
                                   ':hba [{:database "app" :user "app" :address "10.0.0.0/8"}])'),
                         "debian-12", tmp_path)
    assert "search_path = 'it''s'\n" in files["/etc/postgresql/15/main/pallet.conf"].decode()
    hba = files["/etc/postgresql/15/main/pg_hba.conf"].decode().splitlines()
    assert hba[2].split() == ["local", "all", "postgres", "peer"]
    assert hba[3].split() == ["host", "app", "app", "10.0.0.0/8", "scram-sha-256"]
