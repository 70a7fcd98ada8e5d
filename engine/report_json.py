"""``rstsleuth analyze --format json``: the JSON report, whose reset entries are built by
several processes when there are thousands of them.

The document is byte for byte the one ``analysis.analyze(...).to_json_bytes(indent)``
writes (the tests compare them). A big report is compact JSON, and compact JSON splices.
The captures, their dual match and cross evidence are made here first; then forked
workers (``engine.workers``) each make the evidence, inferences and entries of one slice of
the resets, and this process those of the first slice meanwhile (with one process, that
slice is all of them). Every slice is
written with empty finding ids by ``json_writer`` (each shared object once) and comes with
each reset's ``story`` (what findings group by); the findings are made here from all the
stories, and each entry's finding id goes where its ``"finding":""`` was left. A worker
that fails has its slice built here instead, so the report is the same either way.
"""
from __future__ import annotations

import bisect
import functools
import pickle
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

from facts.extract import Extraction, no_cyclic_gc

from .analysis import Collected, collect, entries, load_tracert, reason, report_of
from .json_writer import items_json
from .kb import KnowledgeBase
from .report_build import findings_of, story
from .report_model import ResetOut, json_indent
from .workers import Forked, can_fork, usable_cpus

# Below this many resets per process a worker costs more (its fork, and the pages both
# processes then copy on write) than it saves.
MIN_RESETS_PER_WORKER = 1000
# This process's slice against a worker's (_bounds). Measured on the 1M benchmark with two
# processes (min of 10 runs each): 0.95 → 0.86 s, 1.05 → 0.84 s, 1.15 → 0.83 s, 1.25 → 0.83 s;
# with the worker's bytes in a memfd: 1.0 → 0.79 s, 1.08 → 0.79 s, 1.15 → 0.78 s;
# a worker also pays for its fork, the pages it copies and sending its slice, this process
# for the cross patterns and the findings.
PARENT_SHARE = 1.15
RESETS_KEY = b'"resets":[]'
# Within JSON strings a quote is escaped: this can only be the entries' own field.
FINDING_MARK = b'"reasoning":{"finding":"'
AUTO = "auto"


@dataclass
class JsonReport:
    chunks: list  # the document in order (bytes and memoryviews), ending with a newline
    warnings: list[str]
    resets: int
    forged: bool  # some reset was sent by a middle device
    workers: int  # the processes that built the entries
    keep: Any  # what the document was made from, left for the caller to drop (tui.cli.run)

    @property
    def data(self) -> bytes:
        """The document as one bytes object (``tui.output`` writes the chunks as they are:
        a big report is 26 MB that joining would copy once more)."""
        return b"".join(self.chunks)


@dataclass
class _Slice:
    """The entries of one slice of the resets: their stories, their JSON cut where each
    finding id goes (``pieces``) and, when built here, the entries."""

    stories: list[tuple]
    resets: Optional[list[ResetOut]] = None
    pieces: list = field(default_factory=list)  # memoryviews of the JSON
    inferences: Optional[list] = None  # the resets' inferences, when built here


def worker_count(requested: Optional[int], resets: int,
                 min_per_worker: int = MIN_RESETS_PER_WORKER) -> int:
    """``requested``: at most this many processes (None: one per usable CPU on Linux; one
    elsewhere, where a fork without exec is less safe, e.g. macOS's system libraries)."""
    if requested is None:
        most = usable_cpus() if sys.platform.startswith("linux") else 1
    else:
        most = requested
    n = max(1, min(most, resets // max(1, min_per_worker)))
    return n if n > 1 and can_fork() else 1


def analyze_json(capture: Union[str, Extraction], peer: Union[str, Extraction, None] = None, *,
                 kb: KnowledgeBase, reasoner, tracert: Optional[str] = None, lang: str = "en",
                 progress: Optional[Callable[[int, int], None]] = None,
                 workers: Optional[int] = None, indent: Union[int, None, str] = AUTO,
                 min_per_worker: int = MIN_RESETS_PER_WORKER) -> JsonReport:
    """``workers``: at most this many processes (None: one per usable CPU); ``indent``:
    AUTO (``report_model.json_indent``), None (compact) or spaces; only a compact report
    is split."""
    with no_cyclic_gc():
        trace = load_tracert(tracert)
        collected = collect(capture, peer, kb, progress)
        count = len(collected.resets)
        if indent == AUTO:
            indent = json_indent(count)
        if indent is not None:
            report = reason(kb, reasoner, collected.gathered(), trace, lang)
            return JsonReport([report.to_json_bytes(indent), b"\n"], report.warnings, count,
                              any(r.origin == "middle_device" for r in report.resets), 1,
                              (report, collected))
        return _split(kb, reasoner, collected, trace, lang,
                      worker_count(workers, count, min_per_worker))


def _split(kb: KnowledgeBase, reasoner, collected: Collected, trace, lang: str, n: int
           ) -> JsonReport:
    bounds = _bounds(len(collected.resets), n)
    spans = list(zip(bounds, bounds[1:]))
    # The fork comes before each reset's evidence and reasoning: every process makes those
    # for its own slice. A run class met in several slices is reasoned in each (about 90
    # of the 108 durable runs of the 1M benchmark in each half), which costs less than the
    # one process making all the evidence and inferences before the others could start.
    classes: dict = {}  # reset_entry.verdict_class's, kept for this process's slices
    cache: dict = {}
    written: dict = {}  # json_writer's cache: the bytes of shared objects
    build = functools.partial(_build, kb, reasoner, collected, trace=trace, lang=lang)

    def here(a: int, b: int) -> _Slice:
        """Resets a to b built in this process; their JSON too is written before the
        finding ids are known, and gets them as the workers' JSON does."""
        made = build(a, b, classes=classes, cache=cache)
        return _cut(made.stories, _entries_json(made.resets, written), built=made)

    workers: list[Optional[Forked]] = []
    used = 1  # processes whose slices made it into the report
    try:
        for a, b in spans[1:]:
            workers.append(_fork(functools.partial(_worker_bytes, build, a, b)))
        slices = [here(*spans[0])]  # while the workers work
        collected.patterns  # noqa: B018 - made now, while the workers finish
        for worker, (a, b) in zip(workers, spans[1:]):
            got = _received(worker.result() if worker else None, b - a)
            used += got is not None
            slices.append(got or here(a, b))
    finally:
        for worker in workers:
            if worker:
                worker.close()

    stories = [s for part in slices for s in part.stories]

    def first(i: int) -> tuple:
        k = bisect.bisect_right(bounds, i) - 1
        part, j = slices[k], i - bounds[k]
        if part.resets is None:
            # a finding whose first reset a worker built: made again here, the same way
            part, j = build(i, i + 1, classes=classes, cache=cache), 0
        return part.resets[j], part.inferences[j]

    findings, ids = findings_of(kb, stories, first, lang)
    report = report_of(kb, collected, [], findings, lang)
    head, tail = _around_resets(report.to_json_bytes(None))
    out = [head, b"["]
    for k, part in enumerate(slices):
        if k:
            out.append(b",")
        out.append(part.pieces[0])
        for fid, piece in zip(ids[bounds[k]:bounds[k + 1]], part.pieces[1:]):
            out += (FINDING_MARK, fid.encode("ascii"), piece)
    out += (b"]", tail, b"\n")
    # the caches too go to ``keep``: freeing their objects as this function returns took
    # 30 ms of a 1 s analysis (tui.cli.run drops them with the process)
    return JsonReport(out, report.warnings, len(collected.resets),
                      any(s[0][4] == "middle_device" for s in stories), used,
                      (report, slices, collected, classes, cache, written))


def _bounds(count: int, n: int) -> list[int]:
    """Where the slices of ``count`` resets start, and the end: this process's slice is
    PARENT_SHARE times a worker's, since a worker also pays for the pages it copies after
    the fork and for sending its slice back, and the parent waits for the last one."""
    total = PARENT_SHARE + (n - 1)
    bounds = [0] + [round(count * (PARENT_SHARE + i) / total) for i in range(n - 1)] + [count]
    for i in range(1, n):  # no empty slice while there are resets enough (worker_count)
        bounds[i] = min(max(bounds[i], bounds[i - 1] + 1), count - (n - i))
    return bounds


def _fork(make: Callable[[], Union[bytes, list]]) -> Optional[Forked]:
    try:
        return Forked(make)
    except OSError:  # no process to be had (EAGAIN, ENOMEM): its slice is built here
        return None


def _build(kb, reasoner, collected: Collected, start: int, stop: int, *, trace, lang: str,
           classes: dict, cache: dict) -> _Slice:
    """Resets ``start`` to ``stop``: their evidence, inferences and entries."""
    jobs = collected.jobs(start, stop)
    inferences = reasoner.infer_many([ev for _, _, ev, _ in jobs], share=False)
    resets = entries(kb, collected, jobs, inferences, trace, lang, classes, cache)
    return _Slice([story(r) for r in resets], resets, inferences=inferences)


def _worker_bytes(build: Callable[..., _Slice], start: int, stop: int) -> list[bytes]:
    """In a worker: its slice's stories (pickled, after their length) and its entries'
    JSON (finding ids still empty) as it is, not pickled: the parent reads it in place."""
    part = build(start, stop, classes={}, cache={})
    stories = pickle.dumps(part.stories, protocol=pickle.HIGHEST_PROTOCOL)
    return [len(stories).to_bytes(8, "little"), stories, _entries_json(part.resets, {})]


def _received(data: Optional[bytes], count: int) -> Optional[_Slice]:
    """A worker's slice, or None when it failed or sent something else."""
    if data is None or len(data) < 8:
        return None
    size = int.from_bytes(data[:8], "little")
    try:  # from our own fork: trusted
        stories = pickle.loads(memoryview(data)[8:8 + size])
    except Exception:  # noqa: BLE001 - a truncated message is a failed worker
        return None
    if not isinstance(stories, list) or len(stories) != count:
        return None
    return _cut(stories, data, 8 + size)


def _cut(stories: list[tuple], entries_json: bytes, start: int = 0,
         built: Optional[_Slice] = None) -> Optional[_Slice]:
    """Entries whose finding ids are still empty (``entries_json`` from ``start``), cut
    where each id goes: a slice whose ``pieces`` are views of ``entries_json`` (no copy of
    its megabytes); ``built``: the slice they were written from, if built here."""
    view, find, mark = memoryview(entries_json), entries_json.find, len(FINDING_MARK)
    pieces = []
    at = find(FINDING_MARK, start)
    while at >= 0 and len(pieces) <= len(stories):
        pieces.append(view[start:at])
        start = at + mark
        at = find(FINDING_MARK, start)
    pieces.append(view[start:])
    if len(pieces) != len(stories) + 1 or \
            not all(p[:1] == b'"' for p in pieces[1:]):  # the id's closing quote
        if built is not None:
            raise AssertionError("an entry's JSON has not exactly one empty finding id")
        return None
    if built is None:
        return _Slice(stories, pieces=pieces)
    return _Slice(stories, built.resets, pieces, built.inferences)


def _entries_json(resets: list[ResetOut], written: dict) -> bytes:
    """The entries as they appear in the compact report: its ``resets`` list without the
    brackets; ``written``: ``json_writer.items_json``'s cache, kept for one report."""
    return items_json(resets, ResetOut, written)


def _around_resets(document: bytes) -> tuple[bytes, bytes]:
    """The compact report with no resets, cut where its ``"resets":[]`` is; what goes
    before the list's ``[`` and after its ``]``."""
    at = document.find(RESETS_KEY)
    if at < 0 or document.find(RESETS_KEY, at + 1) >= 0:
        raise AssertionError("the report's JSON has not exactly one resets list")
    cut = at + len(RESETS_KEY) - 2
    return document[:cut], document[cut + 2:]
