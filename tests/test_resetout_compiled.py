"""The report entries built in C (engine._resetout, through reset_entry.reset_outs) against
reset_entry.reset_out.

Both must give the same ResetOut for every reset: the same dump, the same JSON bytes, the same
fields set on every model. Compared on a slice of the benchmark capture, on the shipped,
lab (both ends) and corpus captures, in English and Chinese, and on random variations of the
facts and evidence that reach every branch (dual verdicts, idle values for the fixes' cache
key, triggers, frames, baselines, roles). Inputs the C code does not take must be built by
reset_out, not differ.
"""
from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
from pydantic import BaseModel

from engine import Reasoner, fixparams, load_kb
from engine import reset_entry
from engine.analysis import Side, entries, gather
from engine.json_writer import items_json
from engine.report_model import ResetOut
from facts.evidence import DualEvidence
from tests.builders import bench_capture, capture_files

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "examples" / "lab_captures"

needs_c = pytest.mark.skipif(reset_entry.compiled_entries() is None,
                             reason="engine._resetout is not built or RSTSLEUTH_NO_CEXT is set")
pytestmark = needs_c


@pytest.fixture(scope="module")
def kb():
    return load_kb(None)


@pytest.fixture(scope="module")
def reasoner(kb):
    with Reasoner(kb) as r:
        yield r


def models_of(obj, out=None):
    """Every pydantic model inside obj, in order, with its fields set."""
    out = [] if out is None else out
    if isinstance(obj, BaseModel):
        out.append((type(obj), obj.model_fields_set))
        for v in obj.__dict__.values():
            models_of(v, out)
    elif isinstance(obj, list):
        for v in obj:
            models_of(v, out)
    return out


def shape(resets: list) -> tuple:
    return ([r.model_dump() for r in resets], [models_of(r) for r in resets],
            items_json(resets, ResetOut, {}))


def python_entries(monkeypatch, *args):
    with monkeypatch.context() as m:
        m.setattr(reset_entry, "_compiled_module", None)
        return entries(*args)


def assert_same(monkeypatch, kb, gathered, jobs, infs, lang="en", trace=None):
    made = entries(kb, gathered, jobs, infs, trace, lang, {}, {})
    want = python_entries(monkeypatch, kb, gathered, jobs, infs, trace, lang, {}, {})
    for i, (a, b) in enumerate(zip(made, want)):  # the first difference, readably
        assert a.model_dump() == b.model_dump(), (i, [
            (k, v, b.model_dump()[k]) for k, v in a.model_dump().items() if v != b.model_dump()[k]])
    assert shape(made) == shape(want)
    return made


def inferred(reasoner, gathered):
    return reasoner.infer_many([ev for _, _, ev, _ in gathered.jobs], share=False)


@pytest.fixture(scope="module")
def bench(tmp_path_factory, kb, reasoner):
    path = tmp_path_factory.mktemp("resetout") / "slice.pcap"
    bench_capture(path, 60_000, connections=1200, seed=5)
    gathered = gather(str(path), None, kb)
    return gathered, inferred(reasoner, gathered)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_benchmark_slice(monkeypatch, kb, bench, lang):
    gathered, infs = bench
    made = assert_same(monkeypatch, kb, gathered, gathered.jobs, infs, lang)
    assert len(made) > 100
    assert {r.origin for r in made} >= {"middle_device", "endpoint"}
    assert any(r.fixes for r in made) and any(r.trigger for r in made)


def test_the_compiled_pass_builds_them(monkeypatch, kb, bench):
    """Not reset_out through ``slow``: on the readers' facts nothing is declined."""
    gathered, infs = bench
    monkeypatch.setattr(reset_entry, "reset_out", lambda *a, **k: pytest.fail("declined"))
    assert len(entries(kb, gathered, gathered.jobs, infs, None, "en", {}, {})) == len(infs)


@pytest.mark.parametrize("path", capture_files(), ids=lambda p: str(p.relative_to(p.parents[1])))
def test_every_capture_we_have(monkeypatch, kb, reasoner, path):
    try:
        gathered = gather(str(path), None, kb)
    except Exception:  # noqa: BLE001 - unreadable on purpose (the readers' tests)
        pytest.skip("not a readable capture")
    assert_same(monkeypatch, kb, gathered, gathered.jobs, inferred(reasoner, gathered))


@pytest.mark.parametrize("scenario", sorted(p.name for p in LAB.iterdir() if p.is_dir()))
def test_lab_scenarios_with_both_captures(monkeypatch, kb, reasoner, scenario):
    """Both ends: dual verdicts, peer connection ids, the server side's resets."""
    gathered = gather(str(LAB / scenario / "client.pcap"), str(LAB / scenario / "server.pcap"),
                      kb)
    for lang in ("en", "zh"):
        assert_same(monkeypatch, kb, gathered, gathered.jobs, inferred(reasoner, gathered), lang)


# --- random variations of the benchmark slice's jobs -----------------------------------

IDLE_VALUES = [None, 0.0, 0.4, 0.5, 1.5, 2.5, 3.4, 59.5, 180.2, 180.7, 3600.4, 3599.5, -1.0,
               math.nan, math.inf, 1e17, 7, True]


def _vary(rng, job, i):
    side, rst, ev, dual = job
    ev = dict(ev)
    rst_changes = {}
    for name in ("idle_before_s", "idle_before_trigger_s"):
        if rng.random() < 0.5:
            value = rng.choice(IDLE_VALUES)
            ev[name] = value
            if type(value) in (float, int) or value is None:
                rst_changes[name] = value
    if rng.random() < 0.3:
        ev["cross_matched_devices"] = rng.choice([[], ["Cisco ASA"], ["Cisco ASA", "lab"], None])
    if rng.random() < 0.2:
        ev["path_mtu"] = rng.choice([1400, 1400.0, 20, None])
    if rng.random() < 0.2:
        ev.pop("client_ip", None)
    if rng.random() < 0.3:
        rst_changes["trigger_len"] = rng.choice([0, None, 1, 300])
    if rng.random() < 0.3:
        rst_changes["trigger_frame"] = rng.choice([None, 0, rst.frame, rst.frame - 1,
                                                   rst.frame + 1])
    if rng.random() < 0.2:
        rst_changes["baseline_ttl_conn"] = None
        rst_changes["baseline_ttl_conn_values"] = rng.choice([None, [64, 63]])
    if rng.random() < 0.2:
        # frac * 1e6 exactly 2.5 and 7812.5: rounded half to even
        rst_changes["time"] = rng.choice([0.0, 0.9999995, 1e9 + 0.0000005, 1.5e9 - 0.4999995,
                                          2.5e-06, 1500000000.0078125])
    if rng.random() < 0.2:
        side = Side(rng.choice([1, 2]), side.extraction, rng.choice(["client", "server",
                                                                    "unknown"]), {})
    if rng.random() < 0.5:
        dual = DualEvidence(
            observed_at="client", dual_available=rng.random() < 0.8,
            rst_from_capture_host=rng.random() < 0.2,
            dual_peer_saw_connection=rng.choice([None, True, False]),
            dual_peer_sent_rst=rng.choice([None, True, False]),
            dual_peer_received_rst=rng.choice([None, True, False]),
            dual_clock_offset_s=rng.choice([None, 0.25]), dual_nat_between=rng.choice(
                [None, True]))
    if rst_changes:
        rst = rst.model_copy(update={**rst_changes, "id": f"v{i}"})
    return side, rst, ev, dual


@pytest.mark.parametrize("seed", range(6))
def test_random_variations(monkeypatch, kb, bench, seed):
    gathered, infs = bench
    rng = random.Random(seed)
    picks = [rng.randrange(len(infs)) for _ in range(300)]
    jobs = [_vary(rng, gathered.jobs[p], i) for i, p in enumerate(picks)]
    assert_same(monkeypatch, kb, gathered, jobs, [infs[p] for p in picks],
                rng.choice(["en", "zh"]))


# a float frame is what this test feeds on purpose; dumping it makes pydantic warn
@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")
def test_declined_jobs_are_built_by_reset_out(monkeypatch, kb, bench):
    gathered, infs = bench
    side, rst, ev, dual = gathered.jobs[0]
    odd = [
        (side, rst.model_copy(update={"time": 17}), ev, dual),        # an int time
        (side, rst.model_copy(update={"frame": 3.0}), ev, dual),      # a float frame
        (Side("1", side.extraction, "client", {}), rst, ev, dual),    # a str side index
        (side, rst.model_copy(update={"id": 5}), ev, dual),           # an int id
        [side, rst, ev, dual],                                         # not a tuple
    ]
    seen = []
    real = reset_entry.reset_out
    monkeypatch.setattr(reset_entry, "reset_out", lambda *a: seen.append(1) or real(*a))
    made = entries(kb, gathered, odd, [infs[0]] * len(odd), None, "en", {}, {})
    assert len(seen) == len(odd)
    assert shape(made) == shape(python_entries(monkeypatch, kb, gathered, odd,
                                               [infs[0]] * len(odd), None, "en", {}, {}))


def test_measured_idle_keeps_the_first_of_equal_values(monkeypatch, kb, bench):
    """max(before, trigger): 7.0 and 7 are equal, and the first one is the measure (its
    JSON is 7.0)."""
    gathered, infs = bench
    side, rst, ev, dual = gathered.jobs[0]
    jobs = [(side, rst.model_copy(update={"idle_before_s": a, "idle_before_trigger_s": b}), ev,
             dual) for a, b in ((7.0, 7), (7, 7.0), (None, 7), (7, None))]
    made = assert_same(monkeypatch, kb, gathered, jobs, [infs[0]] * len(jobs))
    assert [type(r.measured_idle_s) for r in made] == [float, int, int, int]


def test_a_tracert_goes_to_reset_out(monkeypatch, kb, bench):
    from facts.pasted import parse
    gathered, infs = bench
    trace = parse("tracert", "Tracing route to x [10.0.0.9]\n  1  <1 ms  <1 ms  <1 ms  10.0.0.1\n")
    seen = []
    real = reset_entry.reset_out
    monkeypatch.setattr(reset_entry, "reset_out", lambda *a: seen.append(1) or real(*a))
    entries(kb, gathered, gathered.jobs[:5], infs[:5], trace, "en", {}, {})
    assert len(seen) == 5


def test_fixes_are_rendered_once_per_distinct_input(monkeypatch, kb, bench):
    """The C cache key: an evidence field no placeholder reads does not render again, one
    that a placeholder reads does."""
    gathered, infs = bench
    made = entries(kb, gathered, gathered.jobs, infs, None, "en", {}, {})
    i = next(k for k, r in enumerate(made)  # a fix that shows the server's address
             if any(gathered.jobs[k][2]["server_ip"] in f.text for f in r.fixes))
    side, rst, ev, dual = gathered.jobs[i]
    calls = []
    real = fixparams.compute
    monkeypatch.setattr(fixparams, "compute", lambda *a: calls.append(1) or real(*a))
    same = [(side, rst, dict(ev, unrelated_field=n), dual) for n in range(5)]
    cache: dict = {}
    entries(kb, gathered, same, [infs[i]] * 5, None, "en", {}, cache)
    once = len(calls)
    assert once >= 1
    other = [(side, rst, dict(ev, server_ip=f"192.0.2.{n}"), dual) for n in range(5)]
    made = entries(kb, gathered, other, [infs[i]] * 5, None, "en", {}, cache)
    assert len(calls) >= once + 5
    assert all(any(f"192.0.2.{n}" in f.text for f in r.fixes) for n, r in enumerate(made))


def _job_with_fix_showing(gathered, infs, kb, placeholder: str) -> int:
    made = entries(kb, gathered, gathered.jobs, infs, None, "en", {}, {})
    for k, r in enumerate(made):
        for f in r.fixes:
            fix = kb.fixes[f.id]
            if placeholder in fix.steps.en or placeholder in fix.title.en:
                return k
    raise AssertionError(f"no reset of the slice has a fix with {placeholder}")


@pytest.mark.parametrize("placeholder, field, values", [
    # rounded half to even by Python: 2, 3, 180, 181, 3600, 3600, 0, 2
    ("{idle_s}", "idle_before_trigger_s", [2.5, 3.4, 180.2, 180.7, 3599.5, 3600.4, 0.5, 1.5]),
    # an int port renders, a float one is not a port
    ("{server_port}", "conn_server_port", [1433, 1433.0, 22, 22.0]),
])
def test_fix_cache_keys_tell_apart_what_renders_differently(monkeypatch, kb, bench,
                                                            placeholder, field, values):
    gathered, infs = bench
    i = _job_with_fix_showing(gathered, infs, kb, placeholder)
    side, rst, ev, dual = gathered.jobs[i]
    jobs = [(side, rst, dict(ev, **{field: v, "idle_before_s": None}), dual) for v in values]
    made = assert_same(monkeypatch, kb, gathered, jobs, [infs[i]] * len(jobs))
    assert len({tuple(f.text for f in r.fixes) for r in made}) > len(values) // 2


def test_setup_refuses_models_with_other_fields():
    compiled = reset_entry.compiled_entries()
    models = {cls.__name__: (cls, tuple(cls.model_fields)) for cls in reset_entry._MODELS}
    changed = dict(models, ResetOut=(ResetOut, tuple(ResetOut.model_fields)[:-1]))
    assert compiled.setup(changed) is False
    assert compiled.setup(models) is True
    assert set(compiled.fields()) == set(models)


def test_param_inputs_cover_what_compute_reads(kb, bench):
    """Each parameter compute makes has the same value from its declared inputs alone: what
    the C cache keys fixes by (fixparams.PARAM_INPUTS)."""
    gathered, _ = bench
    evidences = [ev for _, _, ev, _ in gathered.jobs[:200]]
    evidences += [dict(evidences[0], path_mtu=1400, tracert_hop=3,
                       cross_matched_devices=["Cisco ASA"], idle_before_trigger_s=3600.4)]
    made = set()
    for ev in evidences:
        full = fixparams.compute(ev, kb)
        made |= set(full)
        for name, value in full.items():
            inputs = fixparams.PARAM_INPUTS[name]
            fields = {f for f in inputs if f != fixparams.IDLE}
            if fixparams.IDLE in inputs:
                fields |= {"idle_before_s", "idle_before_trigger_s"}
            alone = fixparams.compute({k: ev[k] for k in fields if k in ev}, kb)
            assert alone.get(name) == value and type(alone.get(name)) is type(value), name
    assert made == set(fixparams.PARAM_INPUTS)


def test_render_fast_path_matches_the_loop():
    rng = random.Random(3)
    templates = ["Set {idle_s} s on {server_ip}:{server_port}", "{keepalive_ms:,} ms",
                 "{a:>6}|{b:.1f}|{{literal}}", "no placeholders", "{unknown} stays"]
    values = [1, 2.5, "x", 3600, None, True, 1e20]
    for _ in range(500):
        template = rng.choice(templates)
        params = {n: rng.choice(values) for n in ("idle_s", "server_ip", "server_port",
                                                   "keepalive_ms", "a", "b")
                  if rng.random() < 0.8}
        loop = fixparams.render_parts(fixparams._parsed(template), params)
        assert fixparams.render_text(template, params) == loop, (template, params)


def test_repeated_builds_leave_nothing_behind(kb, bench):
    from leakcheck import growth
    gathered, infs = bench
    jobs, few = gathered.jobs[:40], infs[:40]
    odd = [(jobs[0][0], jobs[0][1].model_copy(update={"time": 17}), jobs[0][2], jobs[0][3])]
    cache: dict = {}
    classes: dict = {}
    entries(kb, gathered, jobs, few, None, "en", classes, cache)

    def run(times):
        for _ in range(times // 20 or 1):
            entries(kb, gathered, jobs, few, None, "en", classes, cache)
            entries(kb, gathered, odd, few[:1], None, "en", classes, cache)

    assert growth(run, times=2000) < 20000
