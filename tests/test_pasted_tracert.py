from pathlib import Path

import pytest

from facts.errors import UserError
from facts.pasted.tracert import parse_tracert

DATA = Path(__file__).parent / "data" / "pasted"


def load(name):
    return (DATA / name).read_text(encoding="utf-8")


def test_windows_english_hops_names_and_timeouts():
    t = parse_tracert(load("tracert_win_en.txt"))
    assert (t.tool, t.target_name, t.target_ip, t.ip_version, t.max_hops) == \
        ("tracert", "app.example.com", "203.0.113.80", 4, 30)
    assert t.complete and t.reached_target
    assert [h.number for h in t.hops] == list(range(1, 8))
    assert t.hop(1).rtts_ms == [0.5, 0.5, 0.5]          # '<1 ms'
    assert t.hop(3).address is None and t.hop(3).timed_out
    assert t.hop(3).rtts_ms == [None, None, None]
    assert (t.hop(4).name, t.hop(4).address) == ("edge1.isp.example.net", "198.51.100.9")
    assert t.hop(5).rtts_ms == [12.0, None, 13.0]
    assert t.hop(6).name == "fw-dmz.example.com"
    assert t.hop(8) is None


def test_windows_chinese_locale():
    t = parse_tracert(load("tracert_win_zh.txt"))
    assert (t.target_name, t.target_ip, t.max_hops) == ("www.example.cn", "203.0.113.80", 30)
    assert t.complete
    assert t.hop(1).rtts_ms == [0.5, 0.5, 0.5]          # '<1 毫秒'
    assert t.hop(2).rtts_ms == [3.0, 2.0, 2.0]
    assert t.hop(3).timed_out and t.hop(3).address is None   # '请求超时。'
    assert t.hop(5).address == "203.0.113.80" and t.hop(5).name == "www.example.cn"


def test_windows_ipv6_literal_target():
    t = parse_tracert(load("tracert_win_ipv6_noname.txt"))
    assert t.target_ip == "2001:db8:50::80" and t.ip_version == 6
    assert t.hop(2).address == "2001:db8:ff::2" and t.hop(2).name is None
    assert t.reached_target


def test_windows_reports_unreachable():
    t = parse_tracert(load("tracert_win_unreachable.txt"))
    h = t.hop(3)
    assert h.address == "10.1.254.1" and not h.timed_out
    assert "Destination host unreachable" in h.annotations[0]
    assert not t.reached_target


def test_linux_several_addresses_and_annotations():
    t = parse_tracert(load("traceroute_linux.txt"))
    assert (t.tool, t.target_ip, t.max_hops) == ("traceroute", "203.0.113.80", 30)
    assert t.hop(1).name == "_gateway" and t.hop(1).rtts_ms == [0.412, 0.389, 0.371]
    assert t.hop(2).name is None                         # 'addr (addr)' is not a name
    assert t.hop(3).timed_out
    h4 = t.hop(4)
    assert h4.addresses == ["198.51.100.9", "198.51.100.10"]
    assert h4.names["198.51.100.10"] == "edge2.isp.example.net"
    assert h4.rtts_ms == [8.998, 9.107, 9.09]
    assert t.hop(5).rtts_ms == [12.511, None, 13.02]
    assert t.hop(6).annotations == ["!X", "!X"] and t.hop(6).rtts_ms[-1] is None


def test_linux_numeric_ipv6_with_host_unreachable():
    t = parse_tracert(load("traceroute_linux_n_ipv6.txt"))
    assert t.ip_version == 6
    assert t.hop(3).address == "2001:db8:50::1" and t.hop(3).annotations == ["!H"] * 3


@pytest.mark.parametrize("text", ["", "hello world", "Pinging 10.0.0.1 with 32 bytes of data:",
                                  "Tracing route to x [10.0.0.1]\nover a maximum of 30 hops:\n"])
def test_not_a_trace(text):
    with pytest.raises(UserError, match="tracert"):
        parse_tracert(text)


@pytest.mark.parametrize("text", ["Unable to resolve target system name nosuch.example.\n",
                                  "无法解析目标系统名称 nosuch.example。\n",
                                  "nosuch.example: Name or service not known\n"
                                  "Cannot handle \"host\" cmdline arg `nosuch.example' on position 1 (argc 1)\n"])
def test_unresolved_target_is_named(text):
    with pytest.raises(UserError, match="did not resolve"):
        parse_tracert(text)
