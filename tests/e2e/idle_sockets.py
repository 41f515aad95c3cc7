#!/usr/bin/env python3
"""Idle connections for agent.bats: opens N TCP connections to HOST:PORT
that send nothing, prints "open N" once they are all connected, then
waits up to WAIT seconds for the peer to close them and prints
"closed K of N after T s" (K: how many it closed, T: when the last one
went). Exits 0.

usage: idle_sockets.py HOST:PORT N WAIT
"""
import select
import socket
import sys
import time

host, port = sys.argv[1].rsplit(":", 1)
n, wait = int(sys.argv[2]), float(sys.argv[3])
socks = [socket.create_connection((host, int(port))) for _ in range(n)]
print(f"open {n}", flush=True)
start = time.monotonic()
open_ = set(socks)
last = 0.0
while open_ and time.monotonic() - start < wait:
    r, _, _ = select.select(list(open_), [], [], 0.2)
    for s in r:
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not data:
            open_.discard(s)
            last = time.monotonic() - start
print(f"closed {n - len(open_)} of {n} after {last:.1f} s", flush=True)
