"""The validated knowledge base, kept between runs.

Parsing and validating the YAML takes 0.12-0.2 s, which ``rstsleuth analyze`` pays on every
run while its reader waits for it; the loaded ``KnowledgeBase`` unpickles in under 10 ms. An
entry is used only for exactly the same KB: its key hashes every KB file's name and bytes,
the KB directory, the Python and pydantic versions and the source of the modules that turn
YAML into the KB objects, so an edited rule, another KB or a changed loader is a miss.

Only KBs that load without errors are stored (a KB with errors is re-read each time, so its
errors are reported each time). The directory is ``$RSTSLEUTH_CACHE`` (``off`` turns the
cache off), else ``$XDG_CACHE_HOME/rstsleuth``, else ``~/.cache/rstsleuth``. Entries are
pickles written by this module: like ``__pycache__`` they are trusted as the user's own, so
a directory that another user owns or may write to is not used. Any failure to read or
write an entry only means the KB is read from its files.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Optional

from .kb import KnowledgeBase

ENV_VAR = "RSTSLEUTH_CACHE"
FORMAT = b"rstsleuth-kb-cache/1"
KEEP = 8  # entries kept (one per KB version recently used)
# Modules whose code decides what a KB file loads to.
_SOURCES = ("kb.py", "kb_model.py", "loader.py", "validate.py", "kb_cache.py")


def cache_dir() -> Optional[Path]:
    where = os.environ.get(ENV_VAR)
    if where:
        return None if where.lower() in ("off", "0", "no", "false") else Path(where)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rstsleuth"


def _trusted(directory: Path) -> bool:
    """Ours alone: owned by this user and not writable by group or others."""
    try:
        st = directory.stat()
    except OSError:
        return False
    if not hasattr(os, "getuid"):
        return True
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def key(root: Path, files: list[Path]) -> Optional[str]:
    """The entry name for this KB, or None when a file cannot be read (then the loader
    reports it)."""
    import pydantic
    h = hashlib.sha256(FORMAT)
    for part in (sys.version, pydantic.VERSION, str(root), str(root.resolve())):
        h.update(part.encode() + b"\0")
    here = Path(__file__).resolve().parent
    try:
        for name in _SOURCES:
            h.update(name.encode() + b"\0" + (here / name).read_bytes() + b"\0")
        for path in files:
            data = path.read_bytes()
            h.update(path.name.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    except OSError:
        return None
    return h.hexdigest()[:32]


def load(root: Path, files: list[Path]) -> tuple[Optional[KnowledgeBase], Optional[str]]:
    """(the cached KB or None, the key to store it under)."""
    directory = cache_dir()
    entry = key(root, files) if directory is not None else None
    if entry is None or not _trusted(directory):
        return None, entry
    try:
        with open(directory / f"kb-{entry}.pickle", "rb") as fh:
            kb = pickle.load(fh)
    except Exception:  # missing, truncated or from an incompatible build: read the files
        return None, entry
    return (kb if isinstance(kb, KnowledgeBase) else None), entry


def store(entry: Optional[str], kb: KnowledgeBase) -> None:
    directory = cache_dir()
    if entry is None or directory is None:
        return
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _trusted(directory):
            return
        fd, tmp = tempfile.mkstemp(prefix=".kb-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(kb, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, directory / f"kb-{entry}.pickle")  # readers see all or nothing
        except BaseException:
            os.unlink(tmp)
            raise
        _prune(directory)
    except Exception:  # a read-only home, a full disk: the next run reads the files again
        return


def _prune(directory: Path) -> None:
    entries = sorted(directory.glob("kb-*.pickle"), key=lambda p: p.stat().st_mtime,
                     reverse=True)
    for old in entries[KEEP:]:
        try:
            old.unlink()
        except OSError:
            pass
