from pathlib import Path

import pytest

from facts.errors import UserError
from facts.pasted.firewall_log import normalise_asa_reason, parse_firewall_log

DATA = Path(__file__).parent / "data" / "pasted"
T_102231 = 1773483751.0          # 2026-03-14 10:22:31 UTC


def load(name):
    return (DATA / name).read_text(encoding="utf-8")


def test_asa_teardowns():
    log = parse_firewall_log(load("fw_asa.log"))
    assert len(log.entries) == 8 and log.skipped_lines == 1     # the 302013 Built line
    e = log.entries[0]
    assert (e.vendor, e.time, e.time_naive, e.year_known) == ("cisco_asa", T_102231, True, True)
    assert (e.src, e.sport, e.src_zone, e.dst, e.dport, e.dst_zone) == \
        ("203.0.113.80", 443, "outside", "10.0.5.21", 51012, "inside")
    assert (e.duration_s, e.bytes, e.reason_raw, e.reason) == (3603.0, 48213, "Conn-timeout",
                                                               "idle_timeout")
    assert e.start_time == T_102231 - 3603
    reasons = [(x.reason, x.reset_from) for x in log.entries]
    assert reasons == [("idle_timeout", None), ("tcp_rst", "outside"), ("other", None),
                       ("policy_deny", None), ("fin", None), ("threat", None),
                       ("tcp_rst", "inside"), ("tcp_rst", "firewall")]
    no_year = log.entries[2]
    assert no_year.time is None and not no_year.year_known
    assert (no_year.wall_clock.month, no_year.wall_clock.day, no_year.wall_clock.hour) == (3, 14, 10)
    rfc5424 = log.entries[3]
    assert rfc5424.time == T_102231 + 253 and rfc5424.time_naive is False
    assert log.entries[4].sport == 443 and log.entries[4].dport == 51230     # '(LOCAL\user)' skipped
    assert log.entries[7].src == "2001:db8:50::80" and log.entries[7].dport == 51544


@pytest.mark.parametrize("raw,expected", [
    ("Conn-timeout", ("idle_timeout", None)), ("Idle timeout", ("idle_timeout", None)),
    ("TCP Reset-O", ("tcp_rst", "outside")), ("TCP Reset-I", ("tcp_rst", "inside")),
    ("TCP FINs", ("fin", None)), ("Deny Terminate", ("policy_deny", None)),
    ("SYN Timeout", ("other", None)), ("FIN Timeout", ("other", None)),
    ("Flow reset by IPS", ("threat", "firewall")), ("Flow closed by inspection", ("threat", None)),
    ("Xlate Clear", ("other", None))])
def test_asa_reason_table(raw, expected):
    assert normalise_asa_reason(raw) == expected


def test_paloalto_traffic_csv():
    log = parse_firewall_log(load("fw_paloalto.log"))
    assert [e.reason for e in log.entries] == ["idle_timeout", "tcp_rst", "tcp_rst",
                                                "policy_deny", "threat"]
    e = log.entries[0]
    assert (e.vendor, e.src, e.sport, e.dst, e.dport) == ("paloalto", "10.0.5.21", 51012,
                                                          "203.0.113.80", 443)
    assert (e.nat_src, e.nat_sport, e.duration_s, e.bytes) == ("198.51.100.10", 40001, 3603.0, 48213)
    assert e.time == T_102231 and e.time_naive
    assert log.entries[1].reset_from == "server" and log.entries[2].reset_from == "client"
    # RFC 5424 header '+01:00' turns the 11:25:10 local CSV time into 10:25:10 UTC
    assert log.entries[2].time == T_102231 + 159 and not log.entries[2].time_naive
    assert log.entries[3].nat_src is None and log.entries[3].reason_raw == "policy-deny"


def test_fortigate_key_value():
    log = parse_firewall_log(load("fw_fortigate.log"))
    e = log.entries[0]
    assert e.time == pytest.approx(T_102231 + 0.512346, abs=1e-5) and not e.time_naive
    assert (e.reason_raw, e.reason, e.duration_s, e.bytes) == ("timeout", "idle_timeout", 3605.0, 48213)
    assert (e.nat_src, e.nat_sport) == ("198.51.100.10", 40001)
    # tz="+0800" without eventtime: 18:24:02 local is 10:24:02 UTC
    assert log.entries[1].time == T_102231 + 91 and log.entries[1].reset_from == "server"
    assert log.entries[2].time_naive and log.entries[2].reason == "tcp_rst"
    assert log.entries[3].reason == "policy_deny"
    assert log.entries[4].time == T_102231 + 269 and log.entries[4].reason == "fin"   # µs
    assert log.entries[5].reason == "threat"      # server-rst with utmaction=block


def test_mixed_vendors_and_noise():
    text = "\n".join(["random text", load("fw_asa.log").splitlines()[0],
                      load("fw_fortigate.log").splitlines()[0], "%ASA-6-302014: Teardown TCP"])
    log = parse_firewall_log(text)
    assert [e.vendor for e in log.entries] == ["cisco_asa", "fortigate"]
    assert log.skipped_lines == 2 and log.entries[1].line_no == 3


@pytest.mark.parametrize("text", ["", "Mar 14 10:00:00 host sshd[1]: Accepted publickey",
                                  "%ASA-6-302013: Built outbound TCP connection 1 for a:1.1.1.1/1"])
def test_not_a_firewall_log(text):
    with pytest.raises(UserError, match="firewall_log"):
        parse_firewall_log(text)
