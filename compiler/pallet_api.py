"""Pallet's namespaces as this project provides them, for code written against Pallet 0.8:
`(ns my.crate (:require [pallet.actions :refer [package]] [pallet.crate :as crate]))`.

Each namespace of the table maps Pallet's names to this project's values: builtins and special
forms of the core environment (under the same name, or under a qualified one such as
`pallet.utils/apply-map` for names that are not bare everywhere), and it lists every public
name Pallet's namespace had, so that a name this project lacks is a located error that names
it as Pallet's, never an unknown symbol or a silently different script. Namespaces that are
crates (`pallet.crate-install`, `pallet.crate.environment`, `pallet.crate.sudoers`...) are
`.pallet` files among the bundled crates, loaded like any crate; Pallet namespaces that are
neither are reported as not supported yet.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, eq=False)
class SpecialRef:
    """A special form reached through a namespace: `(api/plan-fn ...)`, or a name referred
    from one (`(:require [pallet.crate :refer [defplan]])`)."""

    name: str               # the key of the special form in SPECIAL_FORMS
    qualified: str          # as Pallet named it, for messages

    def describe(self) -> str:
        return f"the special form {self.qualified}"


@dataclass(frozen=True)
class BuiltinNamespace:
    name: str
    names: dict[str, str]            # local name -> its key in the core environment
    pallet: frozenset[str]           # every public name Pallet's namespace had

    def qualified(self, local: str) -> str:
        return f"{self.name}/{local}"


def _same(text: str) -> dict[str, str]:
    return {n: n for n in text.split()}


def _under(prefix: str, text: str) -> dict[str, str]:
    return {n: f"{prefix}/{n}" for n in text.split()}


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# ---- what Pallet had (0.8) ------------------------------------------------------------------

_ACTIONS = _names("""
exec exec-script* exec-script exec-checked-script as-action plan-flag-kw plan-when plan-when-not
with-action-values return-value-expr assoc-settings assoc-in-settings update-settings file
symbolic-link fifo sed directory directories check-remote-file-arguments
check-remote-directory-arguments setup-node transfer-file transfer-file-to-local
delete-local-path set-install-new-files set-force-overwrite remote-file with-remote-file
remote-file-content remote-directory wait-for-file package packages package-manager
package-source-changed-flag package-source add-rpm install-deb debconf-set-selections
minimal-packages repository rsync rsync-to-local rsync-directory rsync-to-local-directory group
user service with-service-restart service-script loop-until retry-until one-node-filter
on-one-node log-script-output content-options version-options ownership-options all-options
""")
_API = _names("""
node-spec server-spec group-spec cluster-spec compute-service plan-fn extend-specs
expand-cluster-groups expand-group-spec-with-counts split-groups-and-targets group-node-maps
converge* converge lift* lift lift-nodes group-nodes make-user with-admin-user print-nodes
print-targets execute-with-image-credentials-metadata execute-on-unflagged-metadata
execute-and-flag-metadata
""")
_CRATE = _names("""
phase-context final-fn-sym? defplan def-plan-fn def-aggregate-plan-fn def-collect-plan-fn
defmulti-plan defmethod-plan session-peek-fn target target-node targets target-nodes target-id
target-name admin-user os-family os-version group-name targets-in-group nodes-in-group
groups-with-role targets-with-role nodes-with-role role->nodes-map packager admin-group
is-64bit? compute-service blobstore target-flag? target-flag-value get-settings
get-node-settings assoc-settings update-settings service-phases
""")
_UTILS = _names("""
pprint-lines quoted underscore as-string first-line apply-map resource-path load-resource
load-resource-url resource-properties slurp-as-byte-array find-var-with-require with-temp-file
tmpfile tmpdir with-temporary map-with-keys-as-symbols dissoc-keys dissoc-if-empty
maybe-update-in maybe-assoc map-seq pipe base64-md5 middleware file-for-url classpath-urls
classpath jar-file? classpath-jarfiles forward-to-script-lib fwd-to-configure compare-and-swap!
with-redef macro-compiler-exception make-user local-env log-multiline deep-merge obfuscate
total-order-merge count-by count-values
""")
_VERSION_DISPATCH = _names("""
hierarchy-vals dispatch-version defmulti-version defmethod-version defmulti-version-plan
defmethod-version-plan os-map os-map-lookup
""")
_VERSIONS = _names("""
read-version-number version-vector as-version-vector version-string as-version-string
version-less version-matches? version-spec-less
""")
_COMPUTE = _names("""
supported-providers instantiate-provider compute-service? os-hierarchy defmulti-os packager-map
packager-for-os base-distribution admin-group nodes destroy-nodes-in-group destroy-node
create-nodes images running? primary-ip private-ip hostname nodes-by-tag
""")
_ACTION = _names("""
action-options-key action-options get-action-options update-action-options
assoc-action-options with-action-options insert-action declare-action defaction
implement-action* implement-action implementation action-fn declare-delayed-crate-action
declare-aggregated-crate-action declare-collected-crate-action clj-action-fn clj-action
enter-scope leave-scope
""")
_NODE = _names("""
node? node-in-group? prefer-private-ip use-private-ip node-address tag tags tag! taggable?
node-map primary-ip private-ip hostname group-name os-family os-version running? id
ssh-port is-64bit? packager image-user compute-service hardware
""")
_STEVEDORE = _names("""
with-script-language script fragment operators unresolved do-script chain-commands
checked-commands do-script* chain-commands* checked-commands* chained-script checked-script
with-line-number splice-list splice-args resolve-script-fns quasiquote* quasiquote
statement-separator with-source-line-comments script-location-comment statement emit-do
emit-script arg-string map-to-arg-string option-args
""")
_SCRIPT = _names("with-script-context with-template dispatch script-fn* script-fn defscript "
                 "implement defimpl")
_LOGGING = _names("""
trace debug info warn error fatal tracef debugf infof warnf errorf fatalf log logf logp spy
spyf enabled? log-capture! log-uncapture! with-logs log-stream
""")
_SET = _names("union intersection difference select project rename-keys rename index "
              "map-invert join subset? superset?")

# ---- what this project gives them -------------------------------------------------------------

_ACTION_NAMES = _same("""
exec-script exec-checked-script plan-when plan-when-not assoc-settings update-settings file
symbolic-link sed directory remote-file package packages package-manager package-source group
user service
""") | _under("pallet.actions", "content-options version-options ownership-options all-options")
_SPEC_NAMES = _same("node-spec server-spec group-spec cluster-spec compute-service plan-fn "
                    "converge lift")
_CRATE_NAMES = _same("""
phase-context defplan defmulti-plan defmethod-plan target-node target-name os-family os-version
group-name nodes-in-group nodes-with-role get-settings get-node-settings assoc-settings
update-settings admin-user admin-group packager is-64bit?
""") | {"target-id": "target-name"}
_NODE_NAMES = {"primary-ip": "node-address", "private-ip": "node-ip", "hostname": "node-name",
               "node-address": "node-address"}

NAMESPACES: dict[str, BuiltinNamespace] = {}


def _ns(name: str, names: dict[str, str], pallet: frozenset[str] = frozenset()) -> None:
    NAMESPACES[name] = BuiltinNamespace(name, names, pallet | frozenset(names))


_ns("pallet.actions", _ACTION_NAMES, _ACTIONS)
_ns("pallet.api", _SPEC_NAMES, _API)
_ns("pallet.crate", _CRATE_NAMES, _CRATE)
_ns("pallet.utils", _under("pallet.utils", "apply-map deep-merge as-string underscore "
                           "dissoc-keys maybe-assoc first-line"), _UTILS)
_ns("pallet.version-dispatch", _same("defmulti-version defmethod-version defmulti-version-plan "
                                     "defmethod-version-plan")
    | _under("pallet.version-dispatch", "os-map os-map-lookup"), _VERSION_DISPATCH)
_ns("pallet.versions", _under("pallet.versions", " ".join(_VERSIONS)), _VERSIONS)
_ns("pallet.compute", {"os-hierarchy": "pallet.compute/os-hierarchy", "admin-group": "admin-group",
                       **_NODE_NAMES}, _COMPUTE)
_ns("pallet.action", _same("with-action-options"), _ACTION)
_ns("pallet.node", _NODE_NAMES | _same("group-name os-family os-version"), _NODE)
_ns("pallet.stevedore", _same("script fragment with-source-line-comments do-script "
                              "chain-commands checked-commands chained-script checked-script"),
    _STEVEDORE)
_ns("pallet.script", _same("defscript defimpl"), _SCRIPT)
_ns("clojure.tools.logging", _under("clojure.tools.logging", " ".join(_LOGGING - {
    "log-capture!", "log-uncapture!", "with-logs", "log-stream", "enabled?"})), _LOGGING)
_ns("clojure.set", _under("clojure.set", "union intersection difference subset? superset? "
                          "map-invert rename-keys"), _SET)
# Pallet before 0.8: pallet.core was what pallet.api became; phases were pallet.phase's.
_ns("pallet.core", _SPEC_NAMES | {"parallel-lift": "pallet.core/parallel-lift",
                                  "parallel-adjust-node-counts": "pallet.core/parallel-adjust-node-counts",
                                  "sequential-lift": "pallet.core/sequential-lift",
                                  "sequential-adjust-node-counts":
                                      "pallet.core/sequential-adjust-node-counts"},
    _API | _names("defnode make-node parallel-lift parallel-adjust-node-counts sequential-lift "
                  "sequential-adjust-node-counts"))
_ns("pallet.phase", {"phase-fn": "pallet.phase/phase-fn"},
    _names("phase-fn schedule-in-pre-phase schedule-in-post-phase post-phase-name "
           "pre-phase-name all-phases-for-phase subphase-for"))
_ns("pallet.extensions", {"def-phase-fn": "pallet.extensions/def-phase-fn",
                          "phase": "pallet.phase/phase-fn"},
    _names("def-phase-fn phase"))
for _old, _actions in {
        "directory": "directory", "file": "file symbolic-link sed", "remote-file": "remote-file",
        "package": "package packages package-manager package-source", "user": "user group",
        "service": "service", "exec-script": "exec-script exec-checked-script"}.items():
    for _prefix in ("pallet.resource", "pallet.action"):
        _ns(f"{_prefix}.{_old}", _same(_actions))

# Every namespace of Pallet 0.8 (src/pallet), for the message about one not provided here.
PALLET_NAMESPACES = _names("""
pallet.action pallet.action-impl pallet.action-plan pallet.actions pallet.actions-impl pallet.api
pallet.argument pallet.blobstore pallet.command-line pallet.compute pallet.compute.node-list
pallet.configure pallet.context pallet.contracts pallet.core pallet.core.api pallet.core.session
pallet.core.plan-state pallet.core.user pallet.core.version-dispatch pallet.crate
pallet.crate.admin-user pallet.crate.automated-admin-user pallet.crate.crontab
pallet.crate.environment pallet.crate.etc-default pallet.crate.etc-hosts pallet.crate.filesystem
pallet.crate.initd pallet.crate.limits-conf pallet.crate.network-service pallet.crate.nohup
pallet.crate.os pallet.crate.package.centos pallet.crate.package.debian-backports
pallet.crate.package.epel pallet.crate.package.jpackage pallet.crate.package.rpmforge
pallet.crate.package-repo pallet.crate.service pallet.crate.ssh-key pallet.crate.sudoers
pallet.crate.user pallet.crate-install pallet.debug pallet.enlive pallet.environment
pallet.event pallet.execute pallet.executors pallet.feature pallet.futures pallet.main
pallet.md5crypt pallet.node pallet.node-value pallet.phase pallet.plugin pallet.project
pallet.script pallet.script.lib pallet.script-builder pallet.script-exec pallet.stevedore
pallet.strint pallet.template pallet.utils pallet.version-dispatch pallet.versions
pallet.stevedore.bash pallet.stevedore.common pallet.extensions
""")

# Names of clojure.core that this dialect cannot have, and why (the rest of Clojure's names
# that are missing are reported as unknown symbols, with a suggestion).
CLOJURE_UNSUPPORTED = {
    **dict.fromkeys("deftype defrecord defprotocol extend-type extend-protocol extend reify "
                    "proxy gen-class gen-interface definterface".split(),
                    "defines Java classes or protocols, which this dialect has no use for"),
    **dict.fromkeys("future future-call promise deliver agent send send-off await pmap pcalls "
                    "pvalues locking".split(),
                    "runs code concurrently; evaluation here is one pure, sequential pass"),
    **dict.fromkeys("ref dosync alter commute ensure ref-set".split(),
                    "is software transactional memory, for threads this dialect does not have"),
    **dict.fromkeys("import new set! monitor-enter monitor-exit memfn bean".split(),
                    "is Java interop, which this dialect cannot run"),
    **dict.fromkeys("load load-file load-string read-string eval".split(),
                    "loads code at run time; use require"),
    **dict.fromkeys("binding with-redefs alter-var-root intern".split(),
                    "rebinds vars, which are values here"),
    **dict.fromkeys("try catch finally".split(),
                    "catches errors; here an error stops the compile, at its place"),
    **dict.fromkeys("loop recur trampoline".split(),
                    "is not available; write the loop with for, doseq, reduce or recursion"),
}


def unsupported_name(local: str) -> str | None:
    """The qualified Pallet name a bare `local` is, of the namespaces whose names crates use
    bare (actions, specs, the crate API), when this project lacks it; else None."""
    for name in ("pallet.actions", "pallet.api", "pallet.crate"):
        ns = NAMESPACES[name]
        if local in ns.pallet and local not in ns.names:
            return ns.qualified(local)
    return None
