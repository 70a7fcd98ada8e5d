"""The compiled event walk (facts/capture/_etlwalk_*.c) against the Python stepping of
etl_fast._fused: the same items, stop offset and back-to-back state on real buffers and on
random or damaged bytes (never a crash); and the fused reader with and without the
extension equal to the general path."""
from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from etl_factory import write_ndis_etl, write_pktmon_etl  # noqa: E402
from facts.capture import etl_fastc, open_capture  # noqa: E402
from facts.capture.etl_events import NDIS_GUID, PKTMON_GUID  # noqa: E402
from facts.capture.etl_fast import _HOT, _other_record  # noqa: E402
from facts.capture.fastpcap import LAYOUTS, fast_segment  # noqa: E402
from test_etl import _mixed_links, _packets  # noqa: E402
from test_etl_fused import VARIANTS, _fused, _general  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
needs_cext = pytest.mark.skipif(not etl_fastc.available(),
                                reason="facts.capture._etlwalk not built (or disabled)")


def _py_tcp(body, start, end):
    """What the C walk reads for fastpcap.fast_segment (None where it decodes nothing)."""
    if end - start < 54:
        return None
    (etype, vihl, totlen, ip_id, frag, ttl, proto, src, dst, sport, dport, seq, ack,
     off_res, tflags, win) = LAYOUTS[1][0].unpack_from(body, start)
    if not (etype == 0x0800 and vihl == 0x45 and proto == 6 and not frag & 0x3FFF
            and totlen >= 40 and off_res >= 0x50):
        return None
    doff = (off_res >> 4) << 2
    ip_end = start + 14 + totlen
    return (src, dst, sport, dport, ttl, ip_id, seq, ack, tflags, off_res & 0x0F, win,
            max(totlen - 20 - doff, 0), body[start + 34 + doff:min(ip_end, end)], ip_end > end)


def _py_walk(body, p, last_group, last_number, last_app):
    """The stepping of etl_fast._fused, collecting what the C walk returns (with the TCP
    fields)."""
    items = []
    pm = nd = 0
    n = len(body)
    limit = n - 114
    while True:
        if p > limit:
            if p + 8 > n:
                p = -1
                break
            q = _other_record(body, p, n)
            if q >= 0:
                p = q
                continue
            if q == -1:
                p = -1
            break
        (size, hm, flags, ts, guid, eid, kw, group, number, app, dirtag, ptype,
         orig, logged) = _HOT.unpack_from(body, p)
        if hm & 0x80FE != 0x8012 or size < 80 or p + size > n:
            q = _other_record(body, p, n)
            if q >= 0:
                p = q
                continue
            if q == -1:
                p = -1
            break
        step = (size + 7) & ~7
        if guid == PKTMON_GUID:
            if (eid == 160 and number == last_number and group == last_group
                    and app > last_app and size >= 114 and not flags & 1):
                pm += 1
                last_app = app
                p += step
                continue
            if eid != 160:
                if eid != 170:
                    p += step
                    continue
                break
            if flags & 1 or not group:
                break
            if size < 114:
                p += step
                continue
            if ptype != 1 and ptype != 3:
                break
            pm += 1
            last_group, last_number, last_app = group, number, app
            start = p + 114
            end = min(start + logged, p + size)
            items.append((ts, (group << 16) | number, app, 1 if ptype == 1 else 101,
                          dirtag & 7, orig, start, end, body,
                          _py_tcp(body, start, end) if ptype == 1 else None))
        elif guid == NDIS_GUID:
            if flags & 1:
                break
            if eid != 1001 or size < 92:
                p += step
                continue
            if kw & 0xC0000000 != 0xC0000000:
                break
            nd += 1
            start = p + 92
            end = min(start + (number | app << 16), p + size)
            items.append((ts, None, 0, kw & 0x10200, (kw >> 32) & 3, 0, start, end, body,
                          None if kw & 0x10200 else _py_tcp(body, start, end)))
        p += step
    return items, p, last_group, last_number, last_app, pm, nd


def _c_walk(body, p=0, last_group=None, last_number=0, last_app=0):
    items, *rest = etl_fastc._walk(body, p, last_group, last_number, last_app, PKTMON_GUID,
                                   NDIS_GUID, etl_fastc.SIZE_AT_4_TABLE, True)
    # the items carry the very object walked (compared as bytes below)
    assert all(it[8] is body for it in items)
    return ([it[:8] + (bytes(it[8]),) + it[9:] for it in items], *rest)


def _bodies(path):
    cap = open_capture(path)
    etl = cap.etl
    out = []
    with open(etl.path, "rb") as f:
        for entries in etl.streams().values():
            out += [etl.read_body(f, off, hdr) for off, hdr in entries]
    return out


def _sources(tmp_path):
    return [
        write_pktmon_etl(tmp_path / "a.etl", _packets(30), buffer_size=2048, components=3),
        write_pktmon_etl(tmp_path / "b.etl", _packets(20), drops={5: (42, 9)},
                         wifi_first=True),
        write_ndis_etl(tmp_path / "c.etl", _mixed_links(), fragment_size=100),
        write_ndis_etl(tmp_path / "d.etl", _packets(10), extended=True),
    ]


@needs_cext
def test_c_walk_equals_python_stepping_on_real_buffers(tmp_path):
    bodies = [b for path in _sources(tmp_path) for b in _bodies(path)]
    assert bodies
    for body in bodies:
        state = (None, 0, 0)
        p = 0
        while p >= 0:                   # through every stop, as the hand-over would
            c = _c_walk(body, p, *state)
            assert c == _py_walk(body, p, *state)
            p, state = c[1], c[2:5]
            if p >= 0:
                p += 8                  # on past the stop (any offset must be safe)


@needs_cext
def test_c_walk_survives_random_and_damaged_bytes(tmp_path):
    bodies = [b for path in _sources(tmp_path) for b in _bodies(path)]
    rnd = random.Random(1234)
    for _ in range(400):
        kind = rnd.randrange(3)
        if kind == 0:
            body = rnd.randbytes(rnd.randrange(0, 400))
        else:
            body = bytearray(rnd.choice(bodies))
            for _ in range(rnd.randrange(1, 30)):
                body[rnd.randrange(len(body))] = rnd.randrange(256)
            if kind == 2:
                body = body[:rnd.randrange(len(body) + 1)]
            body = bytes(body)
        p = rnd.randrange(len(body) + 200)
        state = rnd.choice([(None, 0, 0), (rnd.getrandbits(64), rnd.getrandbits(16),
                                           rnd.getrandbits(16))])
        assert _c_walk(body, p, *state) == _py_walk(body, p, *state)
        assert _c_walk(memoryview(body), p, *state) == _py_walk(body, p, *state)


@needs_cext
def test_c_walk_rejects_bad_arguments():
    with pytest.raises(ValueError):
        _c_walk(b"\0" * 200, -1)
    with pytest.raises(TypeError):
        _c_walk("not bytes")
    with pytest.raises(ValueError):
        etl_fastc._walk(b"", 0, None, 0, 0, b"short", NDIS_GUID, etl_fastc.SIZE_AT_4_TABLE)
    with pytest.raises(OverflowError):
        _c_walk(b"", 0, -5)


@pytest.mark.parametrize("use_cext", [True, False], ids=["cext", "python"])
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_fused_equals_general_with_and_without_cext(tmp_path, monkeypatch, name, use_cext):
    if use_cext and not etl_fastc.available():
        pytest.skip("facts.capture._etlwalk not built (or disabled)")
    if not use_cext:
        monkeypatch.setattr(etl_fastc, "_walk", None)
    calls = []
    fused_c = etl_fastc.fused_c
    monkeypatch.setattr(etl_fastc, "fused_c", lambda *a: calls.append(1) or fused_c(*a))
    path = VARIANTS[name](tmp_path / "v.etl")
    assert _fused(path) == _general(path)
    assert bool(calls) == use_cext


@needs_cext
def test_damaged_files_same_as_general_through_cext(tmp_path):
    source = Path(write_pktmon_etl(tmp_path / "a.etl", _packets(30), buffer_size=2048,
                                   components=3)).read_bytes()
    target = tmp_path / "fz.etl"
    checked = 0
    for seed in range(40):
        rnd = random.Random(1000 + seed)
        data = bytearray(source)
        for _ in range(rnd.randrange(1, 10)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        target.write_bytes(bytes(data))
        try:
            general = _general(target)
        except Exception as exc:            # CaptureError: the file as a whole unreadable
            assert type(exc).__name__ == "CaptureError"
            continue
        assert _fused(target) == general, seed
        checked += 1
    assert checked


def test_env_var_disables_the_extension():
    code = ("from facts.capture import etl_buffers, etl_fastc;"
            " print(etl_fastc.available(), etl_buffers._compiled_merge)")
    env = dict(os.environ, RSTSLEUTH_NO_CEXT="1")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "False None"


@needs_cext
def test_c_walk_equals_python_stepping_on_corpus_pktmon():
    """Buffers written by Windows pktmon (corpus 29 has 4 processor streams, so its reading
    takes the merged path; here each buffer goes through both walks directly)."""
    path = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / \
        "29_pktmon_nathaniel.etl"
    if not path.exists():
        pytest.skip(f"corpus file 29 not found at {path}")
    items = 0
    for body in _bodies(path):
        state = (None, 0, 0)
        p = 0
        while p >= 0:
            c = _c_walk(body, p, *state)
            assert c == _py_walk(body, p, *state)
            items += len(c[0])
            p, state = c[1], c[2:5]
            if p >= 0:
                p += 8
    assert items


def _random_streams(rng):
    """Streams of event lists for the merge: mostly in time order, sometimes not (damaged
    buffers), with empty lists, equal timestamps within and across streams."""
    streams = []
    for s in range(rng.randrange(0, 5)):
        lists = []
        t = rng.randrange(-5, 50)
        for _ in range(rng.randrange(0, 6)):
            events = []
            for i in range(rng.choice([0, 1, 2, 3, 5, 8, 20])):
                t += rng.randrange(-30, 5) if rng.random() < 0.1 else rng.randrange(0, 4)
                events.append((t, s, len(lists), i))
            lists.append(events)
        streams.append(lists)
    return streams


@needs_cext
def test_c_merge_equals_python_merge():
    """The same lists (contents and cuts) as etl_buffers.merge_streams_py, also for streams
    out of time order, and timestamps at the ends of the int64 range."""
    from facts.capture import etl_buffers
    merge = etl_buffers.compiled("merge")
    rng = random.Random(77)
    for _ in range(3000):
        streams = _random_streams(rng)
        if rng.random() < 0.05:
            streams.append([[(-(1 << 63), 9, 0, 0), ((1 << 63) - 1, 9, 0, 1)]])
        want = list(etl_buffers.merge_streams_py([iter(s) for s in streams]))
        assert list(merge([iter(s) for s in streams])) == want


@needs_cext
def test_c_merge_bad_input_raises_and_leaks_nothing():
    from facts.capture import etl_buffers
    merge = etl_buffers.compiled("merge")
    marker = object()
    item = (5, marker)
    before = sys.getrefcount(marker)
    for bad in ([[item], "not a list"], [[item], [7]], [[item], [(1 << 70, 1)]], [[item], [()]]):
        with pytest.raises((TypeError, OverflowError)):
            list(merge([iter([[item]]), iter(bad)]))
    m = merge([iter([[item] * 3]), iter([[item]])])
    next(m)
    del m                                   # items still pooled are released
    assert list(merge([iter([[item] * 4])])) == [[item] * 4, []]
    assert sys.getrefcount(marker) == before
    with pytest.raises(TypeError):
        merge(5)


def _memory(app, frame, dcode, dirs):
    """How the compiled fold remembers a packet: one int when it fits (etl.remembered)."""
    if 0 <= app < 1 << 16 and 0 <= frame < 1 << 44:
        return app | dcode << 16 | frame << 19
    return app, frame, dirs[dcode]


def _py_fold(items, i, frame, live, older, gen, window, dirs):
    """The fold of the compiled reader's loop in Python (as etl_fast._fold_fast folds),
    packets remembered as the compiled fold remembers them."""
    kept = []
    for i in range(i, len(items)):
        ev = items[i]
        key = ev[1]
        if key is not None:
            if key <= 3:
                return kept, i, frame, live, older, gen
            ts, key, app, _code, dcode = ev[:5]
            if app != 1:
                e = live.get(key)
                if e is None:
                    e = older.get(key)
                if type(e) is int:
                    if app > e & 0xFFFF:
                        live[key] = _memory(app, e >> 19, (e >> 16) & 7, dirs)
                        continue
                elif e is not None and app > e[0]:
                    live[key] = (app, e[1], e[2])
                    continue
            if ts - gen > window:
                older, live, gen = live, {}, ts
            live[key] = _memory(app, frame + 1, dcode, dirs)
        frame += 1
        kept.append(ev)
    return kept, len(items), frame, live, older, gen


@needs_cext
def test_c_fold_equals_python_fold():
    """Copies in and out of order, restarts, rollover of the fold generations, general
    events stopping the fold, remembered packets as ints (the compiled fold's), tuples or
    (fold_records') lists, frames past what an int memory holds."""
    fold = etl_fastc._fold
    dirs = tuple(f"d{i}" for i in range(8))
    rng = random.Random(5)
    for _ in range(1500):
        items = []
        ts = rng.randrange(-100, 100)
        for _ in range(rng.randrange(0, 40)):
            ts += rng.randrange(-3, 40)
            r = rng.random()
            if r < 0.1:
                items.append((ts, None, 0, 0, rng.randrange(4), 0, 0, 0, b"", None))
            elif r < 0.13:
                items.append((ts, rng.randrange(1, 4), "general event"))
            else:
                key = rng.choice([(rng.randrange(1, 6) << 16) | 1, (3 << 64) | rng.randrange(6)])
                app = rng.randrange(1, 5) if rng.random() < 0.95 else 1 << rng.choice([16, 40])
                items.append((ts, key, app, 1, rng.randrange(8), 60, 0, 60, b"", None))
        seen = {((2 << 16) | 1): [3, 0, "pending"], ((3 << 64) | 2): (2, 9, "in"),
                ((4 << 16) | 1): 2 | 3 << 16 | 12 << 19}
        i = rng.randrange(0, 3)
        # frames from just under the int memories' limit (1 << 44) on: tuples past it
        frame = rng.randrange(0, 5) if rng.random() < 0.9 else (1 << 44) - rng.randrange(1, 9)
        args = (i, frame, rng.randrange(-50, 50), rng.choice([0, 10, 1000]))
        while True:
            frame, gen, window = args[1], args[2], args[3]
            got = fold(items, args[0], frame, dict(seen), {}, gen, window, dirs)
            want = _py_fold(items, args[0], frame, dict(seen), {}, gen, window, dirs)
            assert got == want
            if got[1] >= len(items):
                break
            args = (got[1] + 1, got[2], got[5], window)   # on past the general event


@needs_cext
def test_c_fold_rejects_bad_arguments():
    fold = etl_fastc._fold
    dirs = (None,) * 8
    item = (10, (1 << 16) | 1, 1, 1, 3, 60, 0, 60, b"", None)
    with pytest.raises(ValueError):
        fold([item], 0, 0, {}, {}, 0, 10, (None,) * 3)
    with pytest.raises(ValueError):
        fold([item[:4] + (9,) + item[5:]], 0, 0, {}, {}, 0, 10, dirs)      # direction code
    with pytest.raises(TypeError):
        fold([item, "x"], 0, 0, {}, {}, 0, 10, dirs)
    with pytest.raises(TypeError):
        fold([item[:2] + ("app",) + item[3:]], 0, 0, {}, {}, 0, 10, dirs)
    with pytest.raises(TypeError):          # a remembered packet of the wrong shape
        fold([item[:2] + (2,) + item[3:]], 0, 0, {item[1]: "7"}, {}, 0, 10, dirs)


@needs_cext
@pytest.mark.parametrize("piece", [1, 3])
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_walked_in_small_pieces(tmp_path, monkeypatch, name, piece):
    """Every stream, also a single one, is walked a piece at a time (etl_buffers.MERGE_PIECE,
    small here so that buffers are cut, also where the C walk hands a buffer to
    walk_buffer)."""
    from facts.capture import etl_buffers
    monkeypatch.setattr(etl_buffers, "MERGE_PIECE", piece)
    path = VARIANTS[name](tmp_path / "v.etl")
    assert _fused(path) == _general(path)


@needs_cext
def test_c_tcp_fields_build_what_fast_segment_builds(tmp_path):
    """The loop's TcpSegment from the C walk's header fields equals fastpcap.fast_segment's
    on the same frame, and the walk gives no fields exactly where fast_segment decodes
    nothing (also on damaged frames)."""
    bodies = [b for path in _sources(tmp_path) for b in _bodies(path)]
    rnd = random.Random(9)
    for body in list(bodies):
        damaged = bytearray(body)
        for _ in range(60):
            damaged[rnd.randrange(len(damaged))] = rnd.randrange(256)
        bodies.append(bytes(damaged))
    checked = 0
    for body in bodies:
        items = _c_walk(body)[0]
        for _ts, key, _app, code, _d, _orig, start, end, _body, tcp in items:
            if code != (0 if key is None else 1):
                assert tcp is None
                continue
            want = fast_segment(body, start, end, 7, 1.5, "in", LAYOUTS[1])
            if want is None:
                assert tcp is None
                continue
            (src, dst, sport, dport, ttl, ip_id, seq, ack, flags, reserved, win, plen,
             payload, truncated) = tcp
            got = dict(frame=7, ts=1.5, ipv=4, src=src, dst=dst, sport=sport, dport=dport,
                       ttl=ttl, ip_id=ip_id, seq=seq, ack=ack, flags=flags, reserved=reserved,
                       window=win, fragmented=False, direction="in", payload_len=plen,
                       truncated=truncated, payload=payload)
            assert got == {name: getattr(want, name) for name in got}
            checked += 1
    assert checked > 30


@needs_cext
def test_c_walk_frame_bytes_for_records(tmp_path):
    """extra 2 (reading records): every item carries its frame's bytes, body[start:end];
    extra 0: None; the items otherwise alike."""
    walk = etl_fastc._walk
    checked = 0
    for body in [b for path in _sources(tmp_path) for b in _bodies(path)]:
        state = (None, 0, 0, PKTMON_GUID, NDIS_GUID, etl_fastc.SIZE_AT_4_TABLE)
        plain, *rest = walk(body, 0, *state, 0)
        framed, *rest2 = walk(body, 0, *state, 2)
        assert rest == rest2 and [it[:9] for it in plain] == [it[:9] for it in framed]
        assert all(it[9] is None for it in plain)
        assert all(it[9] == body[it[6]:it[7]] for it in framed)
        checked += len(framed)
    assert checked > 30
