from pathlib import Path

import pytest

from facts.errors import UserError
from facts.pasted.ping import parse_ping

DATA = Path(__file__).parent / "data" / "pasted"


def load(name):
    return (DATA / name).read_text(encoding="utf-8")


def test_windows_english_mtu_search():
    r = parse_ping(load("ping_win_en_search.txt"))
    assert r.sizes_tried == [1472, 1372, 1373] and r.size_tried == 1472
    assert r.fragmentation_needed and r.mtu_reported is None
    assert (r.path_mtu, r.path_mtu_exact) == (1400, True)   # 1372 + 28, and 1373 failed
    a1472, a1372, a1373 = r.attempts
    assert a1472.frag_needed == 4 and a1472.reported_by is None and a1472.df_set
    assert a1372.replies == 4 and a1372.rtts_ms == [3.0, 2.0, 0.5, 2.0]
    assert a1373.frag_needed == 2 and a1373.replies == 0 and a1373.reported_by == "10.0.5.1"


def test_windows_chinese():
    r = parse_ping(load("ping_win_zh.txt"))
    first, second = r.attempts
    assert (first.target, first.target_ip, first.size) == ("www.example.cn", "203.0.113.80", 1472)
    assert first.frag_needed == 4
    assert (second.replies, second.timeouts, second.rtts_ms) == (3, 1, [12.0, 11.0, 0.5])
    assert r.fragmentation_needed
    assert r.path_mtu == 1428 and not r.path_mtu_exact   # 1400 + 28; somewhere below 1500


def test_linux_local_error_reports_mtu():
    r = parse_ping(load("ping_linux_local_error.txt"))
    a = r.attempts[0]
    assert (a.tool, a.size, a.total_size, a.frag_needed) == ("linux", 1472, 1500, 3)
    assert r.mtu_reported == 1400 and r.path_mtu == 1400 and r.path_mtu_exact


def test_linux_router_frag_needed_then_pass():
    r = parse_ping(load("ping_linux_frag_needed.txt"))
    assert r.attempts[0].reported_by == "10.20.0.1" and r.attempts[0].mtu_reported == 1400
    assert r.attempts[1].passed and r.attempts[1].total_size == 1400
    assert r.path_mtu == 1400 and r.path_mtu_at_least == 1400


def test_linux_ipv6_packet_too_big():
    r = parse_ping(load("ping_linux_ipv6_too_big.txt"))
    a = r.attempts[0]
    assert a.total_size == 1500 and a.reported_by == "2001:db8:ff::2"    # 1452 + 48
    assert r.path_mtu == 1280


def test_blackhole_timeouts_without_icmp():
    r = parse_ping(load("ping_win_blackhole.txt"))
    assert not r.fragmentation_needed
    assert r.blackhole_suspected
    assert r.path_mtu == 1228 and not r.path_mtu_exact


def test_single_passing_ping_gives_only_a_lower_bound():
    text = ("Pinging 10.0.7.15 with 1000 bytes of data:\n"
            "Reply from 10.0.7.15: bytes=1000 time=2ms TTL=126\n")
    r = parse_ping(text)
    assert r.path_mtu is None and r.path_mtu_at_least == 1028 and not r.fragmentation_needed


def test_full_size_pass_means_1500():
    r = parse_ping("Pinging 10.0.7.15 with 1472 bytes of data:\n"
                   "Reply from 10.0.7.15: bytes=1472 time<1ms TTL=128\n"
                   "\nPing statistics for 10.0.7.15:\n")
    assert r.path_mtu == 1500 and r.attempts[0].df_set is None


def test_without_df_replies_prove_nothing():
    r = parse_ping("C:\\>ping -l 1472 10.0.7.15\n\nPinging 10.0.7.15 with 1472 bytes of data:\n"
                   "Reply from 10.0.7.15: bytes=1472 time=3ms TTL=126\n")
    assert r.attempts[0].df_set is False
    assert r.path_mtu is None and r.path_mtu_at_least is None


def test_statistics_line_is_not_a_command():
    text = load("ping_win_en_search.txt").replace("C:\\>ping -f -l 1372 10.0.7.15\n", "")
    r = parse_ping(text)
    assert r.attempts[1].df_set is None      # no command line for this run; not "no DF"
    assert r.path_mtu == 1400


@pytest.mark.parametrize("text", ["", "Reply from 10.0.0.1: bytes=32 time=1ms TTL=64",
                                  "Tracing route to x [10.0.0.1]"])
def test_not_ping(text):
    with pytest.raises(UserError, match="ping_mtu"):
        parse_ping(text)


@pytest.mark.parametrize("text", ["Ping request could not find host nosuch. Please check the name and try again.\n",
                                  "Ping 请求找不到主机 nosuch。请检查该名称，然后重试。\n",
                                  "ping: nosuch: Name or service not known\n"])
def test_unresolved_target_is_named(text):
    with pytest.raises(UserError, match="ping_mtu.*did not resolve"):
        parse_ping(text)
