"""Pallet 0.8's crate API in the spec language: (ns ...) with :require/:use/:refer/:as of
Pallet's namespaces, multi-arity defn/defplan, {:pre ...} maps, defmulti-plan and
defmethod-plan, os-map and defmulti-version-plan, settings with Pallet's options,
update-settings, apply-map, with-source-line-comments, with-action-options, plan-when, atoms
at plan time; and the located errors for Pallet names this project lacks, Java interop,
deftype and future. (Pallet's own crates compiled as written: tests/test_pallet_code.py.)"""
from __future__ import annotations

import pytest

from pallet.compiler.inventory import parse_inventory
from pallet.compiler.project import load_project
from pallet.errors import PalletError

HEAD = """(ns my.crate
  (:require [pallet.actions :refer [package exec-checked-script remote-file]]
            [pallet.crate :refer [defplan defmulti-plan defmethod-plan assoc-settings
                                  get-settings update-settings]]
            [pallet.api :as api]
            [pallet.version-dispatch :refer [os-map os-map-lookup defmulti-version-plan
                                             defmethod-version-plan]]
            [pallet.utils :refer [apply-map]]
            [clojure.string :as string])
  (:use [pallet.stevedore :only [with-source-line-comments]]))
"""


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def compile_labels(tmp_path, body: str, os_spec: str = "debian-12", phase: str = "configure",
                   head: str = HEAD, nodes: int = 0) -> list[str]:
    (tmp_path / "main.pallet").write_text(head + body)
    project = load_project("main.pallet")
    inventory = parse_inventory("".join(
        f'[[node]]\nname = "n{i}"\nhost = "10.0.0.{i}"\ngroup = "g"\nos-family = "debian"\n'
        f'os-version = "12"\n' for i in range(1, nodes + 1)), "nodes.toml") if nodes else None
    plans = project.plan(project.targets(inventory, None if nodes else os_spec))
    return [a.label for (group, ph), actions in plans.items() if ph == phase for a in actions]


def error(tmp_path, body: str, head: str = HEAD) -> PalletError:
    with pytest.raises(PalletError) as info:
        compile_labels(tmp_path, body, head=head)
    return info.value


def note(expr: str) -> str:
    """A group whose configure phase records one step labelled with expr's value."""
    return f'(def g (api/group-spec "g" :phases {{:configure (api/plan-fn (exec-checked-script (str {expr}) (echo "x")))}}))'


def value_of(tmp_path, defs: str, expr: str, os_spec: str = "debian-12") -> str:
    (label,) = compile_labels(tmp_path, defs + "\n" + note(expr), os_spec)
    return label.removeprefix("exec-checked-script ")


def test_ns_refers_aliases_and_uses_pallet_namespaces(tmp_path):
    assert compile_labels(tmp_path, '(def g (api/group-spec "g" :phases {:configure (api/plan-fn '
                                    '(package "curl") (string/join "," ["a"]))}))') == ["package curl"]


def test_multi_arity_defn_and_preconditions(tmp_path):
    defs = """(defn greet ([] (greet "world")) ([who] (str "hello " who))
                ([who & more] (string/join ", " (cons who more))))
              (defn positive [x] {:pre [(pos? x)]} x)"""
    assert value_of(tmp_path, defs, '(greet) "/" (greet "a") "/" (greet "a" "b") "/" (positive 2)') == \
        "hello world/hello a/a, b/2"
    exc = error(tmp_path, defs + note("(positive -1)"))
    assert "precondition (pos? x) does not hold" in exc.message


def test_multi_arity_wrong_count_is_located(tmp_path):
    exc = error(tmp_path, '(defn f ([] 1) ([a] 2))' + note("(f 1 2)"))
    assert "f" in exc.message and exc.span is not None


def test_defmulti_plan_dispatches_on_its_function(tmp_path):
    body = """(defmulti-plan install (fn [kind] kind))
      (defmethod-plan install :pkg [kind] (package "curl"))
      (defmethod-plan install :script [kind] (exec-checked-script "by script" (echo "hi")))
      (def g (api/group-spec "g" :phases {:configure (api/plan-fn (install :script) (install :pkg))}))"""
    assert compile_labels(tmp_path, body) == ["exec-checked-script by script", "package curl"]


VERSIONS = """(def versions (os-map {{:os :linux} "generic" {:os :debian} "debian"
                                    {:os :ubuntu :os-version [[20] [24]]} "ubuntu"}))
(defmulti-version-plan vinstall [version])
(defmethod-version-plan vinstall {:os :debian-base} [os os-version version]
  (package (str "deb-" (string/join "." version))))
(defmethod-version-plan vinstall {:os :rh-base} [os os-version version]
  (package (str "rh-" (string/join "." version))))
(def g (api/group-spec "g" :phases {:configure (api/plan-fn
  (exec-checked-script (os-map-lookup versions) (echo "x")) (vinstall "1.2"))}))"""


@pytest.mark.parametrize("os_spec,expected", [
    ("debian-12", ["exec-checked-script debian", "package deb-1.2"]),
    ("ubuntu-22.04", ["exec-checked-script ubuntu", "package deb-1.2"]),
    ("centos-9", ["exec-checked-script generic", "package rh-1.2"])])
def test_os_map_and_version_plans_choose_by_the_node(tmp_path, os_spec, expected):
    assert compile_labels(tmp_path, VERSIONS, os_spec) == expected


def test_settings_with_pallet_options(tmp_path):
    body = """(defplan settings []
      (assoc-settings :app {:port 80})
      (assoc-settings :app {:port 90} {:instance-id :second})
      (update-settings :app update-in [:port] inc))
    (def g (api/group-spec "g" :phases {:settings (api/plan-fn (settings))
      :configure (api/plan-fn (exec-checked-script
        (str (:port (get-settings :app)) " " (:port (get-settings :app {:instance-id :second}))
             " " (:x (get-settings :missing {:default {:x 1}})))
        (echo "x")))}))"""
    assert compile_labels(tmp_path, body) == ["exec-checked-script 81 90 1"]


def test_apply_map_spreads_the_map_as_keyword_arguments(tmp_path):
    assert value_of(tmp_path, '(defn kw [a & {:keys [b c]}] (str a b c))',
                    '(apply-map kw 1 {:b 2 :c 3})') == "123"


def test_atoms_at_plan_time_are_each_nodes_own(tmp_path):
    body = """(def counter (atom 0))
      (def g (api/group-spec "g" :phases {:configure (api/plan-fn
        (swap! counter inc) (exec-checked-script (str "seen " @counter) (echo "x")))}))"""
    assert compile_labels(tmp_path, body, nodes=2) == ["exec-checked-script seen 1"] * 2


def test_with_source_line_comments_plan_when_and_action_options(tmp_path):
    body = """(def g (api/group-spec "g" :phases {:configure (api/plan-fn
        (with-source-line-comments false (package "a"))
        (pallet.actions/plan-when (= 1 1) (package "b"))
        (pallet.actions/plan-when-not (= 1 1) (package "c"))
        (pallet.action/with-action-options {:always-before :x} (package "d")))}))"""
    assert compile_labels(tmp_path, body) == ["package a", "package b", "package d"]


@pytest.mark.parametrize("body,message", [
    ('(def g (api/group-spec "g" :phases {:configure (api/plan-fn (pallet.actions/rsync "a" "b"))}))',
     "pallet.actions/rsync is a Pallet name not yet supported here"),
    ('(def x (pallet.crate/service-phases :x {} nil))',
     "pallet.crate/service-phases is a Pallet name not yet supported here"),
    ('(require \'[pallet.compute.jclouds :as j])',
     "pallet.compute.jclouds is a Pallet namespace not yet supported here"),
    ('(def x (.toUpperCase "a"))', "Java interop"),
    ('(def x (String. "a"))', "Java interop"),
    ('(def x (System/getenv "HOME"))', "Java interop"),
    ('(deftype Foo [a])', "deftype defines Java classes"),
    ('(def x (future 1))', "future runs code concurrently"),
])
def test_what_this_dialect_cannot_run_is_a_located_error(tmp_path, body, message):
    exc = error(tmp_path, body)
    assert message in exc.message
    assert exc.span is not None and exc.span.line >= HEAD.count("\n") + 1


def test_a_referred_pallet_name_not_supported_errors_where_it_is_used(tmp_path):
    head = "(ns x (:require [pallet.actions :refer [rsync package]]))\n"
    exc = error(tmp_path, '(def g (group-spec "g" :phases {:configure (plan-fn (rsync "a" "b"))}))',
                head=head)
    assert "rsync" in exc.message and "Pallet name" in exc.message and exc.span.line == 2
