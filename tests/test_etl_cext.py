"""The compiled event walk (facts/capture/_etlwalk.c) against the Python stepping of
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
            max(totlen - 20 - doff, 0), start + 34 + doff, min(ip_end, end), ip_end > end)


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
    code = "from facts.capture import etl_fastc; print(etl_fastc.available())"
    env = dict(os.environ, RSTSLEUTH_NO_CEXT="1")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "False"


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
