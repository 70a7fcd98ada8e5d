"""The compiled records of a kept list (``_etlwalk.records``, what ``EtlCapture.records()``
hands out on the compiled path) against the Python loop it replaced: the same records
(frame numbers, float times to the bit, link types, data, original lengths, directions),
the same ``link_types`` and ``records_read`` after every record, on every kind of file the
factory writes (one or several processors, damaged, cut short, a clock that is not linear)
and on made-up items (timestamps past int64, data sliced from the body, unknown codes);
bad input raises and leaks nothing. The walk that feeds it (extra 3: the frame's bytes as
the item's body too) and the reused buffer it reads into (``EtlFile.bodies(reuse=True)``)
give what the plain walk and reads give."""
from __future__ import annotations

import gc
import random
import struct
import sys
import weakref
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from etl_factory import write_ndis_etl, write_pktmon_etl  # noqa: E402
from facts.capture import etl_fastc, open_capture  # noqa: E402
from facts.capture.etl import PM_DIRS  # noqa: E402
from facts.capture.etl_events import (NDIS_DIRECTIONS, NDIS_GUID,  # noqa: E402
                                      NDIS_LINKTYPES, PKTMON_GUID)
from facts.errors import CaptureError  # noqa: E402
from test_etl import _packets  # noqa: E402
from test_etl_fused import VARIANTS as FUSED_VARIANTS  # noqa: E402
from test_etl_fused import _summary  # noqa: E402
from test_etl_multistream import VARIANTS as MULTI_VARIANTS  # noqa: E402

pytestmark = pytest.mark.skipif(not etl_fastc.available(),
                                reason="facts.capture._etlwalk not built (or disabled)")

VARIANTS = {**{"fused-" + k: v for k, v in FUSED_VARIANTS.items()},
            **{"multi-" + k: v for k, v in MULTI_VARIANTS.items()}}


def _py_records(kept, frame, ctx, cap):
    """The Python loop of fused_c's records mode that _etlwalk.records replaced."""
    linear, whole_s, tick_off, seconds, ndis_lts, ndis_dirs, pm_dirs, link_types = ctx
    for ts, key, _app, code, dcode, orig, start, end, body, extra in kept:
        frame += 1
        if key is None:
            lt = ndis_lts[code]
            direction = ndis_dirs[dcode]
        else:
            lt = code
            direction = pm_dirs[dcode]
        link_types.add(lt)
        tsf = whole_s + (ts + tick_off) / 1e7 if linear else seconds(ts)
        data = body[start:end] if extra is None else extra
        cap.records_read = frame
        yield frame, tsf, lt, data, orig if orig > len(data) else len(data), direction


def _bits(records):
    """Records with their times as exact bits (== on floats would let -0.0 pass as 0.0)."""
    return [(r[0], struct.pack("<d", r[1])) + tuple(r[2:]) for r in records]


def _pass(path, nonlinear=False):
    """records() with records_read after each record, and the counters after the pass."""
    cap = open_capture(path)
    if nonlinear:
        cap.clock.linear = False
    out = [(r, cap.records_read, sorted(cap.link_types)) for r in cap.records()]
    return _bits(r for r, _n, _lts in out), [x[1:] for x in out], _summary(cap)


def _both(monkeypatch, path, nonlinear=False):
    got = _pass(path, nonlinear)
    with monkeypatch.context() as m:
        m.setattr(etl_fastc, "_records", _py_records)
        want = _pass(path, nonlinear)
    return got, want


@pytest.mark.parametrize("nonlinear", [False, True], ids=["linear", "nonlinear"])
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_c_records_equal_the_python_loop(tmp_path, monkeypatch, name, nonlinear):
    path = VARIANTS[name](tmp_path / "v.etl")
    got, want = _both(monkeypatch, path, nonlinear)
    assert got == want
    if name.endswith(("1copy", "3copies-128", "whole")):
        assert got[0], "the variant must have records"


def test_c_records_on_damaged_and_cut_files(tmp_path, monkeypatch):
    source = Path(write_pktmon_etl(tmp_path / "a.etl", _packets(40), buffer_size=2048,
                                   components=3, processors=2)).read_bytes()
    target = tmp_path / "fz.etl"
    checked = 0
    for seed in range(40):
        rnd = random.Random(7000 + seed)
        data = bytearray(source)
        for _ in range(rnd.randrange(1, 10)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        if seed % 4 == 0:
            del data[rnd.randrange(len(data) // 2, len(data)):]
        target.write_bytes(bytes(data))
        try:
            got, want = _both(monkeypatch, target)
        except CaptureError:
            continue
        assert got == want, seed
        checked += 1
    assert checked > 20


class _Cap:
    records_read = 0


def _ctx(rng, seconds=None):
    linear = seconds is None
    whole_s = float(rng.choice([0, 1_700_000_000, -5]))
    tick_off = rng.choice([0, 123, -(1 << 62), (1 << 63) - 1, -(1 << 63)])
    return (linear, whole_s, tick_off, seconds or (lambda ts: ts / 3.0 - 1),
            NDIS_LINKTYPES, NDIS_DIRECTIONS, PM_DIRS, set())


def _item(rng, body):
    ts = rng.choice([0, 1, -7, rng.randrange(1 << 62), (1 << 63) - 1, -(1 << 63), 1 << 70,
                     -(1 << 66), 13_337_000_000_000_001])
    start, end = sorted(rng.randrange(len(body) + 3) for _ in range(2))
    if rng.random() < 0.2:
        start, end = end, start                 # an empty slice, as Python makes it
    extra = None if rng.random() < 0.5 else bytes(rng.randrange(256) for _ in range(9))
    orig = rng.choice([0, 5, 9, 60, 1 << 40, 1 << 70, -3, True])
    if rng.random() < 0.3:
        code = rng.choice(sorted(NDIS_LINKTYPES))
        return (ts, None, 0, code, rng.randrange(4), orig, start, end, body, extra)
    key = rng.choice([(5 << 16) | 1, (3 << 64) | 9])
    return (ts, key, rng.randrange(1, 4), rng.choice([1, 101]), rng.randrange(8), orig, start,
            end, body, extra)


def test_c_records_equal_python_on_made_up_items():
    """Timestamps at and past the int64 ends (the exact path and Python's), tick offsets
    that overflow the sum, bodies sliced outside their ends, data given, lengths either
    side of orig, NDIS and pktmon items, both clocks."""
    rng = random.Random(11)
    body = bytes(range(40))
    for _ in range(600):
        ctx = _ctx(rng, None if rng.random() < 0.7 else (lambda ts: ts * 1e-7 + 0.5))
        kept = [_item(rng, body) for _ in range(rng.randrange(0, 12))]
        frame = rng.choice([0, 41, (1 << 40)])
        got_cap, want_cap = _Cap(), _Cap()
        got_ctx, want_ctx = ctx[:7] + (set(),), ctx[:7] + (set(),)
        got, want = [], []
        for rec in etl_fastc._records(kept, frame, got_ctx, got_cap):
            got.append((rec, got_cap.records_read, sorted(got_ctx[7])))
        for rec in _py_records(kept, frame, want_ctx, want_cap):
            want.append((rec, want_cap.records_read, sorted(want_ctx[7])))
        assert _bits(g[0] for g in got) == _bits(w[0] for w in want)
        assert [g[1:] for g in got] == [w[1:] for w in want]


def test_c_records_errors_as_python_and_no_leaks():
    rng = random.Random(3)
    marker = bytes(range(50))
    ctx = _ctx(rng)
    good = (10, (1 << 16) | 1, 1, 1, 3, 60, 0, 50, marker, None)
    before = sys.getrefcount(marker)
    for kept in ([good, "not an item"], [good, good[:9]]):
        with pytest.raises(ValueError):         # Python: a wrong number of values to unpack
            list(_py_records(kept, 0, ctx, _Cap()))
        with pytest.raises(TypeError):          # C: not an item
            list(etl_fastc._records(kept, 0, ctx, _Cap()))
    bad_kept = [
        [good[:1] + (None,) + good[2:3] + (77,) + good[4:]],     # KeyError: no such NDIS code
        [good[:4] + (8,) + good[5:]],                            # IndexError: direction code
        [("ts",) + good[1:]],                                    # TypeError: time
        [good[:6] + ("x",) + good[7:]],                          # TypeError: start
    ]
    for kept in bad_kept:
        want = None
        try:
            list(_py_records(kept, 0, ctx, _Cap()))
        except Exception as exc:                # noqa: BLE001 -- the type is compared
            want = type(exc)
        assert want is not None
        it = etl_fastc._records(kept, 0, ctx, _Cap())
        with pytest.raises(want):
            list(it)
    for args in (("no list", 0, ctx, _Cap()), ([good], 0, ctx[:7], _Cap()),
                 ([good], 0, ctx[:7] + ([],), _Cap()), ([good], "0", ctx, _Cap())):
        with pytest.raises(TypeError):
            etl_fastc._records(*args)
    it = etl_fastc._records([good] * 3, 0, ctx, _Cap())
    next(it)
    del it                                      # items not yet taken are released
    assert list(etl_fastc._records([], 0, ctx, _Cap())) == []
    del bad_kept, kept                          # their items hold the marker too
    gc.collect()
    assert sys.getrefcount(marker) == before


def test_c_records_iterator_is_collected_in_a_cycle():
    cap = _Cap()
    cap.it = etl_fastc._records([(10, None, 0, 0, 1, 0, 0, 0, b"", None)], 0,
                                _ctx(random.Random(1)), cap)
    ref = weakref.ref(cap)
    del cap
    gc.collect()
    assert ref() is None


def _files(tmp_path):
    return [
        write_pktmon_etl(tmp_path / "a.etl", _packets(30), buffer_size=2048, components=3,
                         processors=2),
        write_pktmon_etl(tmp_path / "b.etl", _packets(20), drops={5: (42, 9)},
                         wifi_first=True, buffer_size=1024),
        write_pktmon_etl(tmp_path / "c.etl", _packets(20), compressed=True, buffer_size=2048),
        write_ndis_etl(tmp_path / "d.etl", _packets(25), buffer_size=2048, processors=3),
        write_ndis_etl(tmp_path / "e.etl", _packets(10), extended=True),
    ]


def _cut(tmp_path, path):
    data = Path(path).read_bytes()
    cut = tmp_path / "cut.etl"
    cut.write_bytes(data[:len(data) - 700])
    return cut


def test_reused_buffer_reads_the_same_bodies(tmp_path):
    """Plain and compressed buffers, several streams, a file cut inside a buffer: the same
    bodies and problems; the uncompressed ones are views of one buffer per call."""
    for path in _files(tmp_path) + [_cut(tmp_path, _files(tmp_path)[0])]:
        plain_etl, reused_etl = open_capture(path).etl, open_capture(path).etl
        for entries in plain_etl.streams().values():
            plain = [(off, bytes(body)) for off, _hdr, body in plain_etl.bodies(entries)]
            reused, owners = [], set()
            for off, _hdr, body in reused_etl.bodies(entries, reuse=True):
                reused.append((off, bytes(body)))
                if isinstance(body, memoryview):
                    owners.add(id(body.obj))
            assert reused == plain
            assert len(owners) <= 1
        assert reused_etl.problems == plain_etl.problems


def test_walk_extra_3_items_own_their_frames(tmp_path):
    """extra 3: the items of extra 2 with the frame's bytes as body (start 0, end its
    length), whatever the body object walked (bytes or a view of a reused buffer)."""
    walk = etl_fastc._walk
    state = (None, 0, 0, PKTMON_GUID, NDIS_GUID, etl_fastc.SIZE_AT_4_TABLE)
    checked = 0
    for path in _files(tmp_path):
        etl = open_capture(path).etl
        for entries in etl.streams().values():
            for _off, _hdr, body in etl.bodies(entries, reuse=True):
                for p in (0, 300):
                    framed, *rest = walk(bytes(body), p, *state, 2, 7)
                    owned, *rest3 = walk(body, p, *state, 3, 7)
                    assert rest == rest3
                    assert [it[:6] for it in owned] == [it[:6] for it in framed]
                    for a, b in zip(owned, framed):
                        assert a[6:] == (0, len(b[9]), b[9], b[9]) and a[8] is a[9]
                    checked += len(owned)
    assert checked > 50
