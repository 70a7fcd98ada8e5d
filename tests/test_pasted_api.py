"""facts.pasted: the parser registry, detection and the ContextEvidence mapping."""
from pathlib import Path

import pytest

from facts.errors import UserError
from facts.evidence import ContextEvidence
from facts.pasted import PARSERS, detect, detect_all, parse
from facts.pasted.context import context_facts
from facts.pasted.tracert import Trace

from test_pasted_correlate import make_rst

DATA = Path(__file__).parent / "data" / "pasted"
KIND_OF_SAMPLE = {"tracert": "tracert", "traceroute": "tracert", "reg": "reg_query",
                  "netsh": "netsh_tcp_global", "netstat": "netstat", "ping": "ping_mtu",
                  "fw": "firewall_log"}
SAMPLES = sorted(p for p in DATA.iterdir() if p.name != "README.md")


def load(name):
    return (DATA / name).read_text(encoding="utf-8")


def test_registry_names():
    assert set(PARSERS) == {"tracert", "reg_query", "netsh_tcp_global", "netstat", "ping_mtu",
                            "firewall_log"}


def test_every_sample_has_a_readme_line():
    readme = load("README.md")
    assert all(f"`{p.name}`" in readme for p in SAMPLES)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_detect_names_the_command(path):
    text = path.read_text(encoding="utf-8")
    expected = KIND_OF_SAMPLE[path.name.split("_")[0]]
    assert detect(text) == expected
    assert parse(expected, text) is not None


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_other_parsers_reject_the_sample(path):
    text = path.read_text(encoding="utf-8")
    expected = KIND_OF_SAMPLE[path.name.split("_")[0]]
    for name in PARSERS:
        if name == expected:
            continue
        with pytest.raises(UserError) as err:
            parse(name, text)
        assert name in str(err.value) and "\n" not in str(err.value)


def test_detect_nothing_and_unknown_kind():
    assert detect("") is None and detect("hello\nworld") is None and detect_all("") == []
    with pytest.raises(UserError, match="unknown pasted-output kind 'ipconfig'"):
        parse("ipconfig", "x")
    with pytest.raises(UserError, match="unknown"):
        context_facts("ipconfig", None)


def check_fields(facts):
    ContextEvidence(**facts)            # every key is a real field with a valid value
    return facts


def test_context_reg_query():
    assert check_fields(context_facts("reg_query", parse("reg_query", load("reg_tcpip_full.txt")))) \
        == {"keepalive_time_ms": 300000}
    assert context_facts("reg_query", parse("reg_query", load("reg_tcpip_v_missing_zh.txt"))) \
        == {"keepalive_time_ms": 7200000}
    assert context_facts("reg_query", parse("reg_query", load("reg_rdp_policy.txt"))) == {}


def test_context_ping():
    assert check_fields(context_facts("ping_mtu", parse("ping_mtu", load("ping_win_en_search.txt")))) \
        == {"path_mtu": 1400, "mtu_fragmentation_needed": True}
    assert context_facts("ping_mtu", parse("ping_mtu", load("ping_win_blackhole.txt"))) \
        == {"path_mtu": 1228, "mtu_fragmentation_needed": True}
    full = parse("ping_mtu", "Pinging 10.0.0.1 with 1472 bytes of data:\n"
                             "Reply from 10.0.0.1: bytes=1472 time=1ms TTL=64\n")
    assert context_facts("ping_mtu", full) == {"path_mtu": 1500, "mtu_fragmentation_needed": False}
    small = parse("ping_mtu", "Pinging 10.0.0.1 with 32 bytes of data:\n"
                              "Reply from 10.0.0.1: bytes=32 time=1ms TTL=64\n")
    assert context_facts("ping_mtu", small) == {}


def test_context_netstat_port_listening():
    full = parse("netstat", load("netstat_ano_en.txt"))
    assert check_fields(context_facts("netstat", full, port=8443)) == {"port_listening": True}
    assert context_facts("netstat", full, port=8080) == {"port_listening": False}
    assert context_facts("netstat", full) == {}          # many ports: which one matters?
    # client-side fragment (remote port 1433): says nothing about the server's listener
    fragment = parse("netstat", load("netstat_findstr_fragment.txt"))
    assert context_facts("netstat", fragment, port=1433) == {}
    assert context_facts("netstat", fragment) == {}      # port inferred as 1433, still client side
    server = parse("netstat", "  TCP    0.0.0.0:1433     0.0.0.0:0      LISTENING     2210\n"
                              "  TCP    10.0.7.15:1433   10.0.5.21:49770  ESTABLISHED   2210\n")
    assert context_facts("netstat", server) == {"port_listening": True}
    stopped = parse("netstat", "  TCP    10.0.7.15:1433   10.0.5.21:49770  CLOSE_WAIT    2210\n"
                               "  TCP    10.0.7.15:1433   10.0.5.21:49771  TIME_WAIT     0\n")
    assert context_facts("netstat", stopped) == {"port_listening": False}


def test_context_firewall_log():
    many = parse("firewall_log", load("fw_asa.log"))
    assert context_facts("firewall_log", many) == {"path_has_firewall": True}
    assert context_facts("firewall_log", many, port=25)["firewall_log_reason"] == "threat"
    assert "firewall_log_reason" not in context_facts("firewall_log", many, port=443)
    assert "firewall_log_reason" not in context_facts("firewall_log", many, port=9999)
    one = parse("firewall_log", load("fw_paloalto.log").splitlines()[0])
    assert check_fields(context_facts("firewall_log", one)) == {
        "path_has_firewall": True, "firewall_log_reason": "idle_timeout", "path_has_nat": True}


def test_context_tracert_and_netsh_prove_nothing_alone():
    assert context_facts("tracert", parse("tracert", load("tracert_win_en.txt"))) == {}
    assert context_facts("netsh_tcp_global",
                         parse("netsh_tcp_global", load("netsh_tcp_global_zh.txt"))) == {}


def test_tracert_names_the_device_at_the_rst_hop():
    trace: Trace = parse("tracert", load("tracert_win_en.txt"))
    # TTL 250 from a 255 device: 5 decrements, so tracert hop 6 sent it
    rst = make_rst("r1", 1.0e9, ("192.168.10.20", 50000), ("203.0.113.80", 443), ttl=250)
    assert rst.tracert_hop == 6
    assert trace.hop_for_rst(rst).label == "fw-dmz.example.com [203.0.113.1]"
    assert trace.hop(3).label == "*" and trace.hop(2).label == "10.20.0.1"


def _mutations(seed=7, rounds=300):
    import random
    rng = random.Random(seed)
    texts = [p.read_text(encoding="utf-8") for p in SAMPLES]
    for _ in range(rounds):
        t = rng.choice(texts)
        if rng.random() < 0.5:
            yield t[:rng.randrange(len(t))]
        else:
            chars = list(t)
            for _ in range(rng.randrange(1, 20)):
                chars[rng.randrange(len(chars))] = rng.choice("0123456789:./[]()*<> \n-,=\"%中")
            yield "".join(chars)


def test_mangled_pastes_give_user_errors_only():
    # Truncated or corrupted pastes either parse or raise UserError: never a traceback.
    for text in _mutations():
        for name, parser in PARSERS.items():
            try:
                context_facts(name, parser(text), port=443)
            except UserError:
                pass


@pytest.mark.parametrize("junk", [" " * 30000 + "x", "a" + " " * 30000 + "b:c",
                                  "  a" + " " * 30000 + "b REG_SZ", "C:\\>" + " " * 30000 + "ping"])
def test_long_junk_lines_stay_fast(junk):
    import time
    start = time.perf_counter()
    for parser in PARSERS.values():
        with pytest.raises(UserError):
            parser(junk)
    assert time.perf_counter() - start < 2.0
