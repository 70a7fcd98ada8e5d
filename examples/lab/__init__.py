"""The real lab: middle-device resets reproduced with network namespaces, real kernels and
netfilter, captured at both ends.

``python -m examples.lab list`` / ``run SCENARIO --out DIR`` (or ``rstsleuth lab ...``). Each
run writes ``client.pcap``, ``server.pcap`` and ``expected.yaml`` (see :mod:`.expected`).
Needs root, iproute2, iptables and tcpdump; HAProxy for the two load-balancer scenarios.

The names below load on first use: ``rstsleuth`` registers the ``lab`` command on every run,
and importing the scenarios and their models cost every other command 60 ms.
"""
from __future__ import annotations

from typing import Any

__all__ = ["SCENARIOS", "Expected", "LabError", "lab_unavailable_reason", "read_expected", "run",
           "scenario_names"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
