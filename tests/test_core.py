"""The core library (compiler/core/), evaluated from real source text through the evaluator.

Each case is an expression and the value it must give, written back as EDN (pr-str), so that
`2` and `2.0`, `true` and `1`, `"a"` and `:a` stay apart. Error cases give the located message,
`file:line:col: message`, pointing at the argument at fault.
"""
from __future__ import annotations

import re

import pytest

from pallet.compiler.core import CORE, Regex, pr_str
from pallet.compiler.evaluator import Evaluator
from pallet.errors import PalletError
from pallet.grammar.forms import Keyword, Symbol


def _loader(name, relative_to):
    raise PalletError(f"no namespace {name} in these tests")


def load(src: str):
    ev = Evaluator(CORE, _loader)
    return ev.load_text(src, "t.pallet")


def value(expr: str):
    return load(f"(def r {expr})").env.vars["r"]


def error(src: str) -> str:
    with pytest.raises(PalletError) as info:
        load(src)
    return str(info.value).splitlines()[0]


CASES = [
    ('(check-option :port 80 integer? "a port number")', '80'),
    ('(check-option :port nil integer? "a port number")', 'nil'),
    # str and printing
    ('(str)', '""'),
    ('(str nil)', '""'),
    ('(str "a" 1 1.0 true false :kw :ns/kw \'sym nil "b")', '"a11.0truefalse:kw:ns/kwsymb"'),
    ('(str [1 "a" nil] {:a "x" :b 2} #{3 1 2} (list 1 2))',
     r'"[1 \"a\" nil]{:a \"x\", :b 2}#{1 2 3}[1 2]"'),
    ('(str 100.0 0.5 -0.0 1.0E20 0.0001 12345678.9 -1.5E-10)', '"100.00.5-0.01.0E201.0E-41.23456789E7-1.5E-10"'),
    ('(str 123456789012345678901234567890)', '"123456789012345678901234567890"'),
    ('(pr-str "a\\"b\\n" :k \'s [1 2] {:a "x"} #{:b :a} nil true 1.5)',
     r'"\"a\\\"b\\n\" :k s [1 2] {:a \"x\"} #{:a :b} nil true 1.5"'),
    ('(pr-str)', '""'),
    ('(print-str "a" ["b" :c])', '"a [b :c]"'),
    ('(pr-str (re-pattern "a+"))', r'"#\"a+\""'),
    # format: java.util.Formatter
    ('(format "%s|%S|%5s|%-5s|%.2s" "ab" "ab" "ab" "ab" "abc")', '"ab|AB|   ab|ab   |ab"'),
    ('(format "%s %s %s %s %s" nil :k 1.0 [1 "a"] true)', r'"null :k 1.0 [1 \"a\"] true"'),
    ('(format "%d|%5d|%-5d|%05d|%,d|%+d|% d|%(d|%,d" 42 42 42 42 1234567 5 5 -7 -1234)',
     '"42|   42|42   |00042|1,234,567|+5| 5|(7)|-1,234"'),
    ('(format "%.2f|%f|%.0f|%.1f|%.1f|%.2f|%.2f" 3.14159 1 2.5 0.25 0.15 0.125 1.005)',
     '"3.14|1.000000|3|0.3|0.2|0.13|1.01"'),
    ('(format "%08.3f|%-8.2f|%,.2f|%010.2f|%+.1f" -3.14159 2.5 1234567.891 -1.5 2.0)',
     '"-003.142|2.50    |1,234,567.89|-000001.50|+2.0"'),
    ('(format "%e|%.3E|%.1e|%e" 12345.678 0.000123 0.05 0.0)',
     '"1.234568e+04|1.230E-04|5.0e-02|0.000000e+00"'),
    ('(format "%g|%g|%g|%.3g|%g|%g" 1.0 0.0001 123456789.0 1234567.0 0.0 100000.0)',
     '"1.00000|0.000100000|1.23457e+08|1.23e+06|0.00000|100000"'),
    ('(format "%x|%X|%o|%#x|%#o|%x|%o|%4x|%04x" 255 255 8 255 8 -1 -8 10 10)',
     '"ff|FF|10|0xff|010|ffffffffffffffff|1777777777777777777770|   a|000a"'),
    ('(format "%c%c|%b|%b|%b|%B" 65 "z" nil false 0 true)', '"Az|false|false|true|TRUE"'),
    ('(format "100%%|%5%|a%nb")', '"100%|    %|a\\nb"'),
    ('(format "%2$s %1$s %<s %s" "a" "b")', '"b a a a"'),
    ('(format "%.3f" 1.0E20)', '"100000000000000000000.000"'),
    ('(format "no args")', '"no args"'),
    # keywords, symbols, names
    ('(keyword "a")', ':a'),
    ('(keyword "ns" "a")', ':ns/a'),
    ('(keyword nil "a")', ':a'),
    ('(keyword :a)', ':a'),
    ("(keyword 'x)", ':x'),
    ('(keyword nil)', 'nil'),
    ('(symbol "x")', 'x'),
    ('(symbol "ns" "x")', 'ns/x'),
    ('(symbol :k)', 'k'),
    ('(name :ns/a)', '"a"'),
    ('(name :a)', '"a"'),
    ('(name "s")', '"s"'),
    ("(name 'ns/x)", '"x"'),
    ('(namespace :ns/a)', '"ns"'),
    ('(namespace :a)', 'nil'),
    # maps
    ('(get {:a 1} :a)', '1'),
    ('(get {:a 1} :b)', 'nil'),
    ('(get {:a 1} :b 0)', '0'),
    ('(get [10 20] 1)', '20'),
    ('(get [10 20] -1)', 'nil'),
    ('(get "abc" 1)', '"b"'),
    ('(get #{:a} :a)', ':a'),
    ('(get nil :a)', 'nil'),
    ('(get 5 :a)', 'nil'),
    ('(get {true :t} 1)', 'nil'),
    ('(get {1 :one} true)', 'nil'),
    ('(get {[1 2] :v} [1 2])', ':v'),
    ('(get-in {:a {:b [1 {:c 3}]}} [:a :b 1 :c])', '3'),
    ('(get-in {:a 1} [:x :y] :none)', ':none'),
    ('(get-in {:a {:b nil}} [:a :b] :none)', 'nil'),
    ('(get-in {:a 1} [])', '{:a 1}'),
    ('(assoc {:a 1} :b 2 :c 3)', '{:a 1, :b 2, :c 3}'),
    ('(assoc {:a 1 :b 2} :a 9)', '{:a 9, :b 2}'),
    ('(assoc nil :a 1)', '{:a 1}'),
    ('(assoc [1 2] 0 :x)', '[:x 2]'),
    ('(assoc [1 2] 2 3)', '[1 2 3]'),
    ('(assoc-in {} [:a :b] 1)', '{:a {:b 1}}'),
    ('(assoc-in {:a {:x 0}} [:a :b] 1)', '{:a {:x 0, :b 1}}'),
    ('(assoc-in {:a [0 1]} [:a 1] :y)', '{:a [0 :y]}'),
    ('(dissoc {:a 1 :b 2 :c 3} :a :c)', '{:b 2}'),
    ('(dissoc nil :a)', 'nil'),
    ('(update {:a 1} :a inc)', '{:a 2}'),
    ('(update {:a 1} :a + 10 20)', '{:a 31}'),
    ('(update {} :n (fnil inc 0))', '{:n 1}'),
    ('(update [1 2] 0 inc)', '[2 2]'),
    ('(update-in {:a {:b 1}} [:a :b] inc)', '{:a {:b 2}}'),
    ('(update-in {} [:a :b] (fnil + 0) 5)', '{:a {:b 5}}'),
    ('(merge {:a 1} nil {:b 2} {:a 3})', '{:a 3, :b 2}'),
    ('(merge)', 'nil'),
    ('(merge nil nil)', 'nil'),
    ('(merge-with + {:a 1} {:a 2 :b 3} nil)', '{:a 3, :b 3}'),
    ('(merge-with into {:a [1]} {:a [2]})', '{:a [1 2]}'),
    ('(keys {:a 1 :b 2})', '[:a :b]'),
    ('(keys {})', 'nil'),
    ('(vals {:a 1 :b 2})', '[1 2]'),
    ('(vals nil)', 'nil'),
    ('(contains? {:a nil} :a)', 'true'),
    ('(contains? {:a 1} :b)', 'false'),
    ('(contains? #{1 2} 2)', 'true'),
    ('(contains? [:x :y] 1)', 'true'),
    ('(contains? [:x :y] 2)', 'false'),
    ('(contains? "ab" 1)', 'true'),
    ('(contains? nil :a)', 'false'),
    ('(contains? {false 1} 0)', 'false'),
    ('(contains? #{1} true)', 'false'),
    ('(find {:a 1} :a)', '[:a 1]'),
    ('(find {:a 1} :b)', 'nil'),
    ('(select-keys {:a 1 :b 2 :c 3} [:c :a :z])', '{:c 3, :a 1}'),
    ('(select-keys nil [:a])', '{}'),
    ('(zipmap [:a :b :c] [1 2])', '{:a 1, :b 2}'),
    ('(update-keys {:a 1 :b 2} name)', '{"a" 1, "b" 2}'),
    ('(update-vals {:a 1 :b 2} inc)', '{:a 2, :b 3}'),
    ('(reduce-kv (fn [acc k v] (conj acc [v k])) [] {:a 1 :b 2})', '[[1 :a] [2 :b]]'),
    ('(frequencies [:a :b :a "a" 1 1])', '{:a 2, :b 1, "a" 1, 1 2}'),
    ('(group-by odd? [1 2 3 4 5])', '{true [1 3 5], false [2 4]}'),
    ('(group-by :g [{:g 1 :n :a} {:g 2 :n :b} {:g 1 :n :c}])',
     '{1 [{:g 1, :n :a} {:g 1, :n :c}], 2 [{:g 2, :n :b}]}'),
    # collections
    ('(conj [1] 2 3)', '[1 2 3]'),
    ('(conj (list 1) 2)', '[1 2]'),
    ('(conj nil 1 2)', '[1 2]'),
    ('(conj {:a 1} [:b 2] {:c 3})', '{:a 1, :b 2, :c 3}'),
    ('(conj #{1} 2 1)', '#{1 2}'),
    ('(conj)', '[]'),
    ('(disj #{1 2 3} 1 3)', '#{2}'),
    ('(into [] #{2 1})', '[1 2]'),
    ('(into [0] (list 1 2))', '[0 1 2]'),
    ('(into {} [[:a 1] [:b 2]])', '{:a 1, :b 2}'),
    ('(into {:a 0} {:b 1})', '{:a 0, :b 1}'),
    ('(into #{} [1 2 2])', '#{1 2}'),
    ('(into nil [1 2])', '[1 2]'),
    ('(concat [1] (list 2) nil "ab" {:k 1})', '[1 2 "a" "b" [:k 1]]'),
    ('(concat)', '[]'),
    ('(vec #{2 1})', '[1 2]'),
    ('(vec nil)', '[]'),
    ('(vec {:a 1})', '[[:a 1]]'),
    ('(vector 1 :a)', '[1 :a]'),
    ('(vector)', '[]'),
    ('(list 1 2)', '[1 2]'),
    ('(hash-map :a 1 :b 2)', '{:a 1, :b 2}'),
    ('(array-map)', '{}'),
    ('(hash-set 1 2 1)', '#{1 2}'),
    ('(set [1 1 2])', '#{1 2}'),
    ('(set nil)', '#{}'),
    ('(empty [1])', '[]'),
    ('(empty {:a 1})', '{}'),
    ('(empty #{1})', '#{}'),
    ('(empty nil)', 'nil'),
    ('(seq [])', 'nil'),
    ('(seq nil)', 'nil'),
    ('(seq [1])', '[1]'),
    ('(seq {:a 1})', '[[:a 1]]'),
    ('(seq "ab")', '["a" "b"]'),
    ('(seq #{:b :a})', '[:a :b]'),
    ('(count [1 2])', '2'),
    ('(count {:a 1})', '1'),
    ('(count #{})', '0'),
    ('(count "abc")', '3'),
    ('(count nil)', '0'),
    ('(empty? [])', 'true'),
    ('(empty? nil)', 'true'),
    ('(empty? "")', 'true'),
    ('(empty? {:a 1})', 'false'),
    ('(not-empty [])', 'nil'),
    ('(not-empty [1])', '[1]'),
    ('(not-empty "")', 'nil'),
    # sequences
    ('(first [1 2])', '1'),
    ('(first [])', 'nil'),
    ('(first nil)', 'nil'),
    ('(first {:a 1})', '[:a 1]'),
    ('(first "xy")', '"x"'),
    ('(second [1 2])', '2'),
    ('(second [1])', 'nil'),
    ('(last [1 2 3])', '3'),
    ('(last [])', 'nil'),
    ('(rest [1 2 3])', '[2 3]'),
    ('(rest [])', '[]'),
    ('(rest nil)', '[]'),
    ('(next [1 2])', '[2]'),
    ('(next [1])', 'nil'),
    ('(butlast [1 2 3])', '[1 2]'),
    ('(butlast [1])', 'nil'),
    ('(cons 0 [1 2])', '[0 1 2]'),
    ('(cons 0 nil)', '[0]'),
    ('(nth [1 2 3] 1)', '2'),
    ('(nth "abc" 2)', '"c"'),
    ('(nth [1] 5 :none)', ':none'),
    ('(nth nil 0)', 'nil'),
    ('(peek [1 2])', '2'),
    ('(take 2 [1 2 3])', '[1 2]'),
    ('(take 5 [1 2])', '[1 2]'),
    ('(take -1 [1 2])', '[]'),
    ('(drop 2 [1 2 3])', '[3]'),
    ('(drop -1 [1 2])', '[1 2]'),
    ('(take-last 2 [1 2 3])', '[2 3]'),
    ('(take-last 0 [1 2 3])', '[]'),
    ('(drop-last [1 2 3])', '[1 2]'),
    ('(drop-last 2 [1 2 3])', '[1]'),
    ('(take-while odd? [1 3 4 5])', '[1 3]'),
    ('(drop-while odd? [1 3 4 5])', '[4 5]'),
    ('(drop-while odd? [1 3])', '[]'),
    ('(reverse [1 2 3])', '[3 2 1]'),
    ('(reverse nil)', '[]'),
    ('(reverse "ab")', '["b" "a"]'),
    ('(range 4)', '[0 1 2 3]'),
    ('(range 1 4)', '[1 2 3]'),
    ('(range 1 10 3)', '[1 4 7]'),
    ('(range 5 0 -2)', '[5 3 1]'),
    ('(range 0 1 0.25)', '[0 0.25 0.5 0.75]'),
    ('(range 3 3 0)', '[]'),
    ('(range -2)', '[]'),
    ('(repeat 3 :x)', '[:x :x :x]'),
    ('(distinct [1 2 1 3 2])', '[1 2 3]'),
    ('(distinct [1 true 1.0 {:a 1} {:a 1} [1] [true]])', '[1 true {:a 1} [1] [true]]'),
    ('(interpose ", " ["a" "b" "c"])', '["a" ", " "b" ", " "c"]'),
    ('(interpose 0 [])', '[]'),
    ('(interleave [1 2 3] [:a :b])', '[1 :a 2 :b]'),
    ('(flatten [1 [2 (list 3 [4])] [] 5])', '[1 2 3 4 5]'),
    ('(flatten [{:a [1]} #{2}])', '[{:a [1]} #{2}]'),
    ('(flatten 5)', '[]'),
    ('(partition 2 [1 2 3 4 5])', '[[1 2] [3 4]]'),
    ('(partition 2 1 [1 2 3])', '[[1 2] [2 3]]'),
    ('(partition-all 2 [1 2 3 4 5])', '[[1 2] [3 4] [5]]'),
    ('(partition-all 2 3 [1 2 3 4 5])', '[[1 2] [4 5]]'),
    ('(sort [3 1 2])', '[1 2 3]'),
    ('(sort [2.5 1 3])', '[1 2.5 3]'),
    ('(sort ["b" "a" "C"])', '["C" "a" "b"]'),
    ('(sort [:b :a/x :a])', '[:a :b :a/x]'),
    ('(sort [[1 2] [1] [0 5]])', '[[1] [0 5] [1 2]]'),
    ('(sort [nil 1 nil])', '[nil nil 1]'),
    ('(sort [true false])', '[false true]'),
    ('(sort #{3 1 2})', '[1 2 3]'),
    ('(sort {:b 1 :a 2})', '[[:a 2] [:b 1]]'),
    ('(sort > [1 3 2])', '[3 2 1]'),
    ('(sort compare [3 1 2])', '[1 2 3]'),
    ('(sort (fn [a b] (- b a)) [1 3 2])', '[3 2 1]'),
    ('(sort-by :n [{:n 2} {:n 1} {:n 3}])', '[{:n 1} {:n 2} {:n 3}]'),
    ('(sort-by count > ["a" "abc" "ab"])', '["abc" "ab" "a"]'),
    ('(sort-by first [[2 :a] [1 :b] [2 :c] [1 :d]])', '[[1 :b] [1 :d] [2 :a] [2 :c]]'),
    ('(sort-by :a [{:a nil} {:a "x"}])', '[{:a nil} {:a "x"}]'),
    ('(compare 1 2)', '-1'),
    ('(compare "b" "a")', '1'),
    ('(compare [1 2] [1 2])', '0'),
    # functions of functions
    ('(map inc [1 2 3])', '[2 3 4]'),
    ('(map + [1 2] [10 20 30])', '[11 22]'),
    ('(map :a [{:a 1} {:b 2}])', '[1 nil]'),
    ('(map {:a 1} [:a :b])', '[1 nil]'),
    ('(map #{1} [1 2])', '[1 nil]'),
    ('(map (fn [[k v]] [v k]) {:a 1})', '[[1 :a]]'),
    ('(map inc nil)', '[]'),
    ('(mapv inc [1])', '[2]'),
    ('(map-indexed vector [:a :b])', '[[0 :a] [1 :b]]'),
    ('(mapcat (fn [x] [x x]) [1 2])', '[1 1 2 2]'),
    ('(mapcat vector [1 2] [:a :b])', '[1 :a 2 :b]'),
    ('(filter even? (range 7))', '[0 2 4 6]'),
    ('(filter (fn [[k v]] (> v 1)) {:a 1 :b 2})', '[[:b 2]]'),
    ('(filterv odd? [1 2 3])', '[1 3]'),
    ('(remove odd? [1 2 3])', '[2]'),
    ('(keep (fn [x] (when (odd? x) (* x 10))) [1 2 3])', '[10 30]'),
    ('(keep identity [1 nil false 2])', '[1 false 2]'),
    ('(reduce + [1 2 3])', '6'),
    ('(reduce + 10 [1 2 3])', '16'),
    ('(reduce + [])', '0'),
    ('(reduce * [5])', '5'),
    ('(reduce conj [] {:a 1})', '[[:a 1]]'),
    ('(reduce (fn [m [k v]] (assoc m v k)) {} {:a 1})', '{1 :a}'),
    ('(some even? [1 3 4])', 'true'),
    ('(some :a [{:b 1} {:a 2}])', '2'),
    ('(some even? [1 3])', 'nil'),
    ('(some #{:x} [:a :x])', ':x'),
    ('(every? even? [2 4])', 'true'),
    ('(every? even? [])', 'true'),
    ('(every? even? [2 3])', 'false'),
    ('(not-every? odd? [1 2])', 'true'),
    ('(not-any? odd? [2 4])', 'true'),
    ('(max-key count "a" "abc" "ab")', '"abc"'),
    ('(min-key count "abc" "a" "ab")', '"a"'),
    ('(identity [1])', '[1]'),
    ('((constantly 5) 1 2)', '5'),
    ('((constantly nil))', 'nil'),
    ('(apply + [1 2])', '3'),
    ('(apply + 1 2 [3 4])', '10'),
    ('(apply str "a" #{:b})', '"a:b"'),
    ('(apply max [3 9 2])', '9'),
    ('((partial + 1 2) 3 4)', '10'),
    ('((partial str "x"))', '"x"'),
    ('((comp inc inc) 1)', '3'),
    ('((comp str +) 1 2)', '"3"'),
    ('((comp) 7)', '7'),
    ('((comp name :k) {:k :v})', '"v"'),
    ('((complement nil?) 1)', 'true'),
    ('((juxt :a :b) {:a 1 :b 2})', '[1 2]'),
    ('((fnil inc 0) nil)', '1'),
    ('((fnil + 0 0) nil nil)', '0'),
    ('((fnil + 0) 5 1)', '6'),
    # equality and logic
    ('(= 1 1)', 'true'),
    ('(= 1 true)', 'false'),
    ('(= 0 false)', 'false'),
    ('(= true true)', 'true'),
    ('(= [1] [true])', 'false'),
    ('(= {:a 1} {:a true})', 'false'),
    ('(= #{1} #{true})', 'false'),
    ('(= {1 :x} {true :x})', 'false'),
    ('(= 1 1.0)', 'true'),
    ('(= "a" :a)', 'false'),
    ("(= :a 'a)", 'false'),
    ('(= [1 [2 {:a #{3}}]] (list 1 (vector 2 (hash-map :a (hash-set 3)))))', 'true'),
    ('(= {:a 1 :b 2} {:b 2 :a 1})', 'true'),
    ('(= nil nil)', 'true'),
    ('(= nil false)', 'false'),
    ('(= 1 1 1)', 'true'),
    ('(= 1 1 2)', 'false'),
    ('(= 1)', 'true'),
    ('(not= 1 2)', 'true'),
    ('(not= 1 1)', 'false'),
    ('(not= 1 true)', 'true'),
    ('(not nil)', 'true'),
    ('(not false)', 'true'),
    ('(not 0)', 'false'),
    ('(not "")', 'false'),
    ('(boolean nil)', 'false'),
    ('(boolean 0)', 'true'),
    # arithmetic
    ('(+)', '0'),
    ('(+ 1 2 3.5)', '6.5'),
    ('(- 5)', '-5'),
    ('(- 10 1 2)', '7'),
    ('(*)', '1'),
    ('(* 2 3 4)', '24'),
    ('(* 1.5 2)', '3.0'),
    ('(/ 6 3)', '2'),
    ('(/ 7 2)', '3.5'),
    ('(/ 2)', '0.5'),
    ('(/ 1)', '1'),
    ('(/ 4.0 2)', '2.0'),
    ('(/ 60 2 3)', '10'),
    ('(inc 1)', '2'),
    ('(inc 1.5)', '2.5'),
    ('(dec 1)', '0'),
    ('(max 1 5 3)', '5'),
    ('(max 1 2.0)', '2.0'),
    ('(min 4 2 3)', '2'),
    ('(abs -3)', '3'),
    ('(mod 7 2)', '1'),
    ('(mod -7 2)', '1'),
    ('(mod 7 -2)', '-1'),
    ('(rem 7 2)', '1'),
    ('(rem -7 2)', '-1'),
    ('(rem 7.5 2)', '1.5'),
    ('(quot 7 2)', '3'),
    ('(quot -7 2)', '-3'),
    ('(quot 7.5 2)', '3.0'),
    ('(quot 100000000000000000001 10)', '10000000000000000000'),
    ('(< 1 2 3)', 'true'),
    ('(< 1 3 2)', 'false'),
    ('(> 3 2 1)', 'true'),
    ('(<= 1 1 2)', 'true'),
    ('(>= 2 2 3)', 'false'),
    ('(< 1)', 'true'),
    ('(== 1 1.0)', 'true'),
    ('(int 3.7)', '3'),
    ('(int -3.7)', '-3'),
    ('(double 3)', '3.0'),
    ('(float 1)', '1.0'),
    ('(+ 1.0E308 1.0E308)', '##Inf'),
    # predicates
    ('(nil? nil)', 'true'),
    ('(nil? false)', 'false'),
    ('(some? false)', 'true'),
    ('(some? nil)', 'false'),
    ('(string? "a")', 'true'),
    ('(string? :a)', 'false'),
    ('(number? 1.5)', 'true'),
    ('(number? true)', 'false'),
    ('(integer? 1)', 'true'),
    ('(integer? 1.0)', 'false'),
    ('(integer? true)', 'false'),
    ('(int? 1)', 'true'),
    ('(float? 1.0)', 'true'),
    ('(double? 1)', 'false'),
    ('(boolean? false)', 'true'),
    ('(keyword? :a)', 'true'),
    ('(keyword? "a")', 'false'),
    ("(symbol? 'a)", 'true'),
    ('(map? {})', 'true'),
    ('(map? [])', 'false'),
    ('(vector? [])', 'true'),
    ("(list? '(1))", 'true'),
    ('(seq? [1])', 'true'),
    ('(sequential? [1])', 'true'),
    ('(sequential? {})', 'false'),
    ('(coll? {})', 'true'),
    ('(coll? "s")', 'false'),
    ('(set? #{})', 'true'),
    ('(fn? inc)', 'true'),
    ('(fn? (fn [] 1))', 'true'),
    ('(fn? :a)', 'false'),
    ('(ifn? :a)', 'true'),
    ('(true? true)', 'true'),
    ('(true? 1)', 'false'),
    ('(false? false)', 'true'),
    ('(false? nil)', 'false'),
    ('(even? 2)', 'true'),
    ('(even? -3)', 'false'),
    ('(odd? -3)', 'true'),
    ('(pos? 1)', 'true'),
    ('(pos? 0)', 'false'),
    ('(neg? -0.5)', 'true'),
    ('(zero? 0)', 'true'),
    ('(zero? 0.0)', 'true'),
    ('(type nil)', ':nil'),
    ('(type true)', ':boolean'),
    ('(type 1)', ':integer'),
    ('(type 1.5)', ':float'),
    ('(type "s")', ':string'),
    ('(type :k)', ':keyword'),
    ("(type 'x)", ':symbol'),
    ('(type [1])', ':vector'),
    ('(type {})', ':map'),
    ('(type #{})', ':set'),
    ('(type inc)', ':fn'),
    ('(type (fn [] 1))', ':fn'),
    ('(type (re-pattern "x"))', ':regex'),
    # strings
    ('(subs "hello" 1)', '"ello"'),
    ('(subs "hello" 1 3)', '"el"'),
    ('(subs "hello" 5)', '""'),
    ('(join [1 2 3])', '"123"'),
    ('(join ", " [1 "a" nil :k])', '"1, a, , :k"'),
    ('(join "-" #{"b" "a"})', '"a-b"'),
    ('(str/join "," ["x" "y"])', '"x,y"'),
    ('(string/join ["x" "y"])', '"xy"'),
    ('(clojure.string/join " " ["x" "y"])', '"x y"'),
    ('(split "a,b,c" ",")', '["a" "b" "c"]'),
    ('(split "a,b,,c,," ",")', '["a" "b" "" "c"]'),
    ('(split ",a" ",")', '["" "a"]'),
    ('(split "" ",")', '[""]'),
    ('(split "abc" "")', '["a" "b" "c"]'),
    ('(split "a b  \\tc" "\\\\s+")', '["a" "b" "c"]'),
    ('(split "a,b,c" "," 2)', '["a" "b,c"]'),
    ('(split "a,b,," "," -1)', '["a" "b" "" ""]'),
    ('(split "a.b" (re-pattern "\\\\."))', '["a" "b"]'),
    ('(str/split "k=v" "=")', '["k" "v"]'),
    ('(split-lines "a\\nb\\r\\nc")', '["a" "b" "c"]'),
    ('(trim "  a b \\n")', '"a b"'),
    ('(triml "  a ")', '"a "'),
    ('(trimr "  a ")', '"  a"'),
    ('(trim-newline "a\\r\\n")', '"a"'),
    ('(str/trim " x ")', '"x"'),
    ('(upper-case "abc")', '"ABC"'),
    ('(str/upper-case "abc")', '"ABC"'),
    ('(lower-case "ABC")', '"abc"'),
    ('(str/lower-case "ABC")', '"abc"'),
    ('(capitalize "hELLO")', '"Hello"'),
    ('(replace "a.b.c" "." "-")', '"a-b-c"'),
    ('(replace "aaa" "a" "$1")', '"$1$1$1"'),
    ('(replace "a1b22" (re-pattern "(\\\\d+)") "<$1>")', '"a<1>b<22>"'),
    ('(replace "a1" (re-pattern "(?<d>\\\\d)") "${d}${d}\\\\$")', '"a11$"'),
    ('(replace {:a 1 :b 2} [:a :c :b])', '[1 :c 2]'),
    ('(str/replace "hello" "l" "L")', '"heLLo"'),
    ('(str/replace "hello" (re-pattern "l+") (fn [m] (upper-case m)))', '"heLLo"'),
    ('(str/replace "k=v" (re-pattern "(\\\\w)=(\\\\w)") (fn [[_ k v]] (str v "=" k)))', '"v=k"'),
    ('(replace-first "aaa" "a" "b")', '"baa"'),
    ('(str/replace-first "a1b2" (re-pattern "\\\\d") "#")', '"a#b2"'),
    ('(blank? nil)', 'true'),
    ('(blank? " \\t")', 'true'),
    ('(blank? " x ")', 'false'),
    ('(str/blank? "")', 'true'),
    ('(starts-with? "abc" "ab")', 'true'),
    ('(str/starts-with? "abc" "b")', 'false'),
    ('(ends-with? "abc" "bc")', 'true'),
    ('(str/ends-with? "abc" "b")', 'false'),
    ('(includes? "abc" "b")', 'true'),
    ('(str/includes? "abc" "x")', 'false'),
    ('(index-of "abcb" "b")', '1'),
    ('(index-of "abcb" "b" 2)', '3'),
    ('(index-of "abc" "x")', 'nil'),
    ('(last-index-of "abcb" "b")', '3'),
    ('(str/reverse "abc")', '"cba"'),
    ('(re-find "\\\\d+" "x 12-34 y")', '"12"'),
    ('(re-find "(\\\\d+)-(\\\\d+)" "x 12-34 y")', '["12-34" "12" "34"]'),
    ('(re-find "(a)|(b)" "b")', '["b" nil "b"]'),
    ('(re-find "z" "abc")', 'nil'),
    ('(re-matches "\\\\d+" "123")', '"123"'),
    ('(re-matches "\\\\d+" "123a")', 'nil'),
    ('(re-matches "(\\\\w+)@(\\\\w+)" "me@host")', '["me@host" "me" "host"]'),
    ('(re-matches (re-pattern "[a-z]+") "abc")', '"abc"'),
    ('(re-seq "\\\\d" "a1b2")', '["1" "2"]'),
    ('(re-seq "\\\\d" "ab")', 'nil'),
    ('(re-pattern "a+")', '#"a+"'),
    ('(re-find "(?<word>[a-z]+)-\\\\k<word>" "x ab-ab")', '["ab-ab" "ab"]'),
    ('(re-find "(?<=a)b" "ab")', '"b"'),
    # parsing
    ('(parse-long "42")', '42'),
    ('(parse-long "-7")', '-7'),
    ('(parse-long "+7")', '7'),
    ('(parse-long "4x")', 'nil'),
    ('(parse-long " 4")', 'nil'),
    ('(parse-long "1_000")', 'nil'),
    ('(parse-int "12")', '12'),
    ('(parse-double "1.5")', '1.5'),
    ('(parse-double "1e3")', '1000.0'),
    ('(parse-double "x")', 'nil'),
    ('(parse-boolean "true")', 'true'),
    ('(parse-boolean "yes")', 'nil'),
    ('(Integer/parseInt "123")', '123'),
    ('(Integer/parseInt "-ff" 16)', '-255'),
    ('(Long/parseLong "99999999999")', '99999999999'),
    ('(Integer/valueOf "7")', '7'),
    ('(Long/valueOf "-7")', '-7'),
    ('(Double/parseDouble "2.5")', '2.5'),
    # errors as values
    ('(ex-message (ex-info "boom" {:a 1}))', '"boom"'),
    ('(ex-data (ex-info "boom" {:a 1}))', '{:a 1}'),
    ('(ex-message "not an error")', 'nil'),
    # the reader's Clojure syntax, evaluated
    ('(map #(* 2 %) [1 2 3])', '[2 4 6]'),
    ('(#(str %1 "-" %2 (count %&)) "a" "b" 1 2)', '"a-b2"'),
    ("(#'inc 1)", '2'),
    ("(let [b 2 c [3 4]] `(a ~b ~@c))", '[a 2 3 4]'),
    ("(let [[x y] `(v# v#)] (= x y))", 'true'),
    ('(re-find #"\\d+" "ab123")', '"123"'),
    ('(clojure.string/split "a/b/c" #"/")', '["a" "b" "c"]'),
    ('(clojure.string/replace "a-b" #"-(.)" "$1")', '"ab"'),
    ('(re-pattern #"x")', '#"x"'),
    ('(str \\a \\b \\/)', '"ab/"'),
    ('(apply str (interpose \\, ["a" "b"]))', '"a,b"'),
    ('::k', ':user/k'),
    ('(let [^String s "x"] s)', '"x"'),
]


@pytest.mark.parametrize("expr,expected", CASES, ids=[c[0] for c in CASES])
def test_core_function(expr, expected):
    assert pr_str(value(expr)) == expected


def test_every_core_function_is_exercised():
    used = set()
    for expr, _ in CASES:
        used.update(re.findall(r"[(\s\[]([^\s()\[\]{}\"#']+)", expr))
    for _, src in ERRORS:
        used.update(re.findall(r"[(\s\[]([^\s()\[\]{}\"#']+)", src))
    # clojure.string functions answer to str/x, string/x and clojure.string/x (and mostly x)
    prefixes = ("str/", "string/", "clojure.string/")
    covered = {n for n in CORE if n in used or (n.startswith(prefixes) and (
        n.split("/", 1)[1] in used or any(p + n.split("/", 1)[1] in used for p in prefixes)))}
    missing = sorted(set(CORE) - covered - {"fail", "throw", "ex-info"})
    assert not missing, f"core functions without a test: {missing}"


# ---- values, not just their printed form --------------------------------------------------------


def test_clojure_string_names_share_one_function():
    for name in [n for n in CORE if n.startswith("clojure.string/")]:
        local = name.split("/", 1)[1]
        impl = CORE[name].fn.__wrapped__
        assert CORE[f"str/{local}"].fn.__wrapped__ is impl
        assert CORE[f"string/{local}"].fn.__wrapped__ is impl
        if local not in ("replace", "reverse"):  # bare replace/reverse are clojure.core's
            assert CORE[local].fn.__wrapped__ is impl
    assert value('(clojure.string/split "a b" " ")') == ("a", "b")
    assert value('(string/upper-case "a")') == "A"


def test_sequences_are_tuples_and_maps_dicts():
    assert value("(map inc [1 2])") == (2, 3)
    assert type(value("(filter odd? (list 1 2 3))")) is tuple
    assert value("(assoc {} :a 1)") == {Keyword("a"): 1}
    assert value("(hash-set 1)") == frozenset({1})
    assert value("(symbol \"x\")") == Symbol("x")
    assert value('(re-pattern "x")') == Regex("x")


def test_maps_keep_insertion_order():
    m = value("(assoc (hash-map :z 1 :a 2 :m 3) :b 4)")
    assert list(m) == [Keyword("z"), Keyword("a"), Keyword("m"), Keyword("b")]
    assert value("(keys (merge {:z 1} {:a 2} {:z 3}))") == (Keyword("z"), Keyword("a"))


def test_no_function_mutates_its_argument():
    ns = load("""
        (def m {:a 1 :b {:c 2}})
        (def v [1 2])
        (def s #{1})
        (def results [(assoc m :x 1) (dissoc m :a) (update m :a inc) (assoc-in m [:b :c] 9)
                      (update-in m [:b :c] inc) (merge m {:a 0}) (merge-with + m {:a 5})
                      (conj m [:y 2]) (into m {:z 3}) (select-keys m [:a])
                      (conj v 3) (assoc v 0 9) (into v [3]) (conj s 2) (disj s 1) (sort [2 1])])
    """)
    vars = ns.env.vars
    assert vars["m"] == {Keyword("a"): 1, Keyword("b"): {Keyword("c"): 2}}
    assert vars["v"] == (1, 2)
    assert vars["s"] == frozenset({1})


def test_fail_raises_a_located_error():
    assert error('(def x 1)\n(fail "bad value" )') == "t.pallet:2:1: bad value"
    assert error('  (fail "port %d is taken by %s" 80 :web)') == "t.pallet:1:3: port 80 is taken by :web"
    assert error('(throw (ex-info "boom" {:a 1}))') == "t.pallet:1:1: boom {:a 1}"
    assert error('(do\n  (throw "plain"))') == "t.pallet:2:3: plain"


def test_fail_inside_a_function_called_by_map_points_at_fail():
    src = '(defn check [x]\n  (when (neg? x) (fail "negative: %s" x))\n  x)\n(map check [1 -2])'
    assert error(src) == "t.pallet:2:18: negative: -2"


def test_higher_order_functions_call_user_functions():
    ns = load("""
        (defn add [a b] (+ a b))
        (def total (reduce add 0 (range 5)))
        (def pairs (into {} (map (fn [k] [k (name k)]) [:a :b])))
        (def sorted (sort-by (fn [m] (get m :n)) > [{:n 1} {:n 3} {:n 2}]))
        (def grouped (group-by (fn [s] (count s)) ["a" "bb" "c"]))
    """)
    v = ns.env.vars
    assert v["total"] == 10
    assert v["pairs"] == {Keyword("a"): "a", Keyword("b"): "b"}
    assert [m[Keyword("n")] for m in v["sorted"]] == [3, 2, 1]
    assert v["grouped"] == {1: ("a", "c"), 2: ("bb",)}


def test_partial_and_comp_results_can_be_defined_and_named():
    ns = load("(def inc2 (comp inc inc)) (def add5 (partial + 5)) (def r [(inc2 1) (add5 1)])")
    assert ns.env.vars["r"] == (3, 6)


def test_case_uses_the_language_equality():
    assert value("(case 1 true :bool 1 :one :other)") == Keyword("one")
    assert value("(case true 1 :one true :bool :other)") == Keyword("bool")


def test_a_keyword_named_fn_can_be_defined():
    assert value(":fn") == Keyword("fn")


# ---- located errors: the message names the function and points at the bad argument -------------

ERRORS = [
    ('(def r\n  (assoc "x" :a 1))', 't.pallet:2:10: assoc: expected a map or a vector, got the string "x"'),
    ('(+ 1 "a")', 't.pallet:1:6: +: expected a number, got the string "a"'),
    ('(check-option :port "80" integer? "a port number")', 't.pallet:1:1: :port is a port number, not "80"'),
    ('(check-option "port" 80 integer? "a port number")', 't.pallet:1:15: check-option: the option\'s name is a keyword, such as :version, not the string "port"'),
    ('(- 1\n   2\n   :k)', 't.pallet:3:4: -: expected a number, got the keyword :k'),
    ('(* 2 nil)', 't.pallet:1:6: *: expected a number, got nil'),
    ('(/ 1 0)', 't.pallet:1:6: /: division by zero'),
    ('(/ 10 2 0)', 't.pallet:1:9: /: division by zero'),
    ('(mod 1 0)', 't.pallet:1:8: mod: division by zero'),
    ('(rem 1 0)', 't.pallet:1:8: rem: division by zero'),
    ('(quot 1 0)', 't.pallet:1:9: quot: division by zero'),
    ('(inc "1")', 't.pallet:1:6: inc: expected a number, got the string "1"'),
    ('(dec :a)', 't.pallet:1:6: dec: expected a number, got the keyword :a'),
    ('(< 1 "2")', 't.pallet:1:6: <: expected a number, got the string "2"'),
    ('(> 1 true)', 't.pallet:1:6: >: expected a number, got true'),
    ('(<= 1 [])', 't.pallet:1:7: <=: expected a number, got the vector []'),
    ('(>= "a" 1)', 't.pallet:1:5: >=: expected a number, got the string "a"'),
    ('(max 1 "2")', 't.pallet:1:8: max: expected a number, got the string "2"'),
    ('(min 1 "2")', 't.pallet:1:8: min: expected a number, got the string "2"'),
    ('(abs "x")', 't.pallet:1:6: abs: expected a number, got the string "x"'),
    ('(int "x")', 't.pallet:1:6: int: expected a number, got the string "x"'),
    ('(even? 1.5)', 't.pallet:1:8: even?: expected an integer, got the number 1.5'),
    ('(odd? "1")', 't.pallet:1:7: odd?: expected an integer, got the string "1"'),
    ('(pos? nil)', 't.pallet:1:7: pos?: expected a number, got nil'),
    ('(neg? "x")', 't.pallet:1:7: neg?: expected a number, got the string "x"'),
    ('(zero? :z)', 't.pallet:1:8: zero?: expected a number, got the keyword :z'),
    ('(inc)', 't.pallet:1:1: inc: takes 1 argument, got 0'),
    ('(get {:a 1})', 't.pallet:1:1: get: takes 2 to 3 arguments, got 1'),
    ('(into [] [1] [2])', 't.pallet:1:1: into: takes 2 arguments, got 3'),
    ('(assoc {} :a)', 't.pallet:1:1: assoc: takes at least 3 arguments, got 2'),
    ('(assoc {} :a 1 :b)', 't.pallet:1:16: assoc: needs a value for every key'),
    ('(assoc [1 2] 5 :x)', 't.pallet:1:14: assoc: index 5 is out of range for a vector of 2 items'),
    ('(assoc [1 2] :k :x)', 't.pallet:1:14: assoc: a vector is indexed by an integer, got the keyword :k'),
    ('(assoc-in {:a "x"} [:a :b] 1)', 't.pallet:1:11: assoc-in: cannot change :b inside the string "x" (at [:a])'),
    ('(assoc-in {} [] 1)', 't.pallet:1:14: assoc-in: the path of keys is empty'),
    ('(dissoc [1] 0)', 't.pallet:1:9: dissoc: expected a map, got the vector [1]'),
    ('(update {:a 1} :a 5)', 't.pallet:1:19: update: expected a function, got the number 5'),
    ('(update "s" 0 inc)', 't.pallet:1:9: update: expected a map or a vector, got the string "s"'),
    ('(update-in {:a 1} [:a :b] inc)', 't.pallet:1:12: update-in: cannot change :b inside the number 1 (at [:a])'),
    ('(update {:a "x"} :a inc)', 't.pallet:1:1: inc: expected a number, got the string "x"'),
    ('(merge {} [1])', 't.pallet:1:11: merge: expected a map, got the vector [1]'),
    ('(merge-with + {} 5)', 't.pallet:1:18: merge-with: expected a map, got the number 5'),
    ('(keys [1])', 't.pallet:1:7: keys: expected a map, got the vector [1]'),
    ('(vals "m")', 't.pallet:1:7: vals: expected a map, got the string "m"'),
    ('(contains? 5 1)', 't.pallet:1:12: contains?: expected a map, set or vector, got the number 5'),
    ('(find [1] 0)', 't.pallet:1:7: find: expected a map, got the vector [1]'),
    ('(select-keys 5 [:a])', 't.pallet:1:14: select-keys: expected a map, got the number 5'),
    ('(get-in {} :a)', 't.pallet:1:12: get-in: expected a collection, got the keyword :a'),
    ('(conj "s" 1)', 't.pallet:1:7: conj: expected a vector, map or set, got the string "s"'),
    ('(conj {:a 1} [1 2 3])', 't.pallet:1:14: conj: adding to a map takes [key value] pairs or maps, got the vector [1 2 3]'),
    ('(disj [1] 1)', 't.pallet:1:7: disj: expected a set, got the vector [1]'),
    ('(into {} [1])', 't.pallet:1:10: into: into a map takes [key value] pairs or maps, got the number 1'),
    ('(into "s" [1])', 't.pallet:1:7: into: expected a vector, map or set, got the string "s"'),
    ('(hash-map :a 1 :b)', 't.pallet:1:16: hash-map: needs a value for every key'),
    ('(hash-set {:a 1})', 't.pallet:1:11: hash-set: the map {:a 1} cannot be a set member: maps, and collections '
                          'holding maps, are not hashable'),
    ('(set [[{}]])', 't.pallet:1:6: set: the vector [{}] cannot be a set member: maps, and collections holding '
                     'maps, are not hashable'),
    ('(frequencies [{:a 1}])', 't.pallet:1:14: frequencies: the map {:a 1} cannot be a map key or a set member: '
                               'maps, and collections holding maps, are not hashable'),
    ('(zipmap [{}] [1])', 't.pallet:1:9: zipmap: the map {} cannot be a map key: maps, and collections holding '
                          'maps, are not hashable'),
    ('(group-by identity [{}])', 't.pallet:1:11: group-by: the map {} cannot be a map key (group-by makes a map): '
                                 'maps, and collections holding maps, are not hashable'),
    ('(update-keys {:a 1} (fn [k] {}))', 't.pallet:1:21: update-keys: the map {} cannot be a map key: maps, and '
                                         'collections holding maps, are not hashable'),
    ('(update-vals [] inc)', 't.pallet:1:14: update-vals: expected a map, got the vector []'),
    ('(reduce-kv + 0 [1])', 't.pallet:1:16: reduce-kv: expected a map, got the vector [1]'),
    ('(vec 5)', 't.pallet:1:6: vec: expected a collection, got the number 5'),
    ('(seq :k)', 't.pallet:1:6: seq: expected a collection, got the keyword :k'),
    ('(set 5)', 't.pallet:1:6: set: expected a collection, got the number 5'),
    ('(empty 5)', 't.pallet:1:8: empty: expected a collection, got the number 5'),
    ('(count 5)', 't.pallet:1:8: count: expected a collection or a string, got the number 5'),
    ('(empty? 5)', 't.pallet:1:9: empty?: expected a collection or a string, got the number 5'),
    ('(not-empty true)', 't.pallet:1:12: not-empty: expected a collection or a string, got true'),
    ('(first 5)', 't.pallet:1:8: first: expected a collection, got the number 5'),
    ('(second :a)', 't.pallet:1:9: second: expected a collection, got the keyword :a'),
    ('(last 1.5)', 't.pallet:1:7: last: expected a collection, got the number 1.5'),
    ('(rest 1)', 't.pallet:1:7: rest: expected a collection, got the number 1'),
    ('(next 1)', 't.pallet:1:7: next: expected a collection, got the number 1'),
    ('(butlast 1)', 't.pallet:1:10: butlast: expected a collection, got the number 1'),
    ('(cons 1 2)', 't.pallet:1:9: cons: expected a collection, got the number 2'),
    ('(peek 1)', 't.pallet:1:7: peek: expected a collection, got the number 1'),
    ('(nth [1 2] 5)', 't.pallet:1:12: nth: index 5 is out of range for a vector of 2 items'),
    ('(nth [1] -1)', 't.pallet:1:10: nth: index -1 is out of range for a vector of 1 item'),
    ('(nth "ab" 2)', 't.pallet:1:11: nth: index 2 is out of range for a string of length 2'),
    ('(nth {:a 1} 0)', 't.pallet:1:6: nth: expected a vector or a string, got the map {:a 1}'),
    ('(nth [1] :a)', 't.pallet:1:10: nth: expected an integer, got the keyword :a'),
    ('(take "a" [1])', 't.pallet:1:7: take: expected an integer, got the string "a"'),
    ('(drop 1 5)', 't.pallet:1:9: drop: expected a collection, got the number 5'),
    ('(take-last 1.0 [1])', 't.pallet:1:12: take-last: expected an integer, got the number 1.0'),
    ('(drop-last "x" [1])', 't.pallet:1:12: drop-last: expected an integer, got the string "x"'),
    ('(reverse 5)', 't.pallet:1:10: reverse: expected a collection, got the number 5'),
    ('(concat [1] 2)', 't.pallet:1:13: concat: expected a collection, got the number 2'),
    ('(range)', 't.pallet:1:1: range: an endless range cannot be made; give an end: (range n)'),
    ('(range "5")', 't.pallet:1:8: range: expected a number, got the string "5"'),
    ('(range 1 5 0)', 't.pallet:1:12: range: a step of 0 never reaches the end'),
    ('(range 100000000)', 't.pallet:1:1: range: a range of 100000000 numbers is too large (at most 10000000)'),
    ('(repeat :x 3)', 't.pallet:1:9: repeat: expected an integer, got the keyword :x'),
    ('(distinct 5)', 't.pallet:1:11: distinct: expected a collection, got the number 5'),
    ('(interpose "," 5)', 't.pallet:1:16: interpose: expected a collection, got the number 5'),
    ('(interleave [1] 5)', 't.pallet:1:17: interleave: expected a collection, got the number 5'),
    ('(partition 0 [1])', 't.pallet:1:12: partition: the size must be positive'),
    ('(partition-all 2 0 [1])', 't.pallet:1:18: partition-all: the step must be positive'),
    ('(sort [1 "a"])', 't.pallet:1:7: sort: cannot compare the string "a" with the number 1'),
    ('(sort [{:a 1} {:a 2}])', 't.pallet:1:7: sort: cannot compare the map {:a 2} with the map {:a 1}'),
    ('(sort 5)', 't.pallet:1:7: sort: expected a collection, got the number 5'),
    ('(sort 5 [1])', 't.pallet:1:7: sort: expected a function, got the number 5'),
    ('(sort-by 5 [1])', 't.pallet:1:10: sort-by: expected a function, got the number 5'),
    ('(sort-by :a [{:a 1} {:a "x"}])', 't.pallet:1:13: sort-by: cannot compare the string "x" with the number 1'),
    ('(compare 1 "a")', 't.pallet:1:1: compare: cannot compare the number 1 with the string "a"'),
    ('(map 5 [1])', 't.pallet:1:6: map: expected a function, got the number 5'),
    ('(map inc 5)', 't.pallet:1:10: map: expected a collection, got the number 5'),
    ('(map inc [1] 5)', 't.pallet:1:14: map: expected a collection, got the number 5'),
    ('(map inc ["a"])', 't.pallet:1:1: inc: expected a number, got the string "a"'),
    ('(map (fn [x y] x) [1])', 't.pallet:1:1: fn takes 2 arguments, got 1'),
    ('(mapv "f" [1])', 't.pallet:1:7: mapv: expected a function, got the string "f"'),
    ('(map-indexed 1 [1])', 't.pallet:1:14: map-indexed: expected a function, got the number 1'),
    ('(mapcat inc [1])', 't.pallet:1:9: mapcat: the function must return a collection, got the number 2'),
    ('(filter 1 [1])', 't.pallet:1:9: filter: expected a function, got the number 1'),
    ('(filterv odd? 1)', 't.pallet:1:15: filterv: expected a collection, got the number 1'),
    ('(remove nil [1])', 't.pallet:1:9: remove: expected a function, got nil'),
    ('(keep 1 [1])', 't.pallet:1:7: keep: expected a function, got the number 1'),
    ('(take-while 1 [1])', 't.pallet:1:13: take-while: expected a function, got the number 1'),
    ('(drop-while 1 [1])', 't.pallet:1:13: drop-while: expected a function, got the number 1'),
    ('(reduce + 5)', 't.pallet:1:11: reduce: expected a collection, got the number 5'),
    ('(reduce "f" [1])', 't.pallet:1:9: reduce: expected a function, got the string "f"'),
    ('(some 1 [1])', 't.pallet:1:7: some: expected a function, got the number 1'),
    ('(every? odd? 7)', 't.pallet:1:14: every?: expected a collection, got the number 7'),
    ('(not-every? 1 [1])', 't.pallet:1:13: not-every?: expected a function, got the number 1'),
    ('(not-any? 1 [1])', 't.pallet:1:11: not-any?: expected a function, got the number 1'),
    ('(max-key count "a" 5)', 't.pallet:1:1: count: expected a collection or a string, got the number 5'),
    ('(min-key :a {:a "x"})', 't.pallet:1:13: min-key: expected a number, got the string "x"'),
    ('(apply + 1 2)', 't.pallet:1:12: apply: expected a collection, got the number 2'),
    ('(apply +)', 't.pallet:1:1: apply: needs a collection of arguments: (apply f args)'),
    ('(apply + 1 [2 "x"])', 't.pallet:1:1: +: expected a number, got the string "x"'),
    ('(partial 5)', 't.pallet:1:10: partial: expected a function, got the number 5'),
    ('(comp inc 5)', 't.pallet:1:11: comp: expected a function, got the number 5'),
    ('(complement "x")', 't.pallet:1:13: complement: expected a function, got the string "x"'),
    ('(juxt :a 1)', 't.pallet:1:10: juxt: expected a function, got the number 1'),
    ('(fnil 1 0)', 't.pallet:1:7: fnil: expected a function, got the number 1'),
    ('((constantly 1) (+ 1 "x"))', 't.pallet:1:22: +: expected a number, got the string "x"'),
    ('(subs "abc" -1)', 't.pallet:1:13: subs: index -1 is out of range for a string of length 3'),
    ('(subs "abc" 1 10)', 't.pallet:1:15: subs: end 10 is out of range (start 1, length 3)'),
    ('(subs :abc 1)', 't.pallet:1:7: subs: expected a string, got the keyword :abc'),
    ('(join "," 5)', 't.pallet:1:11: join: expected a collection, got the number 5'),
    ('(str/join "," 5)', 't.pallet:1:15: str/join: expected a collection, got the number 5'),
    ('(split 5 ",")', 't.pallet:1:8: split: expected a string, got the number 5'),
    ('(split "a" "(")', 't.pallet:1:12: split: invalid regular expression "(": missing ), unterminated '
                       'subpattern at position 0'),
    ('(split "a" "," "x")', 't.pallet:1:16: split: expected an integer, got the string "x"'),
    ('(split-lines 1)', 't.pallet:1:14: split-lines: expected a string, got the number 1'),
    ('(trim nil)', 't.pallet:1:7: trim: expected a string, got nil'),
    ('(triml 1)', 't.pallet:1:8: triml: expected a string, got the number 1'),
    ('(trimr 1)', 't.pallet:1:8: trimr: expected a string, got the number 1'),
    ('(trim-newline 1)', 't.pallet:1:15: trim-newline: expected a string, got the number 1'),
    ('(upper-case :a)', 't.pallet:1:13: upper-case: expected a string, got the keyword :a'),
    ('(lower-case 5)', 't.pallet:1:13: lower-case: expected a string, got the number 5'),
    ('(capitalize 5)', 't.pallet:1:13: capitalize: expected a string, got the number 5'),
    ('(blank? 5)', 't.pallet:1:9: blank?: expected a string, got the number 5'),
    ('(starts-with? "a" :a)', 't.pallet:1:19: starts-with?: expected a string, got the keyword :a'),
    ('(ends-with? 1 "a")', 't.pallet:1:13: ends-with?: expected a string, got the number 1'),
    ('(includes? "a" nil)', 't.pallet:1:16: includes?: expected a string, got nil'),
    ('(index-of "a" 1)', 't.pallet:1:15: index-of: expected a string, got the number 1'),
    ('(last-index-of 1 "a")', 't.pallet:1:16: last-index-of: expected a string, got the number 1'),
    ('(str/reverse [1])', 't.pallet:1:14: str/reverse: expected a string, got the vector [1]'),
    ('(replace "abc" 5 "x")', 't.pallet:1:16: replace: expected a string or a (re-pattern ...), got the number 5'),
    ('(replace "abc" "b" 5)', 't.pallet:1:20: replace: expected a string, got the number 5'),
    ('(replace "abc" (re-pattern "(b)") "$2")', 't.pallet:1:35: replace: the replacement names group 2, '
                                               'but the pattern has 1'),
    ('(replace "abc" (re-pattern "b") "$")', 't.pallet:1:33: replace: a $ in the replacement must name a group '
                                            '($1) or be escaped (\\\\$)'),
    ('(replace "abc" "b" (fn [m] m))', 't.pallet:1:20: replace: a function replacement needs a (re-pattern ...) '
                                       'to match'),
    ('(replace 5 [1])', 't.pallet:1:10: replace: expected a map, got the number 5'),
    ('(str/replace "abc" (re-pattern "b") (fn [m] 1))', 't.pallet:1:37: str/replace: the replacement function '
                                                        'must return a string, got the number 1'),
    ('(replace-first 1 "a" "b")', 't.pallet:1:16: replace-first: expected a string, got the number 1'),
    ('(re-find 5 "a")', 't.pallet:1:10: re-find: expected a regular expression (a string), got the number 5'),
    ('(re-find "a" 5)', 't.pallet:1:14: re-find: expected a string, got the number 5'),
    ('(re-matches "[" "a")', 't.pallet:1:13: re-matches: invalid regular expression "[": unterminated character '
                             'set at position 0'),
    ('(re-seq "a" nil)', 't.pallet:1:13: re-seq: expected a string, got nil'),
    ('(re-pattern "(")', 't.pallet:1:13: re-pattern: invalid regular expression "(": missing ), unterminated '
                         'subpattern at position 0'),
    ('(keyword 5)', 't.pallet:1:10: keyword: expected a string, keyword or symbol, got the number 5'),
    ('(keyword "")', 't.pallet:1:10: keyword: a keyword needs a name, got the empty string'),
    ('(keyword "a" 1)', 't.pallet:1:14: keyword: expected a string, got the number 1'),
    ('(symbol 1)', 't.pallet:1:9: symbol: expected a string, keyword or symbol, got the number 1'),
    ('(name 5)', 't.pallet:1:7: name: expected a string, keyword or symbol, got the number 5'),
    ('(namespace "a/b")', 't.pallet:1:12: namespace: expected a keyword or symbol, got the string "a/b"'),
    ('(parse-long 5)', 't.pallet:1:13: parse-long: expected a string, got the number 5'),
    ('(parse-int nil)', 't.pallet:1:12: parse-int: expected a string, got nil'),
    ('(parse-double 1)', 't.pallet:1:15: parse-double: expected a string, got the number 1'),
    ('(parse-boolean 1)', 't.pallet:1:16: parse-boolean: expected a string, got the number 1'),
    ('(Integer/parseInt "x")', 't.pallet:1:19: Integer/parseInt: "x" is not an integer'),
    ('(Integer/parseInt "99999999999")', 't.pallet:1:19: Integer/parseInt: "99999999999" is out of range for a '
                                         '32-bit integer'),
    ('(Integer/parseInt "12" 40)', 't.pallet:1:24: Integer/parseInt: radix 40 is not between 2 and 36'),
    ('(Long/parseLong "1.5")', 't.pallet:1:17: Long/parseLong: "1.5" is not an integer'),
    ('(Double/parseDouble "x")', 't.pallet:1:21: Double/parseDouble: "x" is not a number'),
    ('(throw 5)', 't.pallet:1:8: throw: throws an (ex-info ...) or a string, got the number 5'),
    ('(format 5)', 't.pallet:1:9: format: expected a string, got the number 5'),
    ('(format "%d" 1.5)', 't.pallet:1:14: format: %d needs an integer, got the number 1.5'),
    ('(format "%s and %5d" "a"\n        "b")', 't.pallet:2:9: format: %5d needs an integer, got the string "b"'),
    ('(format "%x" true)', 't.pallet:1:14: format: %x needs an integer, got true'),
    ('(format "%.2f" "1")', 't.pallet:1:16: format: %.2f needs a number, got the string "1"'),
    ('(format "%c" "ab")', 't.pallet:1:14: format: %c needs a one-character string or a code point, '
                           'got the string "ab"'),
    ('(format "%s %s" 1)', "t.pallet:1:9: format: the format '%s' needs argument 2, but 1 was given"),
    ('(format "100%")', 't.pallet:1:9: format: the format ends with a lone %; write %% for a percent sign'),
    ('(format "%q" 1)', "t.pallet:1:9: format: unknown conversion '%q' in the format"),
    ('(format "%tY" 1)', 't.pallet:1:9: format: date and time conversions (%t) are not supported'),
    ('(format "%<s" 1)', 't.pallet:1:9: format: %< refers to the previous argument, but there is none'),
    ('(format "%0$s" 1)', 't.pallet:1:9: format: argument index 0$ must be 1 or more'),
    ('(/ (apply * (repeat 400 10)) 3)', 't.pallet:1:1: /: number too large'),
    ('(int (/ 1.0E308 1.0E-308))', 't.pallet:1:6: int: cannot make an integer of Infinity'),
]


@pytest.mark.parametrize("src,expected", ERRORS, ids=[e[0] for e in ERRORS])
def test_located_error(src, expected):
    assert error(src) == expected


def test_errors_show_the_source_line_and_a_caret():
    with pytest.raises(PalletError) as info:
        load('(def port\n  (inc "80"))')
    text = str(info.value)
    assert text.splitlines() == ['t.pallet:2:8: inc: expected a number, got the string "80"',
                                 '    (inc "80"))',
                                 '         ^^^^']


def test_endless_recursion_is_a_located_error():
    assert error("(defn f [n] (f n))\n(f 1)").startswith("t.pallet:1:13: f: calls nest too deeply")


def test_for_over_a_non_collection_is_a_located_error():
    assert error("(for [x 5] x)") == "t.pallet:1:9: for: x needs a collection, got the number 5"


def test_maps_and_sets_as_functions_check_their_arguments():
    assert error("({:a 1})") == "t.pallet:1:1: a map as a function takes a key (and a default)"
    assert error("(#{1} 1 2)") == "t.pallet:1:1: a set as a function takes a key"
    assert value("({:a 1} {:b 2} :d)") == Keyword("d")
    assert value("(#{1} {:a 1})") is None


def test_no_python_exception_escapes_for_bad_input():
    """Every core function, called with awkward arguments, answers or raises PalletError."""
    awkward = ['nil', '0', '-1', '1.5', '"s"', ':k', '[1 "a"]', '{:a 1}', '#{1}', 'inc', 'true',
               '[{:a 1}]', '""']
    for name in sorted(CORE):
        for args in ([], *[[a] for a in awkward], *[[a, b] for a in awkward[:7] for b in awkward],
                     *[[a, b, c] for a in awkward[:4] for b in awkward[4:8] for c in awkward[8:]]):
            src = f"({name} {' '.join(args)})"
            try:
                load(src)
            except PalletError:
                pass
            except Exception as exc:  # pragma: no cover - the failure message says what broke
                raise AssertionError(f"{src} raised {type(exc).__name__}: {exc}") from exc
