from pathlib import Path

import pytest

from facts.errors import UserError
from facts.pasted.registry import RDP_POLICY_KEY, TCPIP_KEY, parse_reg_query

DATA = Path(__file__).parent / "data" / "pasted"


def load(name):
    return (DATA / name).read_text(encoding="utf-8")


def test_full_listing_explicit_and_absent_defaults():
    r = parse_reg_query(load("reg_tcpip_full.txt"))
    assert r.tcpip_pasted
    assert (r.keepalive_time_ms.value, r.keepalive_time_ms.explicit) == (300000, True)
    assert (r.tcp_max_data_retransmissions.value, r.tcp_max_data_retransmissions.explicit) == (8, True)
    # a full listing without KeepAliveInterval proves it is absent: default applies
    ki = r.keepalive_interval_ms
    assert (ki.value, ki.explicit, ki.source) == (1000, False, "absent")
    key = r.key("HKLM\\SYSTEM\\CurrentControlSet\\Services\\Tcpip\\Parameters")
    assert key.values["NV HostName"].value == "WS-0142"
    assert key.values["NameServer"].data == ""
    assert key.values["SearchList"].data == "corp.example.com\\0lab.example.com"
    assert r.key(TCPIP_KEY + "\\Interfaces").values == {}
    assert r.keepalive_probes == 10


def test_single_value_without_command_line():
    r = parse_reg_query(load("reg_tcpip_v_keepalivetime.txt"))
    assert r.keepalive_time_ms.value == 1_800_000 and r.keepalive_time_ms.explicit
    # other values were not asked for: default value, but not proven absent
    assert r.keepalive_interval_ms.source == "not_pasted" and r.keepalive_interval_ms.value == 1000


def test_missing_value_error_english_means_default():
    r = parse_reg_query(load("reg_tcpip_v_missing_en.txt"))
    kt = r.keepalive_time_ms
    assert (kt.value, kt.explicit, kt.source) == (7_200_000, False, "absent")
    assert r.missing[0].value == "KeepAliveTime"
    assert r.keepalive_interval_ms.value == 1000 and r.keepalive_interval_ms.explicit


def test_missing_value_error_chinese_means_default():
    r = parse_reg_query(load("reg_tcpip_v_missing_zh.txt"))
    assert r.tcpip_pasted
    assert (r.keepalive_time_ms.value, r.keepalive_time_ms.source) == (7_200_000, "absent")


def test_bare_error_without_command():
    r = parse_reg_query("ERROR: The system was unable to find the specified registry key or value.\n")
    assert r.keepalive_time_ms.source == "absent" and r.tcpip_pasted


def test_rdp_policy_minutes_not_confused_with_tcpip():
    r = parse_reg_query(load("reg_rdp_policy.txt"))
    assert r.rdp_keepalive_enabled is True and r.rdp_keepalive_interval_min == 1
    assert r.key(RDP_POLICY_KEY) is not None
    assert not r.tcpip_pasted
    assert r.keepalive_interval_ms.source == "not_pasted"   # RDP's KeepAliveInterval is not Tcpip's


def test_same_key_pasted_twice_merges():
    text = load("reg_tcpip_v_keepalivetime.txt") + load("reg_tcpip_full.txt")
    r = parse_reg_query(text)
    assert sum(1 for k in r.keys if k.path == TCPIP_KEY) == 1
    assert r.keepalive_time_ms.value == 300000   # the later full listing wins
    assert r.keepalive_interval_ms.source == "absent"


@pytest.mark.parametrize("text", ["", "KeepAliveTime = 300000", "ERROR: Invalid syntax.\n"])
def test_not_reg_query(text):
    with pytest.raises(UserError, match="reg_query"):
        parse_reg_query(text)
