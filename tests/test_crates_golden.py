"""Golden bundles of the bundled crates, per OS: a small spec that uses a crate as a user
would, compiled for every OS of the matrix, every file of every bundle side by side in one text
file per (case, OS): tests/golden/crates/CASE@OS.golden. Every bash and sh script in them is
shellcheck-clean and every PowerShell script parses. An OS the crate refuses gives a golden file
holding the located compile error instead (and no bundle). `make golden`
(PALLET_UPDATE_GOLDEN=1) rewrites them; review the diff.

To add a crate, add a Case to CASES (keep a crate's cases together, in the block of the crates
they belong with): its spec, and the OSes it refuses.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from pallet import checks
from pallet.compiler.bundle import build_bundles
from pallet.compiler.model import NodeFacts
from pallet.compiler.project import load_project
from pallet.commands._spec import local_file_reader
from pallet.errors import PalletError
from pallet.stevedore import target_for

from golden import bundles_text

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "crates"
UPDATE = os.environ.get("PALLET_UPDATE_GOLDEN") == "1"

# The OS matrix: one of each family Pallet serves.
OSES = ("debian-12", "ubuntu-22.04", "rocky-9", "fedora-40", "amzn-2023", "alpine-3.20", "arch",
        "opensuse-15", "windows")
LINUX = tuple(o for o in OSES if o != "windows")


@dataclass(frozen=True)
class Case:
    name: str                           # the golden files are NAME@OS.golden
    spec: str                           # a spec file using the crate
    refused: tuple[str, ...] = ()       # OSes the crate refuses with a located error
    oses: tuple[str, ...] = OSES
    # (name, group, private ip) of the nodes to compile for (for relationships such as
    # nodes-in-group); without them, one node per group, named after it.
    nodes: tuple[tuple[str, str, str], ...] = ()

    @property
    def spec_name(self) -> str:
        return f"tests/golden/crates/{self.name}.pallet"


# ---- admin-user, automated-admin-user, sudoers, ssh-key, etc-hosts, environment, cron,
# ---- sysctl, limits, app-deploy ---------------------------------------------------------------

SUDOERS = '''\
(def app
  (group-spec "app"
    :extends [(sudoers/server :files {"ops" {:rules {"%ops" {:commands ["ALL"]}}}})]
    :phases {:configure
             (phase-fn
               (sudoers/sudoers "deploy"
                 :aliases {:cmnd {"APP" ["/usr/bin/systemctl restart app"
                                         "/usr/bin/journalctl -u app"]}}
                 :defaults {"use_pty" true "lecture" false "secure_path" "/usr/sbin:/usr/bin"}
                 :user-defaults {"deploy" {"requiretty" false}}
                 :rules {"deploy" [{:run-as "app" :nopasswd true :commands ["APP"]}
                                   {:commands ["/usr/bin/id -u"]}]}))}))
'''

ADMIN_USER = '''\
(def admins
  (group-spec "admins"
    :extends [(admin-user/server
                :users {"alice" {:public-keys ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAlice alice@laptop"]
                                 :groups ["adm"] :comment "Alice A"}})]
    :phases {:configure
             (phase-fn
               (admin-user/admin-user "ci" :public-key-files ["keys/ci.pub"]))}))
'''

AUTOMATED_ADMIN_USER = '''\
(def nodes
  (group-spec "nodes"
    :extends [(automated-admin-user/server
                :user "pallet"
                :public-keys ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPallet pallet@ci"])]))
'''

SSH_KEY = '''\
(def deploy-key
  "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
-----END OPENSSH PRIVATE KEY-----
")

(def app
  (group-spec "app"
    :phases {:configure
             (phase-fn
               (user "deploy" :create-home true)
               (ssh-key/install-key "deploy" "id_deploy" deploy-key
                                    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDeploy deploy@ci")
               (ssh-key/authorize-key "deploy" "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOps ops@laptop"))}))
'''

ETC_HOSTS = '''\
(def db (group-spec "db" :roles #{:database}))

(def web
  (group-spec "web"
    :extends [(etc-hosts/server :groups [:web] :roles [:database] :domain "internal"
                                :entries {"10.0.9.9" ["backup" "backup.internal"]})]))
'''

ENVIRONMENT = '''\
(def app
  (group-spec "app"
    :extends [(environment/server :variables {"APP_ENV" "production" "GREETING" "hello world"})]
    :phases {:configure
             (phase-fn
               (environment/environment {"JAVA_HOME" "/usr/lib/jvm/default"} :marker "java"))}))
'''

CRON = '''\
(def app
  (group-spec "app"
    :extends [(cron/server :jobs {"backup" {:schedule "30 2 * * *"
                                            :command "/usr/local/bin/backup --date=$(date +%F)"
                                            :environment {"MAILTO" ""}}})]
    :phases {:configure
             (phase-fn
               (cron/job "report" :schedule "@hourly" :user "app" :command "/srv/app/report"))}))
'''

SYSCTL = '''\
(def router
  (group-spec "router"
    :extends [(sysctl/server :files {"60-forwarding" {"net.ipv4.ip_forward" 1}})]
    :phases {:configure
             (phase-fn
               (sysctl/sysctl "70-ports" {"net.ipv4.ip_local_port_range" [32768 60999]}))}))
'''

LIMITS = '''\
(def app
  (group-spec "app"
    :extends [(limits/server :files {"app" {"app" {:nofile 65536 :nproc {:soft 4096 :hard 8192}}}})]
    :phases {:configure (phase-fn (limits/limits "core" {"*" {:core 0}}))}))
'''

APP_DEPLOY = '''\
(def web
  (group-spec "web"
    :extends [(app-deploy/server
                :apps {"shop" {:version "1.4.2"
                               :archive "https://example.org/shop-1.4.2.tar.gz"
                               :sha256 "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
                               :strip-components 1 :owner "www-data" :service "shop"}})]
    :phases {:deploy
             (phase-fn
               (app-deploy/deploy "site" :git "https://example.org/site.git" :ref "v7" :keep 3
                                  :restart "systemctl reload nginx"))}))
'''

CASES: list[Case] = [
    Case("admin-user", ADMIN_USER),
    Case("automated-admin-user", AUTOMATED_ADMIN_USER),
    Case("app-deploy", APP_DEPLOY, refused=("windows",)),
    Case("cron", CRON, refused=("windows",)),
    Case("environment", ENVIRONMENT),
    Case("etc-hosts", ETC_HOSTS, refused=("windows",),
         nodes=(("db-1", "db", "10.0.1.5"), ("web-1", "web", "10.0.1.7"), ("web-2", "web", "10.0.1.8"))),
    Case("limits", LIMITS, refused=("alpine-3.20", "windows")),
    Case("ssh-key", SSH_KEY, refused=("windows",)),
    Case("sudoers", SUDOERS, refused=("windows",)),
    Case("sysctl", SYSCTL, refused=("windows",)),
]

# ---- service, firewall, package-repo, nginx, postgresql, java, hadoop ------------------------

SERVICE = '''\
(def web
  (group-spec "web"
    :extends [(service/server :name "web"
                              :command ["/usr/bin/python3" "-m" "http.server" "8000"]
                              :user "www-data" :group "www-data" :directory "/srv/web"
                              :environment {"GREETING" "it's 100% $HOME" :LANG "C.UTF-8"})]
    :phases {:configure
             (phase-fn
               (service/supervise "worker" :command "/usr/local/bin/worker --queue jobs"
                                  :description "the job worker" :enable false))}))
'''

SERVICE_WINDOWS = r'''(def web
  (group-spec "web"
    :extends [(service/server :name "web"
                              :command ["C:\\Program Files\\Web\\web.exe" "--root" "C:\\srv\\web\\"]
                              :user "NT AUTHORITY\\LocalService"
                              :environment {"PORT" "8000"})]))
'''

FIREWALL = '''\
(def web
  (group-spec "web"
    :extends [(firewall/server :allow [80 443 {:port "60000-61000" :proto :udp}
                                       {:port 5432 :source ["10.0.0.0/8" "fd00::/8"]}]
                               :policy :reject)]))
'''

PACKAGE_REPO = '''\
(def app
  (group-spec "app"
    :extends [(package-repo/server
                :repositories {"vendor" {:url "https://packages.example.org/linux"
                                         :key-file "keys/repo.asc"
                                         :key-id "0123456789ABCDEF0123456789ABCDEF01234567"
                                         :key-name "vendor.rsa.pub"}})]
    :phases {:install
             (phase-fn
               (package-repo/repository "tools" :url "https://tools.example.org/repo"
                                        :release "stable" :components ["main" "extra"]
                                        :architectures ["amd64"] :source true
                                        :description "Example tools"
                                        :key-url "https://tools.example.org/key.gpg"
                                        :key-sha256 "4f6e3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d"
                                        :key-id "FEDCBA9876543210FEDCBA9876543210FEDCBA98")
               (package "example-tool"))}))
'''

NGINX = '''\
(def web
  (group-spec "web"
    :extends [(nginx/server
                :sites {"www" {:server-name ["example.com" "www.example.com"] :listen 80
                               :root "/srv/www"}
                        "app" {:listen [8080 "[::]:8080"]
                               :proxy-pass ["127.0.0.1:8000" "unix:/run/app.sock"]}
                        "both" {:listen "127.0.0.1:8081" :root "/srv/static"
                                :proxy-pass "127.0.0.1:9000" :default-server true}})]))
'''

POSTGRESQL = '''\
(def db
  (group-spec "db"
    :extends [(postgresql/server
                :port 5433 :listen-addresses ["localhost" "10.0.0.5"]
                :config {"max_connections" 50 :shared-buffers "256MB" "ssl" false}
                :hba [{:database "app" :user "app" :address "10.0.0.0/8"}]
                :roles {"app" {:password "it's secret" :createdb true}}
                :databases {"app" {:owner "app"}})]))
'''

JAVA = '''\
(def app
  (group-spec "app"
    :extends [(java/server :kind :jre)]
    :phases {:configure (phase-fn (java/java :jdk :version 21))}))
'''

HADOOP = '''\
(def hadoop
  (group-spec "hadoop"
    :roles #{:namenode :jobtracker}
    :extends [(java/server :kind :jre :version 21)
              (hadoop/server
                ;; a mirror of the release: the checksum the crate knows for 3.5.0 applies
                :settings {:url "https://mirror.example.org/hadoop/hadoop-3.5.0.tar.gz"
                           :core-site {"fs.defaultFS" "hdfs://master:8020"}
                           :hdfs-site {"dfs.replication" 2}
                           :yarn-site {"yarn.resourcemanager.hostname" "master"}
                           :env {"HADOOP_HEAPSIZE_MAX" "1g"}})]))
'''

CASES += [
    Case("service", SERVICE, oses=LINUX),
    Case("service-windows", SERVICE_WINDOWS, oses=("windows",)),
    Case("firewall", FIREWALL, refused=("windows",)),
    Case("firewall-iptables", FIREWALL, oses=("centos-7", "amzn-2")),
    Case("package-repo", PACKAGE_REPO, refused=("windows",)),
    Case("package-repo-yum", PACKAGE_REPO, oses=("centos-7",)),
    Case("nginx", NGINX, refused=("windows",)),
    Case("postgresql", POSTGRESQL, refused=("windows",)),
    Case("java", JAVA, refused=("windows",)),
    Case("hadoop", HADOOP, refused=("windows",)),
]

# ---- (the next crates' cases go here) --------------------------------------------------------


def render(case: Case, os_spec: str) -> tuple[str, list[tuple[str, str]]]:
    """The golden text of every bundle (or of the error), and the (name, text) of each script."""
    head = f";; pallet compile {case.spec_name} --os {os_spec}\n"
    cwd = os.getcwd()
    os.chdir(ROOT)  # source locations relative to the repository
    try:
        project = load_project(case.spec_name, text=case.spec)
        if case.nodes:
            target = target_for(os_spec)
            nodes = tuple(NodeFacts(n, g, target.os_family or "", target.os_version,
                                    host=ip, private_ip=ip) for n, g, ip in case.nodes)
            targets = project.targets(nodes)
        else:
            targets = project.targets(None, os_spec)
        bundles = build_bundles(project.plan(targets), targets, local_file_reader(case.spec_name))
    except PalletError as exc:
        return head + "=== error\n" + exc.format() + "\n", []
    finally:
        os.chdir(cwd)
    text, scripts = bundles_text(bundles, case.spec_name)
    return head + "=== spec\n" + case.spec + text, scripts


PAIRS = [(case, os_spec) for case in CASES for os_spec in case.oses]


@pytest.mark.parametrize("case,os_spec", PAIRS, ids=[f"{c.name}@{o}" for c, o in PAIRS])
def test_crate_golden(case: Case, os_spec: str):
    text, scripts = render(case, os_spec)
    path = GOLDEN / f"{case.name}@{os_spec}.golden"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
    assert path.exists(), f"no golden file {path}: run make golden"
    assert text == path.read_bytes().decode(), f"{path} differs from the compiler's output (make golden)"
    refused = os_spec in case.refused
    assert ("=== error\n" in text) == refused, (
        f"{case.name} on {os_spec}: " + ("expected a located error" if refused else text))
    if refused:
        family = target_for(os_spec).os_family
        first = text.split("=== error\n", 1)[1].splitlines()[0]
        # file:line:col: message, naming the OS it cannot serve
        assert first.split(":")[2].isdigit() and f"not available for {family}" in first, first
    for name, script in scripts:
        findings = checks.check_script(name, script)
        assert not findings, checks.format_findings(findings, name)


def test_every_golden_file_has_a_case():
    names = {f"{c.name}@{o}.golden" for c, o in PAIRS}
    stale = sorted(p.name for p in GOLDEN.glob("*.golden") if p.name not in names)
    assert not stale, f"golden files without a case (remove them): {stale}"
