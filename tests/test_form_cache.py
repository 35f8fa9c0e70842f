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
