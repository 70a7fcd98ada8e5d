"""The JSON report built by several processes (engine.report_json, engine.workers) is byte for
byte the one built in one: on generated, example, lab and corpus captures, with a peer
capture, in Chinese, and when a worker fails."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine import report_json
from engine.analysis import analyze
from engine.report_json import analyze_json, worker_count
from engine.workers import Forked, can_fork
from tests.builders import bench_capture

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
LAB = ROOT / "examples" / "lab_captures"

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")


@pytest.fixture(scope="module")
def many_resets(tmp_path_factory) -> str:
    """A generated capture with a few hundred resets of every kind (benchmarks/make_capture)."""
    path = tmp_path_factory.mktemp("many") / "many.pcap"
    bench_capture(path, 40_000, connections=800, seed=7)
    return str(path)


def one_process(kb, reasoner, capture, peer=None, **kw) -> bytes:
    return analyze(capture, peer, kb=kb, reasoner=reasoner, **kw).to_json_bytes(None) + b"\n"


def split(kb, reasoner, capture, peer=None, workers=3, **kw):
    return analyze_json(capture, peer, kb=kb, reasoner=reasoner, workers=workers, indent=None,
                        min_per_worker=1, **kw)


def test_generated_capture_same_bytes_with_1_2_and_3_processes(kb, reasoner, many_resets):
    """One process too: its entries are written by engine.json_writer, not by pydantic."""
    expected = one_process(kb, reasoner, many_resets)
    for n in (1, 2, 3):
        done = split(kb, reasoner, many_resets, workers=n)
        assert done.workers == n
        assert done.data == expected
    assert done.resets > 100
    assert done.forged is (b'"origin":"middle_device"' in expected)


def test_chinese_report_same_bytes(kb, reasoner, many_resets):
    done = split(kb, reasoner, many_resets, lang="zh")
    assert done.workers == 3
    assert done.data == one_process(kb, reasoner, many_resets, lang="zh")


def lab_pairs() -> list[str]:
    return sorted(p.name for p in LAB.iterdir() if (p / "client.pcap").exists())


@pytest.mark.parametrize("name", lab_pairs())
def test_lab_dual_captures_same_bytes(kb, reasoner, name):
    client, server = str(LAB / name / "client.pcap"), str(LAB / name / "server.pcap")
    for capture, peer in ((client, server), (client, None)):
        done = split(kb, reasoner, capture, peer)
        assert done.data == one_process(kb, reasoner, capture, peer)
        assert done.workers == max(1, min(3, done.resets))


@pytest.mark.parametrize("name", ["03_forged_rst_after_syn_ttl46_vs_49.pcap",
                                  "07_refused_x3_retries.pcapng", "22_rawip_tfo_rsts.pcap"])
def test_corpus_same_bytes(kb, reasoner, name):
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"shared corpus not present ({CORPUS})")
    done = split(kb, reasoner, str(path))
    assert done.workers > 1
    assert done.data == one_process(kb, reasoner, str(path))


def test_failed_worker_slice_is_built_here(kb, reasoner, many_resets, monkeypatch):
    """A worker that raises, or sends something else than a slice, has its slice built by
    the parent: the same document, with fewer processes counted."""
    expected = one_process(kb, reasoner, many_resets)

    def boom(*args):
        raise RuntimeError("worker failure")

    monkeypatch.setattr(report_json, "_worker_bytes", boom)
    done = split(kb, reasoner, many_resets)
    assert (done.data, done.workers) == (expected, 1)
    monkeypatch.setattr(report_json, "_worker_bytes", lambda *args: b"not a pickle")
    done = split(kb, reasoner, many_resets)
    assert (done.data, done.workers) == (expected, 1)


def test_no_process_to_be_had(kb, reasoner, many_resets, monkeypatch):
    """fork() failing (EAGAIN under a process limit) leaves the work to this process, and
    no pipe behind."""
    import errno

    def no_fork():
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    expected = one_process(kb, reasoner, many_resets)
    before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    monkeypatch.setattr(os, "fork", no_fork)
    done = split(kb, reasoner, many_resets)
    assert (done.data, done.workers) == (expected, 1)
    if before is not None:
        assert len(os.listdir("/proc/self/fd")) == before


def test_small_or_indented_reports_stay_in_one_process(kb, reasoner):
    lab = str(LAB / "firewall_idle_timeout" / "client.pcap")
    done = analyze_json(lab, kb=kb, reasoner=reasoner, workers=4, min_per_worker=1)
    assert done.workers == 1  # up to 1000 resets the report is indented: not spliced
    assert done.data == analyze(lab, kb=kb, reasoner=reasoner).to_json_bytes(2) + b"\n"


def test_worker_count(monkeypatch):
    assert worker_count(1, 100_000) == 1
    assert worker_count(4, 2_999) == 2  # at least 1000 resets each
    assert worker_count(4, 999) == 1
    assert worker_count(None, 10, min_per_worker=1) in range(1, 11)
    monkeypatch.setattr(sys, "platform", "darwin")  # no fork unless asked for
    assert worker_count(None, 100_000) == 1
    assert worker_count(2, 100_000) == 2
    monkeypatch.undo()
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:  # another thread alive: a fork would copy only this one
        assert not can_fork()
        assert worker_count(4, 100_000) == 1
    finally:
        stop.set()
        other.join()


# --- engine.workers.Forked ------------------------------------------------------------------

@pytest.mark.parametrize("through", ["memfd", "pipe"])
def test_forked_returns_large_result(through, monkeypatch):
    """Through an in-memory file where Linux has one (mapped, not copied), else a pipe."""
    from engine import workers
    if through == "pipe":
        monkeypatch.setattr(workers, "_shared_file", lambda: None)
    elif workers._shared_file() is None:
        pytest.skip("no memfd_create on this system")
    data = bytes(range(256)) * 40_000  # 10 MB: more than any pipe holds
    before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    with Forked(lambda: [data[:5], memoryview(data)[5:]]) as child:
        got = child.result()
        assert bytes(got) == data and len(got) == len(data)
        assert got.find(data[1000:1010], 900) == 1000  # what the splice cuts with
        assert isinstance(got, bytes) is (through == "pipe")
    del got  # a map holds its own descriptor (CPython's mmap keeps a dup) while it lives
    with Forked(lambda: b"") as child:
        assert child.result() == b""
    if before is not None:
        assert len(os.listdir("/proc/self/fd")) == before  # no descriptor left open


def test_forked_child_failure_is_none_and_never_returns_here(tmp_path):
    marker = tmp_path / "after"

    def fail():
        raise SystemExit(0)  # even a clean exit request does not unwind into the caller

    with Forked(fail) as child:
        assert child.result() is None
    marker.write_text(str(os.getpid()))  # only this process gets here
    assert marker.read_text() == str(os.getpid())
    with Forked(lambda: "not bytes") as child:
        assert child.result() is None


def test_forked_close_kills_unfinished_child():
    start = time.monotonic()
    child = Forked(lambda: time.sleep(60) or b"late")
    pid = child.pid
    child.close()
    assert time.monotonic() - start < 10
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped
    assert child.result() is None


# --- the command line -----------------------------------------------------------------------

def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui.cli", *args], cwd=ROOT,
                          capture_output=True, timeout=300)


def test_cli_jobs_option(many_resets, tmp_path):
    """(The split itself is tested above: a capture with the 2 000 resets that make the
    command split would take long to make.)"""
    outs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}.json"
        done = run_cli("analyze", many_resets, "--format", "json", "-o", str(out), "--jobs", jobs)
        assert done.returncode == 0, done.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    forged = run_cli("analyze", many_resets, "--format", "json", "-o", str(tmp_path / "f.json"),
                     "--fail-on-forged")
    origins = {r["origin"] for r in json.loads(outs[0])["resets"]}
    assert forged.returncode == (1 if "middle_device" in origins else 0)
    bad = run_cli("analyze", many_resets, "--jobs", "0")
    assert bad.returncode == 2
    assert b"not a positive whole number: '0'" in bad.stderr and b"Traceback" not in bad.stderr


def test_slice_bounds():
    """This process takes PARENT_SHARE times a worker's share; no slice is ever empty while
    there is a reset per process, and the slices cover every reset once."""
    from engine.report_json import PARENT_SHARE, _bounds
    assert _bounds(5338, 1) == [0, 5338]
    first = _bounds(5338, 2)[1]
    assert abs(first / (5338 - first) - PARENT_SHARE) < 0.01
    for n in range(1, 40):
        for count in range(n, 3 * n + 50):
            b = _bounds(count, n)
            assert b[0] == 0 and b[-1] == count and len(b) == n + 1
            assert all(x < y for x, y in zip(b, b[1:])), (count, n, b)


def test_slices_make_the_same_evidence_as_one_pass(kb, many_resets):
    """Each process makes its own slice's evidence (Collected.jobs) after the fork: any cut
    gives gather's evidence, the same dual evidence objects shared across the cut, and the
    cross patterns once."""
    from engine.analysis import collect, gather

    whole = gather(many_resets, None, kb)
    collected = collect(many_resets, None, kb)
    n = len(collected.resets)
    assert n == len(whole.jobs) > 100
    for cut in (0, 1, n // 3, n - 1, n):
        parts = collected.jobs(0, cut) + collected.jobs(cut, n)
        assert [(r.id, ev) for _, r, ev, _ in parts] == \
            [(r.id, ev) for _, r, ev, _ in whole.jobs]
        assert [d.model_dump() for *_, d in parts] == [d.model_dump() for *_, d in whole.jobs]
    duals = {id(d) for *_, d in collected.jobs()}
    assert len(duals) <= 2  # no peer capture: one per sender, whichever slice made it
    assert collected.patterns is collected.patterns
    assert [p.model_dump() for p in collected.patterns] == \
        [p.model_dump() for p in whole.patterns]
