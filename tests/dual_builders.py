"""One TCP conversation seen from both ends, for dual-capture tests.

The client's capture sees its own packets with TTL 64 and the server's arriving with 118
(Windows 128, 10 routers); the server's capture sees its own with 128 and the client's with
60. The server's clock runs ``skew`` seconds ahead, and with ``nat`` the server sees the
client as a translated address and port (sequence numbers survive, as with most NATs).
A forged RST is put into one view only: that is what a middle device does.
"""
from __future__ import annotations

from tests.builders import Conversation, to_pcap


class DualConversation:
    def __init__(self, *, client=("10.0.0.2", 50000), server=("10.9.0.1", 22), skew: float = 5.0,
                 nat: tuple[str, int] | None = None, client_isn: int = 1000,
                 server_isn: int = 500_000, start: float = 1_700_000_000.0):
        common = dict(client_isn=client_isn, server_isn=server_isn)
        self.at_client = Conversation(client, server, client_ttl=64, server_ttl=118,
                                      start=start, **common)
        self.at_server = Conversation(nat or client, server, client_ttl=60, server_ttl=128,
                                      start=start + skew, **common)

    def send(self, side: str, flags: str = "A", payload: bytes = b"", *, dt: float = 0.0,
             reaches_peer: bool = True) -> None:
        """A genuine packet: seen by the sender's capture, and by the receiver's unless lost."""
        lag = 0.005
        sender, receiver = ((self.at_client, self.at_server) if side == "client"
                            else (self.at_server, self.at_client))
        sender.send(side, flags, payload, dt=dt)
        if reaches_peer:
            receiver.send(side, flags, payload, dt=dt + lag)
            receiver.time -= lag  # keep both clocks in step for the next packet

    def handshake(self) -> None:
        self.send("client", "S")
        self.send("server", "SA", dt=0.01)
        self.send("client", "A", dt=0.01)

    def forge(self, to: str, claimed: str, flags: str = "RA", *, ttl: int = 253,
              dt: float = 0.0) -> None:
        """A RST claiming to come from ``claimed`` that only ``to``'s capture receives."""
        view, other = ((self.at_client, self.at_server) if to == "client"
                       else (self.at_server, self.at_client))
        view.send(claimed, flags, dt=dt, ttl=ttl, forged=True)
        other.time += dt  # both clocks move on, only one capture sees the packet

    def write(self, tmp_path) -> tuple[str, str]:
        client = tmp_path / "client.pcap"
        server = tmp_path / "server.pcap"
        client.write_bytes(to_pcap(self.at_client.records))
        server.write_bytes(to_pcap(self.at_server.records))
        return str(client), str(server)
