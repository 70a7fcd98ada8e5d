"""Build the example captures in this folder with dpkt (run from anywhere:
``python examples/make_examples.py``). The output is deterministic, so the committed files
can be checked against a fresh build (tests/test_rst_facts_examples.py does)."""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.builders import Conversation, to_pcap  # noqa: E402

START = 1_700_000_000.0
CLIENT = ("10.0.0.2", 50123)
SERVER = ("10.20.30.40", 1433)  # a Windows SQL Server: TTL 128, arrives as 118 (10 hops)


def firewall_idle_reset() -> bytes:
    """A firewall two routers from the client drops the idle session after its 3600 s
    timer, then answers the client's next packet with a RST claiming to be the server."""
    conv = Conversation(client=CLIENT, server=SERVER, client_ttl=64, server_ttl=118,
                        start=START, client_isn=0x1A2B3C4D, server_isn=0x5E6F7081,
                        client_ip_id=0x2F10, server_ip_id=0x6A00)
    conv.handshake(rtt=0.012)
    conv.data("client", b"\x12\x01\x00\x2f\x00\x00\x01\x00PRELOGIN", dt=0.004)
    conv.data("server", b"\x04\x01\x00\x25\x00\x00\x01\x00PRELOGIN-OK", dt=0.006)
    conv.data("client", b"SELECT 1;", dt=0.050)
    conv.data("server", b"\x04\x01\x00\x15\x00\x00\x01\x00ROW 1", dt=0.006)
    conv.send("client", "A", dt=0.040)
    conv.data("client", b"SELECT name FROM sys.databases;", dt=3600.4)
    # TTL 253 from a device that starts at 255: two routers crossed, tracert hop 3.
    conv.send("server", "RA", dt=0.0021, ttl=253, forged=True, window=0)
    return to_pcap(conv.records)


def endpoint_reset() -> bytes:
    """The server itself resets: same TTL as its other packets, IP ID in sequence, seq
    exactly where its data ended."""
    conv = Conversation(client=CLIENT, server=SERVER, client_ttl=64, server_ttl=118,
                        start=START, client_isn=0x0BADF00D, server_isn=0x3C3C0000,
                        client_ip_id=0x2F10, server_ip_id=0x6A00)
    conv.handshake(rtt=0.012)
    conv.data("client", b"\x12\x01\x00\x2f\x00\x00\x01\x00PRELOGIN", dt=0.004)
    conv.data("server", b"\x04\x01\x00\x25\x00\x00\x01\x00PRELOGIN-OK", dt=0.006)
    conv.data("client", b"\x10\x01\x00\x90LOGIN7 user=app", dt=0.020)
    conv.send("server", "RA", dt=0.0031)
    return to_pcap(conv.records)


EXAMPLES = {"firewall_idle_reset.pcap": firewall_idle_reset,
            "endpoint_reset.pcap": endpoint_reset}


def main() -> int:
    for name, build in EXAMPLES.items():
        (HERE / name).write_bytes(build())
        print(HERE / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
