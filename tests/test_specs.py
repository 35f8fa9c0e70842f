"""The spec language evaluated from real source: ordinary forms, require, crate functions,
node/server/group/cluster specs with :extends, converge/lift, and planning with settings and
relationships between nodes. (The core library has tests/test_core.py; the actions'
scripts have tests/test_actions.py.)
"""
from __future__ import annotations

from pathlib import Path

import pytest

from pallet.compiler.bundle import build_bundles
from pallet.compiler.core import pr_str
from pallet.compiler.inventory import parse_inventory
from pallet.compiler.model import Action
from pallet.compiler.project import load_project
from pallet.compiler.specs import ClusterSpec, GroupSpec, NodeSpec, ServerSpec
from pallet.errors import PalletError
from pallet.grammar.forms import Keyword

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Spec files are named relative to the working directory, as a user names them."""
    monkeypatch.chdir(tmp_path)


def load(tmp_path: Path, src: str, files: dict[str, str] | None = None):
    """Write `src` as main.pallet (and `files` beside it) and load it as `pallet compile` does."""
    for name, text in (files or {}).items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "main.pallet").write_text(src)
    return load_project("main.pallet")


def var(project, name: str):
    return project.evaluator.namespaces["user"].env.vars[name]


def inventory(*nodes: dict) -> tuple:
    """An inventory from dicts, through the TOML parser."""
    out = []
    for node in nodes:
        out.append("[[node]]")
        node = {"host": "10.0.0.1", "os-family": "debian", "os-version": "12", **node}
        for key, value in node.items():
            if isinstance(value, list):
                out.append(f"{key} = [{', '.join(repr(v) for v in value)}]".replace("'", '"'))
            elif isinstance(value, int):
                out.append(f"{key} = {value}")
            else:
                out.append(f'{key} = "{value}"')
        out.append("")
    return parse_inventory("\n".join(out), "nodes.toml")


def plan(project, nodes=None, os: str | None = "debian-12", phases: tuple[str, ...] = ()):
    targets = project.targets(nodes, None if nodes is not None else os)
    return project.plan(targets, phases)


def labels(actions) -> list[str]:
    return [a.label for a in actions]


def error(tmp_path: Path, src: str, files: dict[str, str] | None = None, **plan_args) -> str:
    with pytest.raises(PalletError) as info:
        plan(load(tmp_path, src, files), **plan_args)
    return str(info.value).splitlines()[0]


GROUP = '(def web (group-spec "web" :phases {:configure (phase-fn (directory "/w"))}))\n'


# ---- ordinary forms ---------------------------------------------------------------------------

FORMS = [
    ("(def x 41) (def r (inc x))", "42"),
    ("(defn add [a b] (+ a b)) (def r (add 1 2))", "3"),
    ('(defn greet "doc" [who] (str "hi " who)) (def r (greet "me"))', '"hi me"'),
    ("(def r ((fn [x] (* x x)) 7))", "49"),
    ("(def f (fn named [n] (if (zero? n) :done (named (dec n))))) (def r (f 3))", ":done"),
    ("(def r (let [a 1 b (+ a 1)] [a b]))", "[1 2]"),
    ("(def r (let [[a b & more] [1 2 3 4]] [a b more]))", "[1 2 [3 4]]"),
    ("(def r (let [[a [b c]] [1 [2 3]]] (+ a b c)))", "6"),
    ("(def r (let [[a :as all] [1 2]] [a all]))", "[1 [1 2]]"),
    ("(def r (let [{a :a {c :c} :b} {:a 1 :b {:c 3}}] [a c]))", "[1 3]"),
    ("(def r (let [{:keys [a b] :or {b 5} :as m} {:a 1}] [a b m]))", "[1 5 {:a 1}]"),
    ('(def r (let [{:strs [a]} {"a" 1}] a))', "1"),
    ("(defn f [[x y] {:keys [z]}] [x y z]) (def r (f [1 2] {:z 3}))", "[1 2 3]"),
    ('(defn f [path & {:keys [mode owner] :or {mode "644"}}] [path mode owner])'
     ' (def r [(f "/a") (f "/b" :owner "me") (f "/c" :mode "600" :owner "x")])',
     '[["/a" "644" nil] ["/b" "644" "me"] ["/c" "600" "x"]]'),
    ("(defn f [& args] args) (def r [(f) (f 1 2)])", "[nil [1 2]]"),
    ("(def r [(if nil 1 2) (if false 1) (if 0 :zero-is-true :no) (if [] :empty-is-true :no)])",
     "[2 nil :zero-is-true :empty-is-true]"),
    ("(def r [(when true 1 2) (when false 1) (when-not false 3)])", "[2 nil 3]"),
    ("(defn size [n] (cond (< n 10) :small (< n 100) :medium :else :large))"
     " (def r (map size [1 50 500]))", "[:small :medium :large]"),
    ("(def r (cond false 1))", "nil"),
    ('(defn k [x] (case x 1 :one "a" :a (:p :q) :pq :default))'
     ' (def r (map k [1 "a" :q :z true]))', "[:one :a :pq :default :default]"),
    ("(def r (for [x [1 2 3] y [:a :b] :when (odd? x)] [x y]))", "[[1 :a] [1 :b] [3 :a] [3 :b]]"),
    ("(def r (for [x (range 4) :let [y (* x x)] :when (even? y)] y))", "[0 4]"),
    ("(def r (for [[k v] {:a 1 :b 2}] (str (name k) v)))", '["a1" "b2"]'),
    ("(def r (doseq [x [1 2]] x))", "nil"),
    ("(def r (-> {:a 1} (assoc :b 2) (dissoc :a) keys))", "[:b]"),
    ("(def r (-> 5 (- 1) (* 2) inc))", "9"),
    ("(def r (->> (range 6) (filter even?) (map inc) (reduce +)))", "9"),
    ("(def r (->> [3 1 2] sort (map str) (join \",\")))", '"1,2,3"'),
    ("(def r [(and 1 2) (and 1 nil 2) (or nil false 3) (or nil)])", "[2 nil 3 nil]"),
    ("(def r (do 1 2 3))", "3"),
    ("(def r '(a b))", "[a b]"),
    ("(def r (if-let [x (get {:a 1} :a)] (inc x) :none))", "2"),
    ("(def r (when-let [x nil] :never))", "nil"),
    ("(def r (do (comment (fail \"never\")) 1))", "1"),
]


@pytest.mark.parametrize("src,expected", FORMS, ids=[f[0] for f in FORMS])
def test_ordinary_forms(tmp_path, src, expected):
    assert pr_str(var(load(tmp_path, src + "\n" + GROUP), "r")) == expected


def test_keyword_options_of_a_function_are_checked(tmp_path):
    src = '(defn f [p & {:keys [mode]}] p)\n(def r (f "/a" :mdoe "600"))\n' + GROUP
    assert error(tmp_path, src) == "main.pallet:2:8: f: unknown option :mdoe; did you mean ':mode'?"
    src = '(defn f [p & {:keys [mode]}] p)\n(def r (f "/a" :mode))\n' + GROUP
    assert error(tmp_path, src) == "main.pallet:2:8: f: keyword options come in pairs"
    src = '(defn f [a b] a)\n(def r (f 1))\n' + GROUP
    assert error(tmp_path, src) == "main.pallet:2:8: f takes 2 arguments, got 1"


def test_doseq_records_actions_in_a_phase(tmp_path):
    p = load(tmp_path, '(def g (group-spec "g" :phases {:configure (phase-fn'
                       ' (doseq [d ["/a" "/b"] :let [e (str d "/x")]] (directory d) (file e)))}))')
    assert labels(plan(p)[("g", "configure")]) == [
        "directory /a", "file /a/x", "directory /b", "file /b/x"]


# ---- require -----------------------------------------------------------------------------------

def test_require_a_file_relative_to_the_requiring_file_with_an_alias(tmp_path):
    files = {
        "lib/base.pallet": '(require \'["util.pallet" :as u])\n'
                           '(def port (u/double 4000))\n'
                           '(def base (server-spec :phases {:configure (phase-fn'
                           ' (directory (u/dir "base")))}))\n',
        "lib/util.pallet": '(defn double [x] (* 2 x))\n(defn dir [n] (str "/srv/" n))\n',
    }
    src = ('(require \'["lib/base.pallet" :as b])\n'
           '(require \'["lib/util.pallet" :refer [dir]])\n'
           '(def web (group-spec "web" :extends [b/base]\n'
           '  :phases {:configure (phase-fn (directory (dir (str b/port))))}))\n')
    p = load(tmp_path, src, files)
    assert labels(plan(p)[("web", "configure")]) == ["directory /srv/base", "directory /srv/8000"]
    # the action of the required file is located in that file
    action = plan(p)[("web", "configure")][0]
    assert Path(action.span.file).resolve() == (tmp_path / "lib/base.pallet").resolve()
    assert (action.span.line, action.span.column) == (3, 54)


def test_require_is_done_once_and_unknown_names_are_located(tmp_path):
    files = {"lib.pallet": '(def loaded (str "once"))\n(defn helper [] 1)\n'}
    src = ('(require \'["lib.pallet" :as l])\n(require \'["lib.pallet" :as l2])\n'
           '(def r [l/loaded l2/loaded])\n(def s (l/helpr))\n' + GROUP)
    assert error(tmp_path, src, files) == (
        "main.pallet:4:9: lib.pallet has no 'helpr'; did you mean 'helper'?")
    assert error(tmp_path, '(require \'["nosuch.pallet"])\n' + GROUP).startswith(
        "main.pallet:1:11: nosuch.pallet: no such file")


def test_bundled_crates_are_reachable_without_require(tmp_path):
    src = ('(def g (group-spec "g" :phases {:configure (phase-fn (java/java :jre)'
           ' (ssh-key/authorize-key "app" "ssh-ed25519 AAAA k"))}))\n')
    actions = plan(load(tmp_path, src), os="debian-12")[("g", "configure")]
    assert labels(actions) == ["package openjdk-17-jre-headless",
                               "exec-checked-script authorize-key on user app"]
    assert actions[0].via == ("java/java (main.pallet:1:54)",)
    assert actions[0].span.file == "<crate java>"
    rhel = plan(load(tmp_path, src), os="rocky-9")[("g", "configure")]
    assert rhel[0].label == "package java-17-openjdk-headless"


def test_java_takes_a_kind_then_a_version(tmp_path):
    def packages(args: str, os: str = "debian-12"):
        src = f'(def g (group-spec "g" :phases {{:configure (phase-fn (java/java {args}))}}))\n'
        return labels(plan(load(tmp_path, src), os=os)[("g", "configure")])
    assert packages("") == ["package openjdk-17-jdk-headless"]
    assert packages(":version 11") == ["package openjdk-11-jdk-headless"]
    assert packages(":jre :version 21") == ["package openjdk-21-jre-headless"]
    assert packages(':jdk :version "21"') == ["package openjdk-21-jdk-headless"]
    assert packages(":jre", os="rocky-9") == ["package java-17-openjdk-headless"]

    def failure(args: str) -> str:
        src = f'(def g (group-spec "g" :phases {{:configure (phase-fn (java/java {args}))}}))\n'
        with pytest.raises(PalletError) as info:
            plan(load(tmp_path, src))
        assert str(info.value.span) == "main.pallet:1:54"   # the call, not the crate's line
        assert info.value.notes[0].startswith("  in java/java, at <crate java>:")
        return info.value.message
    assert failure(":server") == "java/java: the kind is :jdk or :jre, not :server"
    assert failure('"jdk"') == 'java/java: the kind is :jdk or :jre, not "jdk"'
    assert failure(":jdk :versoin 3") == "java/java: unknown option :versoin; options: :version"
    assert failure(":jdk :version") == "java/java: options come in pairs, such as :version 17"
    assert failure(":version -1") == "java/java: :version is a major version such as 17, not -1"


def test_a_crate_namespace_can_be_required_with_an_alias(tmp_path):
    src = ("(require '[java :as j])\n"
           '(def g (group-spec "g" :phases {:configure (phase-fn (j/java :jdk :version 21))}))\n')
    assert labels(plan(load(tmp_path, src))[("g", "configure")]) == ["package openjdk-21-jdk-headless"]


def test_def_crate_fn_records_where_it_was_called(tmp_path):
    src = ('(def-crate-fn app-dir "An app directory." [name & {:keys [mode] :or {mode "755"}}]\n'
           '  (directory (str "/opt/" name) :mode mode)\n'
           '  (inner name))\n'
           '(def-crate-fn inner [name] (file (str "/opt/" name "/.ok")))\n'
           '(def g (group-spec "g" :phases {:configure (phase-fn\n'
           '  (app-dir "a" :mode "700"))}))\n')
    p = load(tmp_path, src)
    assert var(p, "app-dir").doc == "An app directory."
    first, second = plan(p)[("g", "configure")]
    assert first.label == "directory /opt/a" and first.option("mode") == "700"
    assert str(first.span) == "main.pallet:2:3"
    assert first.via == ("app-dir (main.pallet:6:3)",)
    assert str(second.span) == "main.pallet:4:28"
    assert second.via == ("app-dir (main.pallet:6:3)", "inner (main.pallet:3:3)")


# ---- specs and :extends ----------------------------------------------------------------------

EXTENDS = '''
(def a (server-spec :roles #{:ra}
  :node-spec (node-spec :image {:os-family :ubuntu} :hardware {:min-ram 512 :min-cores 1})
  :phases {:configure (phase-fn (directory "/a"))
           :install (phase-fn (package "pa"))}))
(def b (server-spec :roles #{:rb}
  :node-spec (node-spec :hardware {:min-ram 1024} :network {:inbound-ports [22]})
  :phases {:configure (phase-fn (directory "/b"))
           :start (phase-fn (service "sb" :action :start))}))
(def c (server-spec :extends a :phases {:configure (phase-fn (directory "/c"))}))
'''


def test_a_step_names_the_users_call_through_crate_functions(tmp_path):
    """The script's step comment and its failure message on stderr start at the call in the
    user's spec, then each crate function, then the action's own line."""
    import subprocess
    files = {"lib.pallet": '(def-crate-fn inner []\n  (exec-checked-script "breaks" (false)))\n'
                           '(def-crate-fn outer [] (inner))\n'}
    src = ('(require \'["lib.pallet" :as lib])\n'
           '(def g (group-spec "g" :phases {:configure (phase-fn (lib/outer))}))\n')
    p = load(tmp_path, src, files)
    targets = p.targets(None, "debian-12")
    (bundle,) = build_bundles(p.plan(targets), targets, lambda n: b"")
    where = ("main.pallet:2:54 (via lib.pallet/outer) lib.pallet:3:24 (via lib.pallet/inner) "
             "lib.pallet:2:3")
    assert f"\n# {where} exec-checked-script breaks\n" in bundle.script
    (tmp_path / "run.sh").write_text(bundle.script)
    run = subprocess.run(["bash", "run.sh"], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 1
    assert run.stderr == f"{where}: action 1 failed (exit status 1): exec-checked-script breaks\n"


def test_extends_runs_inherited_phases_first_in_order(tmp_path):
    src = EXTENDS + '''
(def ab (group-spec "ab" :extends [a b] :phases {:configure (phase-fn (directory "/own"))}))
(def ba (group-spec "ba" :extends [b a] :phases {:configure (phase-fn (directory "/own"))}))
(def cb (group-spec "cb" :extends [c b]))
'''
    plans = plan(load(tmp_path, src))
    assert labels(plans[("ab", "configure")]) == ["directory /a", "directory /b", "directory /own"]
    assert labels(plans[("ba", "configure")]) == ["directory /b", "directory /a", "directory /own"]
    assert labels(plans[("cb", "configure")]) == ["directory /a", "directory /c", "directory /b"]
    assert labels(plans[("ab", "install")]) == ["package pa"]
    assert labels(plans[("ab", "start")]) == ["service sb"]
    assert ("ab", "settings") not in plans


def test_extends_unites_roles_and_merges_node_specs(tmp_path):
    src = EXTENDS + '''
(def g (group-spec "g" :extends [a b] :roles #{:own}
  :node-spec (node-spec :hardware {:min-cores 8})
  :image {:os-version "22.04"}))
'''
    g = var(load(tmp_path, src), "g")
    assert isinstance(g, GroupSpec) and isinstance(g, ServerSpec)
    assert g.roles == {"ra", "rb", "own"}
    kw = Keyword
    assert g.node_spec.image == {kw("os-family"): kw("ubuntu"), kw("os-version"): "22.04"}
    assert g.node_spec.hardware == {kw("min-ram"): 1024, kw("min-cores"): 8}
    assert g.node_spec.network == {kw("inbound-ports"): (22,)}
    assert g.node_spec.os_family == "ubuntu"
    # the parents are unchanged: specs are values
    assert var(load(tmp_path, src), "a").node_spec.hardware == {kw("min-ram"): 512, kw("min-cores"): 1}
    with pytest.raises(Exception):
        g.roles = frozenset()  # frozen


def test_group_spec_count_and_node_spec_shorthands(tmp_path):
    src = ('(def g (group-spec "g" :count 3 :image {:os-family :debian :os-version-matches "12"}'
           ' :hardware {:min-ram 2048} :network {:inbound-ports [22 80]}))\n'
           '(def k (group-spec :k))\n(def n (node-spec :location {:region "eu"} :qos {:spot-price 1}))')
    p = load(tmp_path, src)
    g = var(p, "g")
    assert g.name == "g" and g.count == 3
    assert g.node_spec.image[Keyword("os-version-matches")] == "12"
    assert g.node_spec.hardware == {Keyword("min-ram"): 2048}
    assert var(p, "k").name == "k" and var(p, "k").count is None
    assert isinstance(var(p, "n"), NodeSpec) and var(p, "n").location == {Keyword("region"): "eu"}
    assert [g.name for g in p.groups] == ["g", "k"]


def test_cluster_spec_prefixes_groups_and_applies_its_options(tmp_path):
    src = EXTENDS + '''
(def g1 (group-spec "one" :count 2 :roles #{:r1} :hardware {:min-ram 4096}
  :phases {:configure (phase-fn (directory "/one"))}))
(def g2 (group-spec "two" :phases {:configure (phase-fn (directory "/two")
                                                        (file (str "/peers-" (count (nodes-in-group :c-one)))))}))
(def cl (cluster-spec "c" :groups [g1 g2] :extends [a] :roles #{:cr}
  :node-spec (node-spec :image {:os-family :debian} :hardware {:min-ram 1024})))
'''
    p = load(tmp_path, src)
    cl = var(p, "cl")
    assert isinstance(cl, ClusterSpec)
    one, two = cl.groups
    assert (one.name, two.name) == ("c-one", "c-two")
    assert one.count == 2 and two.count is None
    assert one.roles == {"r1", "cr", "ra"} and two.roles == {"cr", "ra"}
    assert one.node_spec.hardware == {Keyword("min-ram"): 4096, Keyword("min-cores"): 1}
    assert two.node_spec.hardware == {Keyword("min-ram"): 1024, Keyword("min-cores"): 1}
    assert one.node_spec.os_family == "debian"       # the cluster's node-spec over a's
    assert [g.name for g in p.groups] == ["c-one", "c-two"]    # one and two serve only the cluster
    assert (one.origin, two.origin) == (var(p, "g1"), var(p, "g2"))
    nodes = inventory({"name": "o1", "group": "c-one"}, {"name": "o2", "group": "c-one"},
                      {"name": "t1", "group": "c-two"})
    plans = plan(p, nodes)
    assert labels(plans[("o1", "configure")]) == ["directory /a", "directory /one"]
    assert labels(plans[("t1", "configure")]) == ["directory /a", "directory /two", "file /peers-2"]
    assert labels(plans[("t1", "install")]) == ["package pa"]


def test_a_group_used_in_a_cluster_is_compiled_once_as_the_clusters(tmp_path):
    src = '''
(def front (group-spec "front" :phases {:configure (phase-fn (file "/front"))}))
(def back (group-spec "back" :phases {:configure (phase-fn (file "/back"))}))
(def prod (cluster-spec "prod" :groups [front back]))
'''
    p = load(tmp_path, src)
    assert [g.name for g in p.groups] == ["prod-front", "prod-back"]
    assert sorted(plan(p)) == [("prod-back", "configure"), ("prod-front", "configure")]
    # a group the file also lifts on its own is compiled on its own too
    p = load(tmp_path, src + "(lift [front] :phase :configure)\n")
    assert [g.name for g in p.groups] == ["front", "prod-front", "prod-back"]
    # an inventory node of the bare group is told the cluster's name for it
    nodes = inventory({"name": "f1", "group": "back"})
    assert error(tmp_path, src, nodes=nodes) == (
        "nodes.toml:6:1: inventory node 'f1' is in group 'back', which main.pallet does not "
        "define; did you mean 'prod-back'? (groups: prod-front, prod-back)")


def test_specs_check_their_options(tmp_path):
    cases = [
        ('(def g (group-spec "g" :hardwre {:min-ram 1}))',
         "main.pallet:1:24: group-spec: unknown option :hardwre; did you mean :hardware?"),
        ('(def s (server-spec :phase {}))',
         "main.pallet:1:21: server-spec: unknown option :phase; did you mean :phases?"),
        ('(def n (node-spec :image {:os-famly :debian}))\n' + GROUP,
         "main.pallet:1:26: node-spec: unknown key :os-famly in :image; keys: :architecture :image-id :login-user "
         ":os-64-bit :os-family :os-version :os-version-matches"),
        ('(def g (group-spec "g" :count -1))', "main.pallet:1:31: group-spec: :count must be a whole number"),
        ('(def g (group-spec "g" :extends [42]))',
         "main.pallet:1:33: group-spec: :extends takes server-specs, got the number 42"),
        ('(def g (group-spec "g" :phases {:configure 5}))',
         "main.pallet:1:32: group-spec: phase :configure must be a phase-fn, got the number 5"),
        ('(def g (group-spec "g" :node-spec {:image {}}))',
         "main.pallet:1:35: group-spec: :node-spec takes a node-spec"),
        ('(def c (cluster-spec "c" :groups [1]))', "main.pallet:1:34: cluster-spec: :groups takes group-specs"),
        ('(def g (group-spec 42))', "main.pallet:1:20: group-spec: a group name must be a keyword or a string"),
        ('(def a (server-spec :extends [a]))',
         "main.pallet:1:31: a refers to itself while it is being defined (a cycle, e.g. in :extends)"),
    ]
    for src, expected in cases:
        assert error(tmp_path, src) == expected, src


def test_a_cycle_in_extends_names_the_cycle(tmp_path):
    src = ('(def a (server-spec :extends [b]))\n(def b (server-spec :extends [c]))\n'
           '(def c (server-spec :extends [a]))\n' + GROUP)
    assert error(tmp_path, src) == (
        "main.pallet:1:31: a cycle: a -> b -> c -> a; definitions (such as specs in :extends) "
        "cannot refer to each other (b is defined at main.pallet:2:6)")
    src = '(def a (server-spec :extends [b]))\n(def b (server-spec))\n' + GROUP
    assert error(tmp_path, src) == ("main.pallet:1:31: unknown symbol 'b': it is defined later, "
                                    "at main.pallet:2:6; define it before it is used")


# ---- operations: converge, lift and what compile picks -----------------------------------------

PHASED = '''
(def g (group-spec "g" :count 2 :phases {:install (phase-fn (package "p"))
                                         :configure (phase-fn (directory "/c"))
                                         :start (phase-fn (service "s" :action :start))
                                         :settings (phase-fn (assoc-settings :x {:y 1}))
                                         :custom (phase-fn (file "/custom"))}))
(def h (group-spec "h" :phases {:configure (phase-fn (directory "/h"))}))
'''


def test_without_an_operation_every_phase_but_settings_is_compiled(tmp_path):
    p = load(tmp_path, PHASED)
    assert p.operations == ()
    assert sorted(plan(p)) == [("g", "configure"), ("g", "custom"), ("g", "install"),
                               ("g", "start"), ("h", "configure")]
    assert var(p, "g").phase_names == ("settings", "install", "configure", "start", "custom")


def test_converge_and_lift_choose_the_phases_and_phase_overrides(tmp_path):
    p = load(tmp_path, PHASED + "(converge {g 3 h 1} :phase [:install :configure] :compute aws-ec2)\n")
    (op,) = p.operations
    assert op.kind == "converge" and [(gr.name, n) for gr, n in op.groups] == [("g", 3), ("h", 1)]
    assert op.phases == ("install", "configure") and op.compute.name == "aws-ec2"
    assert sorted(plan(p)) == [("g", "configure"), ("g", "install"), ("h", "configure")]
    assert sorted(plan(p, phases=("start",))) == [("g", "start")]
    assert sorted(plan(p, phases=("custom", "configure"))) == [
        ("g", "configure"), ("g", "custom"), ("h", "configure")]

    p = load(tmp_path, PHASED + "(lift [g] :phase :start)\n")
    (op,) = p.operations
    assert op.kind == "lift" and [gr.name for gr, _ in op.groups] == ["g"] and op.phases == ("start",)
    # h is not lifted, so its own phases apply to it
    assert sorted(plan(p)) == [("g", "start"), ("h", "configure")]


def test_default_phases_choose_the_phases_after_requested_and_operation_phases(tmp_path):
    src = PHASED.replace('(def h (group-spec "h" :phases',
                         '(def h (group-spec "h" :default-phases [:start] :phases').replace(
        '{:configure (phase-fn (directory "/h"))}',
        '{:configure (phase-fn (directory "/h")) :start (phase-fn (file "/h-started"))}')
    src += ('(def base (server-spec :default-phases [:configure]))\n'
            '(def k (group-spec "k" :extends [base] :phases {:configure (phase-fn (file "/k"))'
            ' :install (phase-fn (package "k"))}))\n')
    p = load(tmp_path, src)
    assert var(p, "h").default_phases == ("start",)
    assert var(p, "k").default_phases == ("configure",)      # inherited
    # g has none: every phase it defines; h and k: their :default-phases
    assert sorted(plan(p)) == [("g", "configure"), ("g", "custom"), ("g", "install"),
                               ("g", "start"), ("h", "start"), ("k", "configure")]
    assert sorted(plan(p, phases=("configure",))) == [("g", "configure"), ("h", "configure"),
                                                       ("k", "configure")]
    # the operation's :phase wins over :default-phases for the groups it names
    p = load(tmp_path, src + "(lift [h] :phase :configure)\n")
    assert ("h", "configure") in plan(p) and ("h", "start") not in plan(p)
    assert error(tmp_path, '(def g (group-spec "g" :default-phases [:confgure]\n'
                           '  :phases {:configure (phase-fn (file "/x"))}))') == (
        "main.pallet:1:40: group-spec: :default-phases names :confgure, which the group does not "
        "define; did you mean :configure? (phases: :configure)")


def test_only_the_main_files_operations_and_groups_count(tmp_path):
    files = {"lib.pallet": '(def other (group-spec "other" :phases {:configure (phase-fn (file "/o"))}))\n'
                           '(lift other :phase :configure)\n'}
    p = load(tmp_path, '(require \'["lib.pallet" :as lib])\n' + GROUP, files)
    assert [g.name for g in p.groups] == ["web"] and p.operations == ()
    # a group made by a function is found through the operation that uses it
    p = load(tmp_path, '(defn mk [n] (group-spec n :count 2 :phases {:configure (phase-fn (file "/f"))}))\n'
                       '(def c (cluster-spec "c" :groups [(mk "x")]))\n(create-cluster c aws-ec2)\n')
    (op,) = p.operations
    assert [(g.name, n) for g, n in op.groups] == [("c-x", 2)] and op.phases == ()
    assert [g.name for g in p.groups] == ["c-x"]


def test_hadoop_example_compiles_as_written():
    p = load_project(EXAMPLES / "hadoop.pallet")
    assert [g.name for g in p.groups] == ["task-tracker", "job-tracker"]
    (op,) = p.operations
    assert [(g.name, n) for g, n in op.groups] == [("task-tracker", 10), ("job-tracker", 1)]
    tt = p.group("task-tracker")
    assert tt.node_spec.hardware == {Keyword("min-cores"): 4, Keyword("min-ram"): 4096}
    plans = plan(p, os="ubuntu-22.04")
    assert sorted(plans) == [("job-tracker", "configure"), ("job-tracker", "start"),
                             ("task-tracker", "configure"), ("task-tracker", "start")]
    assert labels(plans[("task-tracker", "start")]) == ["exec-checked-script start hadoop nodemanager"]
    assert labels(plans[("job-tracker", "start")]) == [
        "exec-checked-script start hadoop resourcemanager"]
    assert plans[("job-tracker", "configure")][0].label == "package openjdk-17-jdk-headless"


def test_hadoop_daemons_use_the_settings_install_used(tmp_path):
    """install's :settings become the node's :hadoop settings, so the daemons started in a
    later phase run from the same home as the same user; the XML values are escaped."""
    src = '''
(def node (group-spec "n" :phases {
  :configure (phase-fn (hadoop/install :apache :settings
                         {:home "/srv/hadoop" :user "hd"
                          :core-site {"fs.defaultFS" "hdfs://nn:8020/?a=1&b=<2>"
                                      "io.file.buffer.size" 65536}}))
  :start (phase-fn (hadoop/task-tracker) (hadoop/job-tracker :settings {:user "yarn"}))}))
'''
    p = load(tmp_path, src)
    targets = p.targets(None, "debian-12")
    plans = p.plan(targets)
    bundles = {b.phase: b for b in build_bundles(plans, targets, lambda n: b"")}
    start = bundles["start"].script
    assert ("su -s /bin/sh -c '/srv/hadoop/current/bin/yarn --daemon start nodemanager' hd"
            in start)
    assert ("su -s /bin/sh -c '/srv/hadoop/current/bin/yarn --daemon start resourcemanager' yarn"
            in start)
    assert "/opt/hadoop" not in start
    (core_site,) = [a for a in plans[("n", "configure")] if a.label.endswith("core-site.xml")]
    assert core_site.option("content") == (
        '<?xml version="1.0"?>\n<configuration>\n'
        "  <property><name>fs.defaultFS</name>"
        "<value>hdfs://nn:8020/?a=1&amp;b=&lt;2&gt;</value></property>\n"
        "  <property><name>io.file.buffer.size</name><value>65536</value></property>\n"
        "</configuration>\n")


# ---- node-list: existing servers written in the spec ---------------------------------------------

NODE_LIST = '''
(def servers
  (node-list [{:name "tt-1" :group "task-tracker" :host "127.0.0.1" :port 2301 :user "root"
               :private-key "keys/id" :os-family :debian :os-version "12"}
              {:name "tt-2" :group "task-tracker" :host "127.0.0.2" :os-family :ubuntu
               :os-version 22.04 :roles #{:worker} :private-ip "10.0.0.2"}]))
(def tt (group-spec "task-tracker" :phases {:configure (phase-fn
  (file (str "/etc/" (target-name) "-" (count (nodes-with-role :worker)))))}))
'''


def test_node_list_is_an_inventory_written_in_the_spec(tmp_path):
    from pallet.compiler.model import NodeFacts
    from pallet.compiler.specs import ComputeRef, NodeList
    p = load(tmp_path, NODE_LIST)
    servers = var(p, "servers")
    assert isinstance(servers, NodeList) and isinstance(servers, ComputeRef)
    assert servers.nodes == (
        NodeFacts("tt-1", "task-tracker", "debian", "12", "127.0.0.1", None, frozenset(), 2301,
                  "root", "keys/id"),
        NodeFacts("tt-2", "task-tracker", "ubuntu", "22.04", "127.0.0.2", "10.0.0.2",
                  frozenset({"worker"})))
    assert str(servers.nodes[1].span) == "main.pallet:5:15"
    # the same nodes as the TOML inventory would give
    toml = inventory({"name": "tt-1", "group": "task-tracker", "host": "127.0.0.1", "port": 2301,
                      "user": "root", "private-key": "keys/id"})
    assert toml[0] == servers.nodes[0]
    # with neither --nodes nor --os, compile uses the spec's node-list; --os overrides it
    plans = plan(p, os=None)
    assert sorted(plans) == [("tt-1", "configure"), ("tt-2", "configure")]
    assert labels(plans[("tt-2", "configure")]) == ["file /etc/tt-2-1"]
    assert sorted(plan(p, os="alpine-3.20")) == [("task-tracker", "configure")]
    # as the :compute of an operation; :compute node-list alone stays the service's name
    p = load(tmp_path, NODE_LIST.replace("(def servers", "(def unused") +
             '(lift tt :compute (node-list [{:name "x-1" :group "task-tracker" :host "h" '
             ':os-family :alpine :os-version "3.20"}]))\n')
    assert [n.name for n in p.spec_nodes()] == ["x-1"]
    p = load(tmp_path, GROUP + "(lift web :compute node-list)\n")
    assert p.operations[0].compute.name == "node-list" and p.spec_nodes() is None


def test_node_list_errors_point_at_the_offending_map(tmp_path):
    def failure(entries: str) -> str:
        return error(tmp_path, f"(def n (node-list [{entries}]))\n" + GROUP, os=None)
    good = '{:name "a" :group "web" :host "h" :os-family :debian :os-version "12"}'
    assert failure(good.replace(":host", ":hots")) == (
        "main.pallet:1:44: node-list: unknown key :hots in a node; keys: :group, :host, :jump, "
        ":jump-key, :name, :os-family, :os-version, :password, :port, :private-ip, :private-key, "
        ":roles, :sudo-password, :user")
    assert failure(good.replace(':host "h"', "")) == (
        'main.pallet:1:20: node-list: a node needs :host "..."')
    assert failure(good.replace(':host "h"', ":host 42")) == (
        'main.pallet:1:50: node-list: a node needs :host "..."')
    assert failure(good.replace(':os-version "12"', ":port 0")) == (
        "main.pallet:1:79: node-list: :port must be a number from 1 to 65535")
    assert failure(good + " " + good) == (
        "main.pallet:1:98: node-list: node name 'a' is used twice (first at main.pallet:1:20)")
    assert failure(good.replace(':os-version "12"', ":roles [1]")) == (
        "main.pallet:1:80: node-list: :roles must be a vector or set of keywords")
    assert failure("42") == ("main.pallet:1:20: node-list: each node is a map such as "
                             '{:name "n1" :group "web" :host "10.0.0.1"}')
    assert failure(good.replace(':group "web"', ':group "wbe"')) == (
        "main.pallet:1:20: node-list node 'a' is in group 'wbe', which main.pallet does not "
        "define; did you mean 'web'? (groups: web)")
    assert failure(good.replace(':os-family :debian :os-version "12"', "")) == (
        "main.pallet:1:20: node-list node 'a' has no os-family; add os-family and os-version, "
        "or let `pallet lift` detect them")
    assert error(tmp_path, "(def n (node-list []))\n" + GROUP, os=None) == (
        "main.pallet:1:8: node-list needs at least one node")
    assert error(tmp_path, GROUP, os=None) == (
        "error: say what to compile for: --nodes INVENTORY or --os FAMILY-VERSION, or write a "
        "(node-list [...]) in the spec")


# ---- settings and relationships ------------------------------------------------------------------

RELATIONS = '''
(def db (group-spec "db" :roles #{:database}
  :phases {:settings (phase-fn (assoc-settings :db {:port 5432 :name (str "db-of-" (target-name))}))
           :configure (phase-fn (remote-file "/etc/db.conf"
                                  :content (str "port=" (:port (get-settings :db)) "\\n")))}))
(def app (group-spec "app"
  :phases {:configure
           (phase-fn
             (doseq [n (nodes-with-role :database)
                     :let [s (get-node-settings n :db)]]
               (remote-file (str "/etc/app/db-" (node-name n))
                 :content (format "%s:%s %s" (node-ip n) (:port s) (:name s)))))}))
'''


def test_a_group_reads_the_settings_of_another_groups_nodes(tmp_path):
    nodes = inventory({"name": "a1", "group": "app"},        # before the db nodes: settings run first
                      {"name": "d1", "group": "db", "host": "192.0.2.1", "private-ip": "10.1.0.1"},
                      {"name": "d2", "group": "db", "host": "192.0.2.2"})
    plans = plan(load(tmp_path, RELATIONS), nodes)
    a1 = plans[("a1", "configure")]
    assert [(a.label, a.option("content")) for a in a1] == [
        ("remote-file /etc/app/db-d1", "10.1.0.1:5432 db-of-d1"),
        ("remote-file /etc/app/db-d2", "192.0.2.2:5432 db-of-d2")]    # node-ip falls back to host
    assert plans[("d1", "configure")][0].option("content") == "port=5432\n"
    assert ("d1", "settings") not in plans


def test_roles_from_the_inventory_count_for_nodes_with_role(tmp_path):
    nodes = inventory({"name": "a1", "group": "app", "roles": ["database"], "host": "192.0.2.9"})
    # a1 has the role but made no :db settings
    assert plan(load(tmp_path, RELATIONS), nodes)[("a1", "configure")][0].option("content") == (
        "192.0.2.9:null null")


def test_target_roles_are_the_groups_and_the_nodes_own(tmp_path):
    """(target-roles) agrees with nodes-with-role: the group's roles and the inventory's."""
    src = '''
(def app (group-spec "app" :roles #{:web} :phases {:configure (phase-fn
  (file (str "/etc/roles-" (join "-" (sort (map name (target-roles))))))
  (file (str "/etc/self-" (count (filter (fn [n] (= (node-name n) (target-name)))
                                         (nodes-with-role :database))))))}))
'''
    nodes = inventory({"name": "a1", "group": "app", "roles": ["database"]},
                      {"name": "a2", "group": "app"})
    plans = plan(load(tmp_path, src), nodes)
    assert labels(plans[("a1", "configure")]) == ["file /etc/roles-database-web", "file /etc/self-1"]
    assert labels(plans[("a2", "configure")]) == ["file /etc/roles-web", "file /etc/self-0"]


def test_the_session_queries_in_a_phase(tmp_path):
    src = '''
(def web (group-spec "web" :phases {:configure (phase-fn
  (remote-file "/etc/facts" :content
    (pr-str [(target-name) (target-ip) (os-family) (os-version) (group-name) (phase-name)
             (map node-name (nodes-in-group :web)) (map node-ip (nodes-in-group "web"))
             (count (nodes-in-group :nosuch)) (target-roles)])))}))
'''
    nodes = inventory({"name": "w1", "group": "web", "host": "192.0.2.1", "os-family": "ubuntu",
                       "os-version": "22.04"},
                      {"name": "w2", "group": "web", "host": "192.0.2.2", "private-ip": "10.0.0.2"})
    plans = plan(load(tmp_path, src), nodes)
    assert plans[("w1", "configure")][0].option("content") == (
        '["w1" "192.0.2.1" :ubuntu "22.04" "web" :configure ["w1" "w2"] ["192.0.2.1" "10.0.0.2"] 0 #{}]')
    assert plans[("w2", "configure")][0].option("content").startswith('["w2" "10.0.0.2" :debian "12"')
    # without an inventory each group is one node named after it
    assert plan(load(tmp_path, src), os="alpine-3.19")[("web", "configure")][0].option(
        "content").startswith('["web" nil :alpine "3.19" "web"')


def test_hadoop_cluster_slaves_authorize_the_jobtrackers_keys():
    """The talk's "keys of a user on another group": every slave authorizes the hadoop user's
    key that each job tracker published in its :settings phase."""
    p = load_project(EXAMPLES / "hadoop_cluster.pallet")
    assert [g.name for g in p.groups] == ["hadoop-jobtracker", "hadoop-slaves"]
    jt, slaves = p.groups
    assert jt.roles == {"jobtracker", "namenode"} and slaves.count == 30
    assert slaves.node_spec.hardware == {Keyword("min-ram"): 8192}
    assert slaves.node_spec.image[Keyword("os-64-bit")] is True
    nodes = inventory({"name": "jt-1", "group": "hadoop-jobtracker"},
                      {"name": "s-1", "group": "hadoop-slaves"},
                      {"name": "jt-2", "group": "hadoop-jobtracker"},
                      {"name": "s-2", "group": "hadoop-slaves"})
    targets = p.targets(nodes)
    plans = p.plan(targets)
    for jt_node in ("jt-1", "jt-2"):
        assert not [a for a in plans[(jt_node, "configure")] if "authorize" in a.label]
    bundles = {(b.node.name, b.phase): b for b in build_bundles(plans, targets, lambda n: b"")}
    for slave in ("s-1", "s-2"):
        auth = [a for a in plans[(slave, "configure")] if a.label.startswith("exec-checked-script")
                and "authorize-key" in a.label]
        assert [a.label for a in auth] == ["exec-checked-script authorize-key on user hadoop"] * 2
        assert {a.via for a in auth} == {
            (f"ssh-key/authorize-key ({EXAMPLES / 'hadoop_cluster.pallet'}:33:10)",)}
        labels_ = labels(plans[(slave, "configure")])
        assert labels_.index("exec-checked-script authorize-key on user hadoop") > labels_.index(
            "user hadoop")
        # hadoop/install gives the hadoop user the home /opt/hadoop: the key goes where
        # the node's passwd entry says, not to /home/hadoop
        (hadoop_user,) = [a for a in plans[(slave, "configure")] if a.label == "user hadoop"]
        assert hadoop_user.option("home") == "/opt/hadoop"
        script = bundles[(slave, "configure")].script
        for jt_node in ("jt-1", "jt-2"):
            key = f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx0n9pallet hadoop@{jt_node}"
            assert key in script
        assert 'home="$(pallet_passwd_field hadoop 6 || true)"' in script
        assert "/home/hadoop" not in script


# ---- action options: the evaluator and the renderer agree -------------------------------------


def test_per_packager_options_of_packages_and_package_source_compile(tmp_path):
    """(packages :apt [...] :yum [...]) as in Pallet, and package-source :dnf, from real
    source through the evaluator to the script."""
    src = '''
(def web (group-spec "web" :phases {:configure (phase-fn
  (packages :apt ["git" "curl"] :yum ["git-core"])
  (packages ["jq"] :apk ["jq-extra"] :action :install)
  (when (= (os-family) :rocky)
    (package-source "extra" :dnf {:url "https://repo.example.org/el9"})))}))
'''
    p = load(tmp_path, src)
    for os_name, expected in (("debian-12", "packages git curl jq"),
                              ("rocky-9", "packages git-core jq"),
                              ("alpine-3.20", "packages jq jq-extra")):
        targets = p.targets(None, os_name)
        plans = p.plan(targets)
        (bundle,) = build_bundles(plans, targets, lambda n: b"")
        assert f"pallet_begin 1 '{expected}'" in bundle.script or (
            f"pallet_begin 2 '{expected}'" in bundle.script), (os_name, bundle.script[-600:])
        if os_name == "rocky-9":
            assert "pallet_package_source /etc/yum.repos.d/extra.repo" in bundle.script
    assert error(tmp_path, GROUP.replace('(directory "/w")', '(packages :aptt ["x"])')) == (
        "main.pallet:1:68: packages: unknown option :aptt; did you mean :apt?")


def test_every_option_the_evaluator_accepts_the_renderer_knows():
    from pallet.compiler.plan import ACTION_ARITY, ACTION_OPTIONS as evaluator
    from pallet.crates import actions
    from pallet.crates.action_options import ACTION_OPTIONS as shared
    assert evaluator is shared and set(ACTION_ARITY) <= set(shared)
    for kind, options in shared.items():
        if kind in ("package", "packages"):
            continue  # gathered into the package step, checked there
        for option in options:
            action = Action(kind, (), ((option, None),))
            assert actions._options(action) == {option: None}


def test_ssh_key_finds_the_users_home_on_the_node(tmp_path):
    """authorize-key and generate-key look the home up on the node (getent passwd), so the key
    lands where sshd reads it even when the home is not /home/USER; :home names it instead."""
    import getpass
    import subprocess
    me = getpass.getuser()
    home, given = tmp_path / "elsewhere" / me, tmp_path / "given"
    home.mkdir(parents=True)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "getent").write_text(f'''#!/bin/sh
[ "$1" = passwd ] && [ "$2" = "{me}" ] && echo "{me}:x:0:0::{home}:/bin/sh" && exit 0
exit 2
''')
    (fake / "getent").chmod(0o755)
    src = f'''
(def g (group-spec "g" :phases {{:configure (phase-fn
  (ssh-key/authorize-key "{me}" "ssh-ed25519 AAAA one")
  (ssh-key/authorize-key "{me}" "ssh-ed25519 AAAA two" :home "{given}")
  (ssh-key/generate-key "{me}"))
  :missing (phase-fn (ssh-key/authorize-key "nosuchuser" "ssh-ed25519 AAAA x"))}}))
'''
    p = load(tmp_path, src)
    targets = p.targets(None, "debian-12")
    bundles = {b.phase: b for b in build_bundles(p.plan(targets), targets, lambda n: b"")}
    env = {"PATH": f"{fake}:/usr/bin:/bin", "LC_ALL": "C.UTF-8"}

    def run(phase):
        script = tmp_path / f"{phase}.sh"
        script.write_text(bundles[phase].script)
        return subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env,
                              timeout=60)

    first = run("configure")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "PALLET-SUMMARY ok=0 changed=3 failed=0" in first.stdout
    assert (home / ".ssh/authorized_keys").read_text() == "ssh-ed25519 AAAA one\n"
    assert oct((home / ".ssh").stat().st_mode & 0o777) == "0o700"  # generate-key's, made last
    assert oct((given / ".ssh").stat().st_mode & 0o777) == "0o755"
    assert (given / ".ssh/authorized_keys").read_text() == "ssh-ed25519 AAAA two\n"
    assert (home / ".ssh/id_ed25519.pub").read_text().startswith("ssh-ed25519 ")
    second = run("configure")
    assert "PALLET-SUMMARY ok=3 changed=0 failed=0" in second.stdout, second.stdout
    missing = run("missing")
    assert missing.returncode == 1
    assert "ssh-key: no user nosuchuser on this node (or it has no home)" in missing.stderr
    assert not Path("/home/nosuchuser").exists()


# ---- misuse inside and outside phases -----------------------------------------------------------

def test_actions_and_queries_only_inside_a_phase(tmp_path):
    assert error(tmp_path, '(file "/x")\n' + GROUP) == (
        "main.pallet:1:1: file is an action: call it inside a phase-fn or a crate function")
    assert error(tmp_path, '(def n (target-name))\n' + GROUP) == (
        "main.pallet:1:8: target-name: asks about the target node, so it works only inside a phase")
    src = '(def g (group-spec "g" :phases {:settings (phase-fn (directory "/x"))}))'
    assert error(tmp_path, src) == ("main.pallet:1:53: directory: the :settings phase computes "
                                    "settings; actions belong in other phases")
    src = '(def g (group-spec "g" :phases {:configure (phase-fn (directory 42))}))'
    assert error(tmp_path, src) == "main.pallet:1:65: directory: expected a string, got the number 42"
    src = '(def g (group-spec "g" :phases {:configure (phase-fn (fiel "/x"))}))'
    assert error(tmp_path, src) == "main.pallet:1:55: unknown symbol 'fiel'; did you mean 'file'?"
    src = '(def g (group-spec "g" :phases {:configure (phase-fn (file "/x" :mdoe "644"))}))'
    assert error(tmp_path, src) == "main.pallet:1:65: file: unknown option :mdoe; did you mean :mode?"


def test_an_undefined_phase_in_an_operation_is_located(tmp_path):
    assert error(tmp_path, GROUP + "(lift web :phase [:configure :deploy])") == (
        "main.pallet:2:18: lift: no group of this lift defines the phase :deploy (phases: :configure)")
    assert error(tmp_path, GROUP + "(converge {web 1} :phase :confgure)") == (
        "main.pallet:2:26: converge: no group of this converge defines the phase :confgure; "
        "did you mean :configure? (phases: :configure)")
    assert error(tmp_path, GROUP, phases=("nosuch",)) == (
        "error: --phase nosuch: no group of main.pallet defines the phase :nosuch (phases: :configure)")
