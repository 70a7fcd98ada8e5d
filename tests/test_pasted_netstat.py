from pathlib import Path

import pytest

from facts.errors import UserError
from facts.pasted.netstat import parse_netstat

DATA = Path(__file__).parent / "data" / "pasted"


def load(name):
    return (DATA / name).read_text(encoding="utf-8")


def test_windows_english_rows_and_helpers():
    n = parse_netstat(load("netstat_ano_en.txt"))
    assert n.source == "windows" and len(n.entries) == 18
    assert [(e.local_ip, e.pid) for e in n.listening(8443)] == [("0.0.0.0", 3312), ("::", 3312)]
    assert n.listening(80) == []
    assert {e.remote_port for e in n.established(8443)} == {51012, 60110, 51544}
    assert n.count_by_state() == {"LISTENING": 5, "ESTABLISHED": 5, "TIME_WAIT": 3,
                                  "CLOSE_WAIT": 1, "SYN_SENT": 1}
    assert n.count_by_state(1433) == {"ESTABLISHED": 1, "CLOSE_WAIT": 1, "TIME_WAIT": 2}
    udp = [e for e in n.entries if e.proto == "UDP"]
    assert len(udp) == 3 and all(e.state is None and e.remote_ip is None for e in udp)
    v6 = [e for e in n.entries if e.ip_version == 6 and e.state == "ESTABLISHED"][0]
    assert (v6.local_ip, v6.local_port, v6.remote_ip) == ("2001:db8:5::21", 8443, "2001:db8:9::40")
    syn = [e for e in n.entries if e.state == "SYN_SENT"][0]
    assert syn.local_ip.startswith("fe80::") and syn.remote_port == 445


def test_ephemeral_ports_towards_one_server():
    n = parse_netstat(load("netstat_ano_en.txt"))
    assert n.ephemeral_ports_in_use("10.0.7.15") == 4
    assert n.ephemeral_ports_in_use("10.0.7.15:1433") == 4
    assert n.ephemeral_ports_in_use("10.0.7.15", 80) == 0
    assert n.ephemeral_ports_in_use("[2001:db8:9::40]:51544") == 1


def test_port_exhaustion_visible_in_a_big_table():
    rows = [f"  TCP    10.0.5.21:{p:<5}        10.0.7.15:1433         TIME_WAIT       0"
            for p in range(49152, 49152 + 15000)]
    n = parse_netstat("\n".join(rows))
    assert n.ephemeral_ports_in_use("10.0.7.15") == 15000
    assert n.ephemeral_fraction_in_use("10.0.7.15") == pytest.approx(15000 / 16384)


def test_chinese_header_states_stay_english():
    n = parse_netstat(load("netstat_ano_zh.txt"))
    assert len(n.entries) == 5
    assert n.listening(3389)[0].pid == 1180
    assert n.count_by_state()["CLOSE_WAIT"] == 1


def test_findstr_fragment_without_header():
    n = parse_netstat(load("netstat_findstr_fragment.txt"))
    assert len(n.entries) == 3 and n.listening(1433) == []
    assert n.count_by_state(1433) == {"ESTABLISHED": 1, "CLOSE_WAIT": 1, "TIME_WAIT": 1}


def test_linux_netstat_states_mapped():
    n = parse_netstat(load("netstat_linux_tanp.txt"))
    assert n.source == "linux"
    assert n.listening(22)[0].pid == 812
    assert n.listening(8080)[0].ip_version == 6 and n.listening(8080)[0].local_ip == "::"
    assert n.count_by_state()["SYN_RECEIVED"] == 1
    tw = [e for e in n.entries if e.state == "TIME_WAIT"][0]
    assert tw.pid is None and tw.remote_port == 5432


@pytest.mark.parametrize("text", ["", "Active Connections\n\n  Proto  Local Address\n",
                                  "TCP 1.2.3.4 5.6.7.8 BOGUS 12"])
def test_not_netstat(text):
    with pytest.raises(UserError, match="netstat"):
        parse_netstat(text)
