"""facts.cross.analyse in C (facts._ctrack.cross_analyse) against its Python code.

Both must give the same CrossEvidence for every RST: the same values of the same types, the
same fields set, the same key order. Compared on a slice of the benchmark capture, on the
shipped and corpus captures, and on thousands of random fact sets built to reach every pattern
(cycles by idle time and by lifetime with odd and even counts, bursts, rate limits and policy
blocks, source-port exhaustion by port count and by reuse, TTL shifts, one-sided flows, idle
matches). Inputs the C code does not take must fall back to the Python result, not differ.
"""
from __future__ import annotations

import math
import random

import pytest

from facts import cross, ctrack
from facts.evidence import CrossEvidence
from facts.extract import extract
from facts.fastmodel import construct
from facts.models import Connection, Endpoint, RstEvent
from tests.builders import bench_capture, capture_files

DEFAULTS = [("Cisco ASA", 3600.0), ("F5 BIG-IP", 300), ("Palo Alto", 3600.0),
            ("Linux conntrack", 432000.0), ("lab", 3.0)]

needs_c = pytest.mark.skipif(cross._compiled() is None,
                             reason="facts._ctrack is not built or RSTSLEUTH_NO_CEXT is set")
pytestmark = needs_c


def compiled(conns, rsts, defaults=DEFAULTS):
    """The C result, or None when it declines the input."""
    tolerances = cross._tolerances(tuple(defaults), cross.IDLE_MATCH_REL, cross.IDLE_MATCH_ABS_S)
    return cross._compiled()(conns, rsts, tolerances, CrossEvidence,
                             tuple(CrossEvidence.model_fields), cross._constants())


def shape(out: dict) -> list:
    """Everything that must be equal: ids in order, each model's class, its __dict__ with the
    key order and every value's type, its fields set."""
    return [(rid, type(ev), list(ev.__dict__.items()),
             [type(v) for v in ev.__dict__.values()], ev.model_fields_set)
            for rid, ev in out.items()]


def assert_same(conns, rsts, defaults=DEFAULTS):
    c = compiled(conns, rsts, defaults)
    assert c is not None, "the compiled pass declined facts of the readers' types"
    assert shape(c) == shape(cross.analyse_python(conns, rsts, defaults))
    return c


@pytest.fixture(scope="module")
def bench_slice(tmp_path_factory):
    path = tmp_path_factory.mktemp("crossc") / "slice.pcap"
    bench_capture(path, 60_000, connections=1200, seed=11)
    return extract(str(path))


def test_benchmark_slice(bench_slice):
    out = assert_same(bench_slice.connections, bench_slice.rsts)
    assert len(out) == len(bench_slice.rsts) > 100
    assert any(v.cross_idle_matches_default for v in out.values())
    assert any(v.cross_port_syn_rejects for v in out.values())
    # analyse takes the compiled result itself
    assert shape(cross.analyse(bench_slice.connections, bench_slice.rsts, DEFAULTS)) == shape(out)


@pytest.mark.parametrize("path", capture_files(), ids=lambda p: p.name)
def test_every_capture_we_have(path):
    try:
        ex = extract(str(path))
    except Exception as exc:  # a damaged capture that the readers refuse: nothing to compare
        pytest.skip(f"{path.name}: {exc}")
    assert_same(ex.connections, ex.rsts)


# --- random facts reaching every pattern -------------------------------------------------

def _conn(rng, i, client, server, start, *, syn=True, handshake=None, one_sided=False):
    duration = rng.choice([0.002, 0.5, 3.0, 30.0, 181.0, 3600.4])
    ttls = [{}, {}]
    changes = [0, 0]
    for side in (0, 1):
        kind = rng.random()
        if kind < 0.15:      # a path change: two TTLs of one initial TTL
            a = rng.choice([50, 60, 117, 250])
            ttls[side] = {a: 5, a - rng.choice([1, 2]): 7}
            changes[side] = 1
        elif kind < 0.25:    # two TTLs of different initial TTLs (a SYN proxy)
            ttls[side] = {rng.choice([60, 64]): 3, rng.choice([120, 128, 250]): 4}
            changes[side] = 1
        elif kind < 0.3:     # alternating paths
            ttls[side] = {61: 4, 60: 4}
            changes[side] = rng.choice([2, 5])
        else:
            ttls[side] = {rng.choice([54, 64, 117, 128, 249]): rng.randint(1, 9)}
    c2s = 0 if one_sided and rng.random() < 0.5 else rng.randint(1, 9)
    s2c = 0 if one_sided and c2s else rng.randint(0 if one_sided else 1, 9)
    return construct(Connection, 
        id=f"c{i}", client=Endpoint(ip=client[0], port=client[1]),
        server=Endpoint(ip=server[0], port=server[1]), start=start, end=start + duration,
        syn_time=start if syn else None,
        handshake=handshake or rng.choice(["none", "syn", "syn_synack", "complete"]),
        packets_c2s=c2s, packets_s2c=s2c, client_ttls=ttls[0], server_ttls=ttls[1],
        client_ttl_changes=changes[0], server_ttl_changes=changes[1])


def _rst(rng, j, conn, time, *, answers_syn=False, idle=None, trigger=None):
    return construct(RstEvent, 
        id=f"r{j}", connection_id=conn.id, connection=conn, time=time, rst_answers_syn=answers_syn,
        idle_before_s=idle, idle_before_trigger_s=trigger)


def random_facts(seed: int):
    rng = random.Random(seed)
    servers = [(f"192.0.2.{k}", p) for k in range(1, 4) for p in (22, 443, 3389)]
    clients = [f"10.0.{k}.{m}" for k in range(2) for m in range(1, 5)]
    if rng.random() < 0.3:   # one client and server: source ports are reused
        servers, clients = servers[:1], clients[:1]
    conns, rsts = [], []
    t = 1_700_000_000.0 + rng.random()
    for i in range(rng.randint(5, 160)):
        pattern = rng.random()
        server = rng.choice(servers[: rng.randint(1, len(servers))])
        client = (rng.choice(clients), rng.choice([40000, 40001, 50000 + i, 50000 + i % 7]))
        t += rng.choice([0.0, 0.001, 0.2, 0.45, 0.55, 1.0, 3.0, 30.0, 400.0])
        c = _conn(rng, i, client, server, t, syn=rng.random() < 0.85,
                  one_sided=rng.random() < 0.1)
        conns.append(c)
        if pattern < 0.35:   # refused or rate-limited SYN
            rsts.append(_rst(rng, len(rsts), c, t + 0.001, answers_syn=rng.random() < 0.8,
                             idle=rng.choice([None, 0.001]), trigger=None))
        elif pattern < 0.6:  # reset after an idle time (a timeout's period, with jitter)
            idle = rng.choice([3.0, 181.0, 300.0, 3600.4, 1799.0]) \
                + rng.uniform(-2.5, 2.5) * rng.choice([1.0, 0.2])
            rsts.append(_rst(rng, len(rsts), c, c.end + idle, idle=rng.choice([idle, None, 0.0]),
                             trigger=rng.choice([None, idle - 1, idle + 0.5, -1.0])))
        elif pattern < 0.7:  # a RST storm in one connection
            for k in range(rng.randint(2, 4)):
                rsts.append(_rst(rng, len(rsts), c, c.end + 0.1 * k, idle=0.1 * k))
        # else: closed without a RST
    if rng.random() < 0.3 and conns:   # a RST whose connection is not in the list
        stray = _conn(rng, 10_000, ("10.9.9.9", 1), servers[0], t + 1)
        rsts.append(_rst(rng, len(rsts), stray, t + 2, idle=5.0))
    if rng.random() < 0.2 and len(conns) > 2:   # two connections with one id: the last wins
        dup = _conn(rng, 0, ("10.0.0.1", 40000), servers[0], conns[0].start + 0.5)
        conns.insert(rng.randrange(len(conns)), dup)
    if rng.random() < 0.3:  # connections not in order of start
        rng.shuffle(conns)
    rsts.sort(key=lambda r: r.time)
    return conns, rsts


@pytest.mark.parametrize("block", range(6))
def test_random_facts(block):
    totals = {"cycle": 0, "above": 0, "below": 0, "exhausted": 0, "shift": 0, "one_sided": 0,
              "matched": 0, "burst": 0}
    for seed in range(block * 200, block * 200 + 200):
        conns, rsts = random_facts(seed)
        out = assert_same(conns, rsts)
        for v in out.values():
            totals["cycle"] += bool(v.cross_reconnect_cycle)
            totals["above"] += v.cross_rejects_above_rate is True
            totals["below"] += v.cross_rejects_above_rate is False
            totals["exhausted"] += bool(v.cross_source_port_exhaustion)
            totals["shift"] += bool(v.cross_ttl_shift)
            totals["one_sided"] += bool(v.cross_one_sided_flow)
            totals["matched"] += bool(v.cross_idle_matches_default)
            totals["burst"] += (v.cross_resets_same_second or 0) > 1
    assert all(totals.values()), totals   # every pattern was reached


def test_cycles_with_even_and_odd_counts_and_both_measures():
    """Even counts take the mean of the middle two; a period comes from the idle times when
    every reset has one, else from the lifetimes."""
    rng = random.Random(1)
    server = ("192.0.2.1", 443)
    for n in (3, 4, 5, 6):
        for by_idle in (True, False):
            conns, rsts = [], []
            t = 1_700_000_000.0
            for i in range(n):
                c = _conn(rng, i, ("10.0.0.1", 41000 + i), server, t)
                conns.append(c)
                idle = 3600.0 + 0.5 * i if by_idle else None
                rsts.append(_rst(rng, i, c, t + 7200.0 + i, idle=idle))
                t += 9000.0
            out = assert_same(conns, rsts)
            assert all(v.cross_reconnect_cycle for v in out.values())
    # a period of exactly CYCLE_MIN_PERIOD_S is a cycle, a hair below it is not
    for lifetime, cycle in ((cross.CYCLE_MIN_PERIOD_S, True), (0.9990234375, False)):
        conns = [_conn(rng, i, ("10.0.0.1", 41000 + i), server, 1e9 + 100.0 * i) for i in range(3)]
        rsts = [_rst(rng, i, c, c.start + lifetime) for i, c in enumerate(conns)]
        assert rsts[0].time - conns[0].start == lifetime
        out = assert_same(conns, rsts)
        assert [v.cross_reconnect_cycle for v in out.values()] == [cycle] * 3


def test_source_port_exhaustion_by_count_and_by_reuse():
    def users(prefix, ip, port, starts, duration):
        return [construct(Connection,
            id=f"{prefix}{i}", client=Endpoint(ip=ip, port=port(i)),
            server=Endpoint(ip="192.0.2.1", port=80), start=t, end=t + duration, syn_time=t,
            handshake="complete", packets_c2s=1, packets_s2c=1, client_ttls={64: 1},
            server_ttls={64: 1}, client_ttl_changes=0, server_ttl_changes=0)
            for i, t in enumerate(starts)]

    reuses = range(cross.REUSES_FOR_EXHAUSTION + 1)
    conns = users("c", "10.0.0.1", lambda i: 1024 + i,
                  [1e9 + i * 0.001 for i in range(int(cross.EPHEMERAL_PORTS * 0.85) + 1)], 0.01)
    reused = users("u", "10.0.0.2", lambda i: 5555, [2e9 + i * 5.0 for i in reuses], 1.0)
    # exactly PORT_REUSE_WINDOW_S after the last use ended still counts as a reuse
    edge = users("e", "10.0.0.3", lambda i: 6666, [3e9 + i * 40.0 for i in reuses], 10.0)
    assert edge[1].start - edge[0].end == cross.PORT_REUSE_WINDOW_S
    rng = random.Random(2)
    rsts = [_rst(rng, 0, conns[-1], 1e9 + 30, idle=1.0), _rst(rng, 1, reused[-1], 2e9 + 100, idle=1.0),
            _rst(rng, 2, edge[-1], 3e9 + 900, idle=1.0)]
    out = assert_same(conns + reused + edge, rsts)
    assert all(v.cross_source_port_exhaustion for v in out.values())
    assert not compiled(conns[1:] + reused[1:] + edge[1:], rsts[:0]) and \
        not any(v.cross_source_port_exhaustion
                for v in assert_same(conns[1:] + reused[1:] + edge[1:], rsts).values())


def test_constants_are_read_at_each_call(monkeypatch, bench_slice):
    before = assert_same(bench_slice.connections, bench_slice.rsts)
    monkeypatch.setattr(cross, "BURST_WINDOW_S", 600.0)
    monkeypatch.setattr(cross, "CYCLE_MIN_RESETS", 2)
    after = assert_same(bench_slice.connections, bench_slice.rsts)
    assert shape(after) != shape(before)


# --- inputs the C code declines ------------------------------------------------------------

def _one(**conn_changes):
    rng = random.Random(0)
    c = _conn(rng, 0, ("10.0.0.1", 40000), ("192.0.2.1", 443), 1e9)
    c.__dict__.update(conn_changes)
    return [c], [_rst(rng, 0, c, 1e9 + 5, idle=4.0)]


@pytest.mark.parametrize("change", [
    {"start": 1_000_000_000},                      # an int time: the result would be typed
    {"end": math.nan},
    {"syn_time": math.inf},
    {"handshake": None},
    {"packets_c2s": 1.0},
    {"client_ttls": [(64, 1)]},
    {"client_ttl_changes": "1"},
    {"client": Endpoint.model_construct(ip=b"\x0a\x00\x00\x01", port=40000)},
    {"server": Endpoint.model_construct(ip="192.0.2.1", port="443")},
])
def test_declined_inputs_fall_back_to_python(change):
    conns, rsts = _one(**change)
    assert compiled(conns, rsts) is None
    try:
        want = cross.analyse_python(conns, rsts, DEFAULTS)
    except TypeError as exc:   # the Python code refuses it too: analyse must raise the same
        with pytest.raises(TypeError, match=str(exc)[:20]):
            cross.analyse(conns, rsts, DEFAULTS)
    else:
        assert shape(cross.analyse(conns, rsts, DEFAULTS)) == shape(want)


def test_declined_rst_fields_and_missing_fields():
    conns, rsts = _one()
    rsts[0].__dict__["rst_answers_syn"] = 1          # not a bool
    assert compiled(conns, rsts) is None
    conns, rsts = _one()
    del rsts[0].__dict__["idle_before_trigger_s"]     # unset: pydantic's model_construct
    assert compiled(conns, rsts) is None
    conns, rsts = _one()
    conns[0].__dict__["client_ttls"] = {"64": 1, "60": 2}   # a TTL that is no int
    conns[0].__dict__["client_ttl_changes"] = 1
    assert compiled(conns, rsts) is None
    with pytest.raises(TypeError):
        cross.analyse(conns, rsts, DEFAULTS)         # as the Python code does


def test_other_containers_and_models_are_not_taken():
    conns, rsts = _one()
    assert shape(cross.analyse(tuple(conns), tuple(rsts), DEFAULTS)) == \
        shape(cross.analyse_python(conns, rsts, DEFAULTS))
    tolerances = cross._tolerances(tuple(DEFAULTS), cross.IDLE_MATCH_REL, cross.IDLE_MATCH_ABS_S)
    fn = cross._compiled()
    names = tuple(CrossEvidence.model_fields)
    assert fn(conns, rsts, tolerances, CrossEvidence, names[::-1], cross._constants()) is None
    assert fn(conns, rsts, ((DEFAULTS[0][0], "3600", 2.0),), CrossEvidence, names,
              cross._constants()) is None
    with pytest.raises(TypeError):
        fn(conns, rsts, tolerances, CrossEvidence, names, ("3",) * 8)


def test_keys_in_another_order_are_still_found():
    """The field reader remembers where each key sat; a dict with another order (a model
    built by pydantic from keyword arguments in another order is not, but a __dict__ can be)
    must read the same values."""
    conns, rsts = _one()
    c = conns[0]
    object.__setattr__(c, "__dict__", dict(reversed(list(c.__dict__.items()))))
    assert_same(conns, rsts)
    assert_same(*_one())


def test_repeated_calls_leave_nothing_behind():
    from leakcheck import growth
    conns, rsts = random_facts(7)
    declined, declined_rsts = _one(start=1)
    odd_ttls, odd_rsts = _one(client_ttls={"64": 1, "60": 2}, client_ttl_changes=1)

    def run(times):
        for _ in range(times):
            compiled(conns, rsts)
            compiled(declined, declined_rsts)
            compiled(odd_ttls, odd_rsts)

    assert compiled(conns, rsts) and compiled(odd_ttls, odd_rsts) is None
    assert growth(run, times=2000) < 20000


# --- dual.capture_role's votes (facts._ctrack.capture_votes) ----------------------------------

def _votes_python(conns):
    from facts.dual import _undecremented
    client = server = 0
    for c in conns:
        cl, sl = _undecremented(c.client_ttls), _undecremented(c.server_ttls)
        if cl and sl is False:
            client += 1
        elif sl and cl is False:
            server += 1
    return client, server


def test_capture_votes_and_role_on_random_histograms():
    from facts import dual
    from facts._ctrack import capture_votes
    rng = random.Random(5)
    ttls = [32, 64, 128, 255, 54, 63, 117, 127, 250, 254, 1]
    for _ in range(3000):
        conns = []
        for i in range(rng.randint(0, 12)):
            hist = [{t: rng.randint(1, 4) for t in rng.sample(ttls, rng.randint(0, 3))}
                    for _side in (0, 1)]
            conns.append(construct(Connection, id=f"c{i}", client_ttls=hist[0], server_ttls=hist[1]))
        assert capture_votes(conns) == _votes_python(conns)
        assert dual.capture_role(conns) == dual.capture_role_python(conns)


def test_capture_votes_ties_go_to_the_first_most_frequent_ttl():
    from facts._ctrack import capture_votes
    first_initial = construct(Connection, id="a", client_ttls={64: 3, 60: 3}, server_ttls={60: 1})
    first_decremented = construct(Connection, id="b", client_ttls={60: 3, 64: 3}, server_ttls={60: 1})
    assert capture_votes([first_initial]) == (1, 0) == _votes_python([first_initial])
    assert capture_votes([first_decremented]) == (0, 0) == _votes_python([first_decremented])


def test_capture_votes_declines_other_types():
    from facts import dual
    from facts._ctrack import capture_votes
    odd = [construct(Connection, id="a", client_ttls={"64": 1}, server_ttls={60: 1}),
           construct(Connection, id="b", client_ttls={64: 1.0}, server_ttls={60: 1})]
    for conn in odd:
        assert capture_votes([conn]) is None
    assert capture_votes(tuple(odd)) is None
    assert dual.capture_role(odd) == dual.capture_role_python(odd)
    assert dual.capture_role(iter([])) == "unknown"
