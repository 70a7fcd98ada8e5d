"""engine.kb_cache: the validated KB kept between runs, used only for exactly the same KB."""
from __future__ import annotations

import importlib.resources
import os
import shutil
from pathlib import Path

import pytest

from engine import kb_cache
from engine.kb import KBError
from engine.loader import load_kb

SHIPPED = Path(str(importlib.resources.files("knowledge")))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    where = tmp_path / "cache"
    monkeypatch.setenv(kb_cache.ENV_VAR, str(where))
    return where


@pytest.fixture
def kb_dir(tmp_path):
    target = tmp_path / "kb"
    shutil.copytree(SHIPPED, target, ignore=shutil.ignore_patterns("__pycache__", "*.py", "*.md"))
    return target


def _entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("kb-*.pickle"))


def _dump(kb) -> tuple:
    return ([r.model_dump() for r in kb.rules],
            {k: v.model_dump() for k, v in kb.conclusions.items()},
            {k: v.model_dump() for k, v in kb.fixes.items()},
            {k: v.model_dump() for k, v in kb.questions.items()},
            kb.reference.model_dump(), kb.warnings, str(kb.path))


def test_second_load_comes_from_the_cache_and_equals_the_first(cache, kb_dir, monkeypatch):
    fresh = load_kb(kb_dir)
    assert len(_entries(cache)) == 1
    assert oct(cache.stat().st_mode & 0o777) == "0o700"

    def no_parse(*_a, **_k):
        raise AssertionError("the files were parsed again")
    monkeypatch.setattr("engine.loader.read_kb", no_parse)
    cached = load_kb(kb_dir)
    assert cached is not fresh and _dump(cached) == _dump(fresh)
    assert cached.rule(fresh.rules[3].id).id == fresh.rules[3].id


def test_an_edited_file_is_a_miss(cache, kb_dir):
    first = load_kb(kb_dir)
    conclusion = next(iter(first.conclusions.values()))
    path = kb_dir / Path(conclusion.source.file).name if conclusion.source else None
    target = path if path and path.exists() else next(kb_dir.glob("*.yaml"))
    text = target.read_text(encoding="utf-8")
    title = conclusion.title.en
    assert title in text
    target.write_text(text.replace(title, title + " (edited)", 1), encoding="utf-8")
    second = load_kb(kb_dir)
    assert second.conclusions[conclusion.id].title.en == title + " (edited)"
    assert len(_entries(cache)) == 2


def test_a_kb_with_errors_is_never_stored(cache, kb_dir):
    target = next(kb_dir.glob("*.yaml"))
    target.write_text(target.read_text(encoding="utf-8") + "\nnot_a_section: 1\n",
                      encoding="utf-8")
    for _ in range(2):  # reported every time, from the files
        with pytest.raises(KBError):
            load_kb(kb_dir)
    assert _entries(cache) == []


def test_a_damaged_entry_is_read_from_the_files_and_replaced(cache, kb_dir):
    want = _dump(load_kb(kb_dir))
    (entry,) = _entries(cache)
    entry.write_bytes(entry.read_bytes()[:100])
    assert _dump(load_kb(kb_dir)) == want
    assert _entries(cache)[0].stat().st_size > 100


def test_off_and_unusable_directories_still_load(tmp_path, kb_dir, monkeypatch):
    monkeypatch.setenv(kb_cache.ENV_VAR, "off")
    assert kb_cache.cache_dir() is None
    assert load_kb(kb_dir).rules
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    monkeypatch.setenv(kb_cache.ENV_VAR, str(blocker / "cache"))
    assert load_kb(kb_dir).rules


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_a_directory_others_may_write_is_not_trusted(cache, kb_dir):
    load_kb(kb_dir)
    (entry,) = _entries(cache)
    cache.chmod(0o777)
    try:
        kb, key = kb_cache.load(kb_dir, sorted(kb_dir.glob("*.yaml")))
        assert kb is None and key and entry.name == f"kb-{key}.pickle"
    finally:
        cache.chmod(0o700)
    assert kb_cache.load(kb_dir, sorted(kb_dir.glob("*.yaml")))[0] is not None


def test_old_entries_are_pruned(cache, kb_dir):
    target = next(kb_dir.glob("*.yaml"))
    text = target.read_text(encoding="utf-8")
    for i in range(kb_cache.KEEP + 3):
        target.write_text(text + f"\n# version {i}\n", encoding="utf-8")
        load_kb(kb_dir)
    assert len(_entries(cache)) == kb_cache.KEEP


def test_a_kb_from_the_cache_imports_no_yaml(cache, kb_dir):
    """Loading from the cache must not pay for yaml's import (analyze's start-up)."""
    import subprocess
    import sys
    load_kb(kb_dir)   # fills the cache
    root = Path(__file__).resolve().parents[1]
    code = ("import sys; from engine.loader import load_kb; kb = load_kb(sys.argv[1]); "
            "print(len(kb.rules), 'yaml' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(kb_dir)], cwd=root, env={
        **os.environ, kb_cache.ENV_VAR: str(cache), "PYTHONPATH": str(root)},
        capture_output=True, text=True, check=True).stdout.split()
    assert int(out[0]) > 50 and out[1] == "False", out
