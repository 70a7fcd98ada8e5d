"""The lab's TCP server: a real program run inside the server namespace with ``ip netns exec``.

Standalone on purpose (standard library only, no project imports) so it runs the same under
any interpreter. It answers every message with ``OK <bytes>\\n``; with ``--abort`` it instead
closes abortively (SO_LINGER 0: the kernel sends RST) after the first message; with
``--abort-after-bytes N`` it answers the first message with N bytes and aborts while they are
still in flight (the kernel discards what is unsent and sends RST mid-transfer); with
``--close-after-reply`` it closes in order (FIN) after its first answer. With
``--health-port`` it also accepts (and quietly closes) health-check connections. Prints one
JSON line ``{"event": "listening"}`` once ready, then one line per connection event.
"""
from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import threading
import time


def emit(event: str, **data) -> None:
    data.update(event=event, t=time.time())
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def listener(bind: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((bind, port))
    sock.listen(64)
    return sock


def serve_connection(conn: socket.socket, peer, abort: bool, close_after_reply: bool,
                     abort_after_bytes: int = 0) -> None:
    with conn:
        while True:
            try:
                data = conn.recv(65536)
            except OSError as exc:
                emit("error", peer=str(peer[0]), error=type(exc).__name__)
                return
            if not data:
                emit("closed", peer=str(peer[0]))
                return
            if abort_after_bytes:
                try:
                    conn.sendall(b"x" * abort_after_bytes)
                except OSError as exc:
                    emit("error", peer=str(peer[0]), error=type(exc).__name__)
                    return
                # sendall returns once the last byte is queued: much of it is still unsent.
                abort = True
            if abort:
                # l_onoff=1, l_linger=0: close() discards the socket and sends RST.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                emit("abort", peer=str(peer[0]), received=len(data))
                return
            try:
                conn.sendall(b"OK %d\n" % len(data))
            except OSError as exc:
                emit("error", peer=str(peer[0]), error=type(exc).__name__)
                return
            if close_after_reply:
                # An orderly close (FIN); data arriving afterwards meets a closed socket and
                # the kernel answers it with a RST.
                emit("closing", peer=str(peer[0]))
                return


def accept_loop(sock: socket.socket, abort: bool, quiet: bool,
                close_after_reply: bool = False, abort_after_bytes: int = 0) -> None:
    while True:
        conn, peer = sock.accept()
        if quiet:
            conn.close()
            continue
        emit("accepted", peer=str(peer[0]), port=peer[1])
        threading.Thread(target=serve_connection,
                         args=(conn, peer, abort, close_after_reply, abort_after_bytes),
                         daemon=True).start()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, action="append", required=True)
    parser.add_argument("--abort", action="store_true")
    parser.add_argument("--close-after-reply", action="store_true")
    parser.add_argument("--abort-after-bytes", type=int, default=0)
    parser.add_argument("--health-port", type=int)
    parser.add_argument("--lifetime", type=float, default=60.0,
                        help="Exit after this many seconds whatever happens")
    args = parser.parse_args()
    for port in args.port:
        sock = listener(args.bind, port)
        threading.Thread(target=accept_loop, args=(sock, args.abort, False, args.close_after_reply,
                                                   args.abort_after_bytes),
                         daemon=True).start()
    if args.health_port:
        health = listener(args.bind, args.health_port)
        threading.Thread(target=accept_loop, args=(health, False, True), daemon=True).start()
    emit("listening", ports=args.port)
    time.sleep(args.lifetime)
    return 0


if __name__ == "__main__":
    sys.exit(main())
