"""The on-disk cache of read forms is only a speed-up: same forms, and a broken cache is
simply read past."""
from pallet.grammar import cache
from pallet.grammar.reader import read


def test_cached_forms_equal_read_forms_and_keep_their_spans(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    text = '(defscript f [a])\n(defimpl f :default [a] (println "x" @a))\n'
    first = cache.read_cached(text, "lib.pallet")
    assert list((tmp_path / "pallet" / "forms").glob("*.pickle"))
    second = cache.read_cached(text, "lib.pallet")  # from the file
    assert first == second == read(text, "lib.pallet")
    assert str(second[1].items[0].span) == "lib.pallet:2:2"


def test_a_broken_cache_file_is_read_past(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    text = "(a b c)"
    cache.read_cached(text, "x.pallet")
    for path in (tmp_path / "pallet" / "forms").glob("*.pickle"):
        path.write_bytes(b"not a pickle")
    assert cache.read_cached(text, "x.pallet") == read(text, "x.pallet")


def test_an_unwritable_cache_directory_is_no_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # a file where a directory should be
    assert cache.read_cached("(a)", "y.pallet") == read("(a)", "y.pallet")


def test_the_cache_keeps_at_most_its_bound(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(cache, "MAX_ENTRIES", 3)
    for i in range(200):   # a write whose key starts with 0 prunes: one in 16
        cache.read_cached(f"(a {i})", "z.pallet")
    assert 3 <= len(list((tmp_path / "pallet" / "forms").glob("*.pickle"))) < 3 + 60


def test_an_error_is_not_cached_and_stays_located(tmp_path, monkeypatch):
    import pytest
    from pallet.errors import PalletError
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for _ in range(2):
        with pytest.raises(PalletError) as caught:
            cache.read_cached("(a\n  (b", "bad.pallet")
        assert str(caught.value.span).startswith("bad.pallet:")
    assert not list((tmp_path / "pallet" / "forms").glob("*.pickle"))


def test_a_spec_read_before_is_loaded_without_the_parser(tmp_path):
    """`pallet lift` of an unchanged spec does not import lark at all."""
    import os
    import subprocess
    import sys
    code = ("import sys\n"
            "from pallet.compiler.project import load_project\n"
            "load_project('examples/hadoop_cluster.pallet')\n"
            "print('lark' in sys.modules)\n")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                           cwd=root, check=True).stdout.strip() for _ in range(2)]
    assert runs == ["True", "False"]
