#!/usr/bin/env python3
"""A slowloris client for limits.bats: sends a request one byte per
INTERVAL seconds and reports when and how the server ended it.

usage: slowloris.py URL headers|body|keepalive TOKEN [INTERVAL]
  headers:   the request line and headers trickle in;
  body:      the headers arrive at once, the body trickles in;
  keepalive: a GET /healthz is answered first, then the headers of a
             second request on the same connection trickle in.
Prints one line, "closed after 2.1s: <first line of the answer, or (none)>",
then the answer's body if any. Gives up (exit 1) after 60 s.
"""
import socket
import sys
import time

url, mode, token = sys.argv[1], sys.argv[2], sys.argv[3]
interval = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
host, port = url.split("//", 1)[1].rsplit(":", 1)
body = b'{"apiVersion":"keel/v1","kind":"Task","metadata":{"name":"slow"},"spec":{"image":"b"}}'
head = (
    "POST /apis/keel/v1/namespaces/default/tasks HTTP/1.1\r\n"
    f"Host: {host}\r\nAuthorization: Bearer {token}\r\n"
    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
).encode()
s = socket.create_connection((host, int(port)))
start = time.monotonic()
if mode == "body":
    s.sendall(head)
    trickle = body
elif mode == "keepalive":
    s.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    first = b""
    while not first.endswith(b"ok"):
        first += s.recv(65536)
    start = time.monotonic()  # the next request's deadline starts now
    trickle = head + body
else:
    trickle = head + body
got = b""
s.settimeout(interval)
for i in range(len(trickle)):
    try:
        s.send(trickle[i : i + 1])
    except OSError:
        break
    try:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    except socket.timeout:
        pass
    except OSError:
        break
    if time.monotonic() - start > 60:
        print("not closed within 60s")
        sys.exit(1)
s.settimeout(5)
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
except OSError:
    pass
elapsed = time.monotonic() - start
first = got.split(b"\r\n", 1)[0].decode(errors="replace") if got else "(none)"
print(f"closed after {elapsed:.1f}s: {first}")
if b"\r\n\r\n" in got:
    print(got.split(b"\r\n\r\n", 1)[1].decode(errors="replace").strip())
