#!/usr/bin/env python3
"""A burst of concurrent writes against many watches of one keel server.

Opens WATCHES raw watch streams on the Tasks of the default namespace from
the current revision R, then creates WRITES Tasks from WRITERS threads at
once (so commits group, and the hub fans several changes out per round).
Reads each stream's chunked body itself, to count the chunks as well as
the events. Checks that every watch got the revisions R+1 .. R+WRITES, each
once, in order (nothing lost, nothing twice, no reordering across chunk
boundaries), and that the hub batched: fewer chunks than events in all.

Usage: watch_burst.py URL TOKEN [--watches 50] [--writes 400] [--writers 16]
Prints the figures; exits 1, saying why, when a check fails. Stdlib only.
"""

import argparse
import http.client
import json
import selectors
import socket
import sys
import threading
import time
import urllib.parse

TASKS = "/apis/keel/v1/namespaces/default/tasks"


def current_rv(host, port, token):
    c = http.client.HTTPConnection(host, port, timeout=30)
    c.request("GET", TASKS, headers={"Authorization": "Bearer " + token})
    r = c.getresponse()
    body = json.loads(r.read())
    c.close()
    return int(body["metadata"]["resourceVersion"])


class Stream:
    """One watch: a raw socket and a chunked-body parser."""

    def __init__(self, host, port, token, rv):
        self.sock = socket.create_connection((host, port))
        req = (f"GET {TASKS}?watch=1&resourceVersion={rv}&timeoutSeconds=120 HTTP/1.1\r\n"
               f"Host: {host}\r\nAuthorization: Bearer {token}\r\n\r\n")
        self.sock.sendall(req.encode())
        self.sock.setblocking(False)
        self.buf = b""
        self.headers_done = False
        self.chunks = 0
        self.revs = []
        self.line = b""
        self.error = None

    def feed(self, data):
        self.buf += data
        while True:
            if not self.headers_done:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                status = self.buf.split(b"\r\n", 1)[0]
                if status.split()[1:2] != [b"200"]:
                    self.error = f"watch refused: {status!r}"
                    return
                self.buf = self.buf[end + 4:]
                self.headers_done = True
                continue
            nl = self.buf.find(b"\r\n")
            if nl < 0:
                return
            size = int(self.buf[:nl].split(b";")[0], 16)
            if len(self.buf) < nl + 2 + size + 2:
                return
            data, self.buf = self.buf[nl + 2:nl + 2 + size], self.buf[nl + 2 + size + 2:]
            if size == 0:
                self.error = self.error or "stream ended"
                return
            self.chunks += 1
            self.lines(data)

    def lines(self, data):
        self.line += data
        *whole, self.line = self.line.split(b"\n")
        for ln in whole:
            ev = json.loads(ln)
            if ev["type"] == "BOOKMARK":
                continue
            if ev["type"] != "ADDED":
                self.error = f"unexpected event: {ln[:200]!r}"
                continue
            self.revs.append(int(ev["object"]["metadata"]["resourceVersion"]))


def writer(host, port, token, names, failures):
    c = http.client.HTTPConnection(host, port, timeout=60)
    for name in names:
        body = json.dumps({"apiVersion": "keel/v1", "kind": "Task", "metadata": {"name": name},
                           "spec": {"image": "busybox"}})
        c.request("POST", TASKS, body=body, headers={"Authorization": "Bearer " + token,
                                                    "Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        if r.status != 201:
            failures.append(f"create {name}: {r.status}")
    c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("token")
    ap.add_argument("--watches", type=int, default=50)
    ap.add_argument("--writes", type=int, default=400)
    ap.add_argument("--writers", type=int, default=16)
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.url)
    host, port = u.hostname, u.port

    rv = current_rv(host, port, a.token)
    sel = selectors.DefaultSelector()
    streams = [Stream(host, port, a.token, rv) for _ in range(a.watches)]
    for s in streams:
        sel.register(s.sock, selectors.EVENT_READ, s)
    time.sleep(0.5)  # the watches are registered before the burst

    failures = []
    names = [f"b-{i}" for i in range(a.writes)]
    threads = [threading.Thread(target=writer, args=(host, port, a.token,
                                                     names[i::a.writers], failures))
               for i in range(a.writers)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not any(t.is_alive() for t in threads) and \
                all(len(s.revs) >= a.writes or s.error for s in streams):
            break
        for key, _ in sel.select(timeout=0.1):
            s = key.data
            try:
                data = s.sock.recv(1 << 16)
            except BlockingIOError:
                continue
            if not data:
                sel.unregister(s.sock)
                s.error = s.error or "connection closed"
                continue
            s.feed(data)
    for t in threads:
        t.join()

    want = list(range(rv + 1, rv + a.writes + 1))
    chunks = sum(s.chunks for s in streams)
    events = sum(len(s.revs) for s in streams)
    print(f"{a.watches} watches, {a.writes} writes from {a.writers} writers: "
          f"{events} events in {chunks} chunks")
    bad = failures[:3]
    for i, s in enumerate(streams):
        if s.error:
            bad.append(f"watch {i}: {s.error}")
        elif s.revs != want:
            missing = sorted(set(want) - set(s.revs))[:5]
            bad.append(f"watch {i}: {len(s.revs)} events, not revisions {rv + 1}..{want[-1]} "
                       f"once each in order (missing e.g. {missing})")
    if events and chunks >= events:
        bad.append(f"no batching: {chunks} chunks for {events} events")
    for b in bad[:10]:
        print(b, file=sys.stderr)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
