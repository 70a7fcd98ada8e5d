"""``reg query`` output for the TCP keepalive settings (Tcpip\\Parameters) and the RDP policy key.

reg.exe prints the same text in every locale except its error line, so only the "not found"
message needs a zh-CN form. A value reg query could not find means Windows uses its documented
default, so absence is a fact in its own right (explicit=False), not a gap.
"""
from __future__ import annotations

import re
from typing import Literal, Optional, Union

from pydantic import Field

from ._util import PastedModel, fail, lines_of

EXPECTED = "'reg query' output (an HKEY_... key line followed by 'Name    REG_TYPE    data' lines)"

TCPIP_KEY = r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters"
RDP_POLICY_KEY = r"HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Microsoft\Windows NT\Terminal Services"

# Documented defaults (Microsoft "TCP/IP and NBT configuration parameters for Windows"):
# KeepAliveTime 2 h, KeepAliveInterval 1 s, TcpMaxDataRetransmissions 5; Vista and later send
# 10 keepalive probes and the count is not configurable (TcpMaxDataRetransmissions no longer
# governs it).
DEFAULTS = {"KeepAliveTime": 7_200_000, "KeepAliveInterval": 1000, "TcpMaxDataRetransmissions": 5}
KEEPALIVE_PROBES_VISTA = 10

_ROOTS = {"HKLM": "HKEY_LOCAL_MACHINE", "HKCU": "HKEY_CURRENT_USER", "HKCR": "HKEY_CLASSES_ROOT",
          "HKU": "HKEY_USERS", "HKCC": "HKEY_CURRENT_CONFIG"}
_KEY_LINE = re.compile(r"^(HKEY_[A-Z_]+|HK(?:LM|CU|CR|U|CC))(\\.*)?$")
_VALUE_TYPE = re.compile(r"(?<=  )REG_[A-Z_]+(?=  |$)")
_COMMAND = re.compile(r"reg(?:\.exe)?\s+query\s+(?:\"(?P<qkey>[^\"]+)\"|(?P<key>\S+))"
                      r"(?:.*?/v\s+(?:\"(?P<qval>[^\"]+)\"|(?P<val>\S+)))?", re.IGNORECASE)
_NOT_FOUND = ("unable to find the specified registry key or value", "找不到指定的注册表项或值")
_ERROR = re.compile(r"^\s*(?:ERROR|错误)\s*[:：]\s*(.*)$")


class RegValue(PastedModel):
    name: str
    type: str
    data: str = Field("", description="As printed")
    value: Union[int, str, list[str], None] = Field(None, description="DWORD/QWORD as int, "
                                                    "MULTI_SZ as list, others as printed")


class RegKey(PastedModel):
    path: str = Field(description="Full root name, e.g. HKEY_LOCAL_MACHINE\\SYSTEM\\...")
    values: dict[str, RegValue] = Field(default_factory=dict)
    listing: Literal["full", "single", "unknown"] = Field("unknown", description="'single' for "
                                                          "/v queries: other values were not asked")


class RegMissing(PastedModel):
    """A 'not found' error, with the key/value the preceding command line asked for if pasted."""

    key: Optional[str] = None
    value: Optional[str] = None


class KeepaliveSetting(PastedModel):
    name: str
    value: int
    unit: str
    explicit: bool = Field(description="True when the registry holds the value; False when the "
                           "documented default applies")
    source: Literal["registry", "absent", "not_pasted"]


class RegQuery(PastedModel):
    """Everything read from one or more pasted reg query outputs."""

    keys: list[RegKey] = Field(default_factory=list)
    missing: list[RegMissing] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list, description="Other reg.exe errors, verbatim")
    keepalive_time_ms: KeepaliveSetting
    keepalive_interval_ms: KeepaliveSetting
    tcp_max_data_retransmissions: KeepaliveSetting
    keepalive_probes: int = Field(KEEPALIVE_PROBES_VISTA, description="Fixed at 10 since Vista")
    tcpip_pasted: bool = Field(False, description="The paste concerns the Tcpip\\Parameters key")
    rdp_keepalive_enabled: Optional[bool] = None
    rdp_keepalive_interval_min: Optional[int] = Field(None, description="RDP policy "
                                                      "KeepAliveInterval, minutes")

    def key(self, path: str) -> Optional[RegKey]:
        want = normalise_key(path).lower()
        return next((k for k in self.keys if k.path.lower() == want), None)


def normalise_key(path: str) -> str:
    path = path.strip().strip('"').rstrip("\\")
    root, _, rest = path.partition("\\")
    root = _ROOTS.get(root.upper(), root.upper())
    return f"{root}\\{rest}" if rest else root


def _typed(type_: str, data: str):
    if type_ in ("REG_DWORD", "REG_QWORD", "REG_DWORD_BIG_ENDIAN"):
        try:
            return int(data, 16) if data.lower().startswith("0x") else int(data)
        except ValueError:
            return data
    if type_ == "REG_MULTI_SZ":
        return [part for part in data.split("\\0") if part]
    return data


def _value_line(line: str) -> Optional[RegValue]:
    """'    Name    REG_TYPE    data' (names may hold single spaces). Split around the type
    token rather than with one big regex, which backtracks badly on long junk lines."""
    if not line.startswith("  ") or "REG_" not in line:
        return None
    m = _VALUE_TYPE.search(line)
    name = line[:m.start()].strip() if m else ""
    if not name:
        return None
    data = line[m.end():].strip()
    return RegValue(name=name, type=m.group(0), data=data, value=_typed(m.group(0), data))


def _is(path: Optional[str], key: str) -> bool:
    return path is not None and normalise_key(path).lower() == key.lower()


def _setting(result: RegQuery, name: str, unit: str) -> KeepaliveSetting:
    tcpip = result.key(TCPIP_KEY)
    if tcpip and name in tcpip.values and isinstance(tcpip.values[name].value, int):
        return KeepaliveSetting(name=name, value=tcpip.values[name].value, unit=unit,
                                explicit=True, source="registry")
    absent = (tcpip is not None and tcpip.listing != "single") or any(
        (m.key is None or _is(m.key, TCPIP_KEY)) and m.value in (None, name)
        for m in result.missing)
    return KeepaliveSetting(name=name, value=DEFAULTS[name], unit=unit, explicit=False,
                            source="absent" if absent else "not_pasted")


def parse_reg_query(text: str) -> RegQuery:
    """Parse pasted reg query output; raise UserError when there is neither a key nor an error."""
    keys: list[RegKey] = []
    missing: list[RegMissing] = []
    errors: list[str] = []
    command: Optional[re.Match] = None
    current: Optional[RegKey] = None
    for line in lines_of(text):
        if not line.strip():
            continue
        cm = _COMMAND.search(line)
        if cm:
            command, current = cm, None
            continue
        em = _ERROR.match(line)
        if em:
            if any(s in line for s in _NOT_FOUND):
                key = (command.group("qkey") or command.group("key")) if command else None
                val = (command.group("qval") or command.group("val")) if command else None
                missing.append(RegMissing(key=normalise_key(key) if key else None, value=val))
            else:
                errors.append(em.group(1).strip())
            command = None
            continue
        if _KEY_LINE.match(line.strip()) and not line.startswith(" "):
            asked_single = bool(command and (command.group("qval") or command.group("val")))
            listing = "single" if asked_single else "full" if command else "unknown"
            path = normalise_key(line.strip())
            # The same key pasted twice (a /v query and a full listing) is one key.
            current = next((k for k in keys if k.path.lower() == path.lower()), None)
            if current is None:
                current = RegKey(path=path, listing=listing)
                keys.append(current)
            elif listing == "full":
                current.listing = "full"
            continue
        value = _value_line(line)
        if value:
            if current is None:  # value lines pasted without their key: Tcpip is the usual one
                current = RegKey(path=TCPIP_KEY)
                keys.append(current)
            current.values[value.name] = value
    if not keys and not missing:
        if errors:
            raise fail("reg_query", f"{EXPECTED}; reg.exe said: {errors[0]}")
        raise fail("reg_query", EXPECTED)
    # Without a command line a block holding one value is most likely a /v query.
    for k in keys:
        if k.listing == "unknown":
            k.listing = "single" if len(k.values) == 1 else "full"
    result = RegQuery(keys=keys, missing=missing, errors=errors,
                      keepalive_time_ms=KeepaliveSetting(name="KeepAliveTime", value=0, unit="ms",
                                                         explicit=False, source="not_pasted"),
                      keepalive_interval_ms=KeepaliveSetting(name="KeepAliveInterval", value=0,
                                                             unit="ms", explicit=False,
                                                             source="not_pasted"),
                      tcp_max_data_retransmissions=KeepaliveSetting(
                          name="TcpMaxDataRetransmissions", value=0, unit="count",
                          explicit=False, source="not_pasted"))
    result.keepalive_time_ms = _setting(result, "KeepAliveTime", "ms")
    result.keepalive_interval_ms = _setting(result, "KeepAliveInterval", "ms")
    result.tcp_max_data_retransmissions = _setting(result, "TcpMaxDataRetransmissions", "count")
    result.tcpip_pasted = result.key(TCPIP_KEY) is not None or any(
        m.key is None or _is(m.key, TCPIP_KEY) for m in missing)
    rdp = result.key(RDP_POLICY_KEY)
    if rdp:
        enable = rdp.values.get("KeepAliveEnable")
        interval = rdp.values.get("KeepAliveInterval")
        if enable is not None and isinstance(enable.value, int):
            result.rdp_keepalive_enabled = enable.value != 0
        if interval is not None and isinstance(interval.value, int):
            result.rdp_keepalive_interval_min = interval.value
    return result


def looks_like(text: str) -> bool:
    return bool(re.search(r"^HKEY_[A-Z_]+\\", text, re.M)) or bool(_COMMAND.search(text)) or \
        any(s in text for s in _NOT_FOUND)
