from pathlib import Path

import pytest

from facts.errors import UserError
from facts.pasted.netsh import parse_netsh_tcp_global

DATA = Path(__file__).parent / "data" / "pasted"


def load(name):
    return (DATA / name).read_text(encoding="utf-8")


def test_windows10_english():
    r = parse_netsh_tcp_global(load("netsh_tcp_global_win10_en.txt"))
    assert r.language == "en"
    assert r.autotuning_level == "normal"
    assert r.ecn_enabled is False and r.timestamps_enabled is False
    assert r.initial_rto_ms == 1000 and r.max_syn_retransmissions == 4
    assert r.raw_labels["autotuning_level"] == "Receive Window Auto-Tuning Level"
    assert r.settings["pacing_profile"] == "off"
    assert len(r.settings) == 14


def test_windows7_english_older_rows():
    r = parse_netsh_tcp_global(load("netsh_tcp_global_win7_en.txt"))
    assert r.autotuning_level == "disabled" and r.ecn_enabled is True
    assert r.initial_rto_ms == 3000 and r.max_syn_retransmissions == 2
    assert r.settings["chimney_offload_state"] == "disabled" and r.settings["dca"] == "disabled"
    assert "fast_open" not in r.settings


def test_chinese_labels_map_to_the_same_keys():
    zh = parse_netsh_tcp_global(load("netsh_tcp_global_zh.txt"))
    en = parse_netsh_tcp_global(load("netsh_tcp_global_win10_en.txt"))
    assert zh.language == "zh"
    assert zh.settings == en.settings
    assert zh.raw_labels["autotuning_level"] == "接收窗口自动调节级别"
    assert zh.raw_labels["max_syn_retransmissions"] == "最大 SYN 重新传输次数"


def test_table_stops_at_next_prompt_and_localised_values():
    text = ("TCP 全局参数\n-----\n接收窗口自动调节级别 : 已禁用\nECN 功能 : 已启用\n"
            "C:\\>ipconfig\nWindows IP Configuration\n")
    r = parse_netsh_tcp_global(text)
    assert r.settings == {"autotuning_level": "disabled", "ecn": "enabled"}


def test_unknown_rows_kept_under_a_slug():
    r = parse_netsh_tcp_global("TCP Global Parameters\n---\nMemory Pressure Protection : disabled\n")
    assert r.settings == {"memory_pressure_protection": "disabled"}


def test_rows_without_title():
    r = parse_netsh_tcp_global("Receive Window Auto-Tuning Level    : highlyrestricted\n"
                               "ECN Capability : enabled\n")
    assert r.autotuning_level == "highlyrestricted" and r.ecn_enabled


@pytest.mark.parametrize("text", ["", "Name : value\nOther : thing",
                                  "TCP Global Parameters\n----------\n"])
def test_not_netsh(text):
    with pytest.raises(UserError, match="netsh_tcp_global"):
        parse_netsh_tcp_global(text)
