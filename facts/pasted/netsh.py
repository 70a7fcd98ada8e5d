"""``netsh int tcp show global`` (en and zh-CN): the TCP stack switches that change how a
Windows host behaves on a path (auto-tuning, ECN, timestamps, initial RTO, SYN retries)."""
from __future__ import annotations

import re
from typing import Optional

from pydantic import Field

from ._util import PastedModel, fail, lines_of

EXPECTED = "'netsh int tcp show global' output ('TCP Global Parameters' / 'TCP 全局参数' and 'Label : value' rows)"

# English labels are stable across Windows versions; keys are ours.
_EN = {
    "receive-side scaling state": "rss_state",
    "chimney offload state": "chimney_offload_state",
    "netdma state": "netdma_state",
    "direct cache access (dca)": "dca",
    "receive window auto-tuning level": "autotuning_level",
    "add-on congestion control provider": "congestion_provider",
    "ecn capability": "ecn",
    "rfc 1323 timestamps": "timestamps",
    "initial rto": "initial_rto_ms",
    "receive segment coalescing state": "rsc_state",
    "non sack rtt resiliency": "non_sack_rtt_resiliency",
    "max syn retransmissions": "max_syn_retransmissions",
    "fast open": "fast_open",
    "fast open fallback": "fast_open_fallback",
    "hystart": "hystart",
    "proportional rate reduction": "proportional_rate_reduction",
    "pacing profile": "pacing_profile",
}
# zh-CN translations vary a little between builds, so match on distinctive fragments (checked
# in order: the more specific first).
_ZH = [
    ("自动调节", "autotuning_level"),
    ("缩放", "rss_state"),
    ("烟囱", "chimney_offload_state"),
    ("NetDMA", "netdma_state"),
    ("DCA", "dca"),
    ("拥塞控制", "congestion_provider"),
    ("ECN", "ecn"),
    ("时间戳", "timestamps"),
    ("RTO", "initial_rto_ms"),
    ("段合并", "rsc_state"),
    ("Sack", "non_sack_rtt_resiliency"),
    ("SYN", "max_syn_retransmissions"),
    ("快速打开回退", "fast_open_fallback"),
    ("快速打开", "fast_open"),
    ("HyStart", "hystart"),
    ("比例", "proportional_rate_reduction"),
    ("节奏", "pacing_profile"),
    ("步调", "pacing_profile"),
]
_VALUE_ZH = {"已启用": "enabled", "启用": "enabled", "已禁用": "disabled", "禁用": "disabled",
             "正常": "normal", "关闭": "off", "默认": "default", "无": "none"}
_SEPARATORS = re.compile(r"[:：]")


def _row(line: str) -> Optional[tuple[str, str]]:
    """'Label      : value' split at the first colon (a regex backtracks on long junk lines)."""
    m = _SEPARATORS.search(line)
    if not m:
        return None
    label, value = line[:m.start()].strip(), line[m.end():].strip()
    return (label, value) if label else None


_TITLE = re.compile(r"TCP Global Parameters|TCP 全局参数", re.IGNORECASE)


class NetshTcpGlobal(PastedModel):
    settings: dict[str, str] = Field(default_factory=dict, description="Normalised key -> value "
                                     "(values lower-case English)")
    raw_labels: dict[str, str] = Field(default_factory=dict, description="Normalised key -> label "
                                       "as printed")
    language: str = "en"

    def _get(self, key: str) -> Optional[str]:
        return self.settings.get(key)

    def _flag(self, key: str) -> Optional[bool]:
        value = self._get(key)
        return None if value is None else value in ("enabled", "on")

    def _int(self, key: str) -> Optional[int]:
        value = self._get(key)
        return int(value) if value is not None and value.isdigit() else None

    @property
    def autotuning_level(self) -> Optional[str]:
        return self._get("autotuning_level")

    @property
    def ecn_enabled(self) -> Optional[bool]:
        return self._flag("ecn")

    @property
    def timestamps_enabled(self) -> Optional[bool]:
        return self._flag("timestamps")

    @property
    def initial_rto_ms(self) -> Optional[int]:
        return self._int("initial_rto_ms")

    @property
    def max_syn_retransmissions(self) -> Optional[int]:
        return self._int("max_syn_retransmissions")


def _key_for(label: str) -> str:
    key = _EN.get(re.sub(r"\s+", " ", label.strip().lower()))
    if key:
        return key
    for fragment, zh_key in _ZH:
        if fragment.lower() in label.lower():
            return zh_key
    return re.sub(r"[^0-9a-z]+", "_", label.lower()).strip("_") or label.strip()


def parse_netsh_tcp_global(text: str) -> NetshTcpGlobal:
    """Parse pasted netsh output; raise UserError when it is not that table."""
    lines = lines_of(text)
    start = next((i for i, line in enumerate(lines) if _TITLE.search(line)), None)
    if start is None:
        # Rows pasted without the title: accept them only when the first one has a known
        # English label, so unrelated "a : b" text is not mistaken for netsh.
        first = next((i for i, line in enumerate(lines) if _row(line)), None)
        if first is None or _row(lines[first])[0].lower() not in _EN:
            raise fail("netsh_tcp_global", EXPECTED)
        start = first - 1
    result = NetshTcpGlobal(language="zh" if "全局参数" in text else "en")
    for line in lines[start + 1:]:
        if not line.strip() or set(line.strip()) == {"-"}:
            continue
        row = _row(line)
        if not row or re.match(r"^\s*(?:PS )?[A-Za-z]:\\", line):
            break  # the table ended: next prompt ("C:\>") or another command's output
        label, value = row
        key = _key_for(label)
        result.settings[key] = _VALUE_ZH.get(value, value.lower())
        result.raw_labels[key] = label
    if not result.settings:
        raise fail("netsh_tcp_global", EXPECTED + "; the title was found but no rows")
    return result


def looks_like(text: str) -> bool:
    return bool(_TITLE.search(text))
