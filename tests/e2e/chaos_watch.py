#!/usr/bin/env python3
"""Many idle watches and a slowloris client against a keel server.

Opens WATCHES connections that each GET the Tasks with watch=1 and keep
reading, plus SLOW connections that trickle one request byte at a time (a
slowloris: a request line and headers that never end). While all of them
are open it measures /healthz and an authenticated list, ROUNDS times each,
then creates a Task and checks that every watch receives its ADDED event.

Usage: chaos_watch.py URL TOKEN [--watches 1000] [--slow 1] [--rounds 10]
       [--max-latency 2.0]
Prints the figures; exits 1, saying why, when a watch is refused or closed,
a request is slower than --max-latency, or an event does not reach every
watch. Stdlib only.
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


def timed(host, port, method, path, token=None, body=None):
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=30)
    headers = {"Authorization": "Bearer " + token} if token else {}
    if body is not None:
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status, time.monotonic() - t0


def slowloris(host, port, stop, sent):
    """Trickles a request that never ends, one byte every 0.2 s; reconnects
    when the server closes it (a deadline may), and counts the closes."""
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 100000
    while not stop.is_set():
        s = socket.create_connection((host, port))
        try:
            for i in range(len(req)):
                if stop.is_set():
                    break
                s.sendall(req[i:i + 1])
                sent[0] += 1
                stop.wait(0.2)
        except OSError:
            sent[1] += 1  # closed by the server
        finally:
            s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("token")
    ap.add_argument("--watches", type=int, default=1000)
    ap.add_argument("--slow", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--max-latency", type=float, default=2.0)
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.url)
    host, port = u.hostname, u.port

    # the watches: all sent first, then every answer's headers read
    sel = selectors.DefaultSelector()
    socks, bufs = [], {}
    req = ("GET %s?watch=1 HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n\r\n"
           % (TASKS, host, port, a.token)).encode()
    t0 = time.monotonic()
    for _ in range(a.watches):
        s = socket.create_connection((host, port))
        s.sendall(req)
        s.setblocking(False)
        socks.append(s)
        bufs[s] = b""
        sel.register(s, selectors.EVENT_READ)
    closed = []

    def pump(timeout):
        for key, _ in sel.select(timeout):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            if not data:
                closed.append(s)
                sel.unregister(s)
                continue
            bufs[s] += data

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(b"\r\n\r\n" in b for b in bufs.values()):
        pump(0.5)
    heads = [bufs[s].split(b"\r\n\r\n")[0] for s in socks]
    bad = [h for h in heads if not h.startswith(b"HTTP/1.1 200")]
    if bad or closed:
        print("FAIL: %d watches not answered 200, %d closed; first: %r"
              % (len(bad), len(closed), bad[0][:200] if bad else b""))
        return 1
    print("%d watches open (200, %s) in %.2f s" % (
        a.watches, [l for l in heads[0].split(b"\r\n") if l.lower().startswith(b"content-type")][0]
        .decode(), time.monotonic() - t0), flush=True)

    stop = threading.Event()
    trickled = [0, 0]
    slow = [threading.Thread(target=slowloris, args=(host, port, stop, trickled), daemon=True)
            for _ in range(a.slow)]
    for t in slow:
        t.start()
    time.sleep(1.0)  # the slowloris is under way

    worst = {}
    failures = []
    for r in range(a.rounds):
        for what, method, path, token in (("healthz", "GET", "/healthz", None),
                                          ("list", "GET", TASKS, a.token)):
            status, dt = timed(host, port, method, path, token)
            worst[what] = max(worst.get(what, 0), dt)
            if status != 200:
                failures.append("%s answered %d" % (what, status))
            if dt > a.max_latency:
                failures.append("%s took %.2f s" % (what, dt))
        pump(0)
        time.sleep(0.2)

    # the server counts them all
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("GET", "/metrics", headers={"Authorization": "Bearer " + a.token})
    metrics = conn.getresponse().read().decode()
    conn.close()
    watchers = [l for l in metrics.splitlines() if l.startswith("keel_watchers ")]
    if watchers != ["keel_watchers %d" % a.watches]:
        failures.append("metrics say %s" % watchers)

    # a change reaches every watch
    for s in socks:
        bufs[s] = b""
    body = json.dumps({"apiVersion": "keel/v1", "kind": "Task",
                       "metadata": {"name": "watched"}, "spec": {"image": "b"}})
    status, dt = timed(host, port, "POST", TASKS, a.token, body)
    if status != 201:
        failures.append("create answered %d" % status)
    t1 = time.monotonic()
    deadline = t1 + 30
    while time.monotonic() < deadline:
        pump(0.5)
        if all(b'"watched"' in bufs[s] for s in socks):
            break
    got = sum(1 for s in socks if b'"watched"' in bufs[s])
    spread = time.monotonic() - t1
    stop.set()
    print("with %d watches and %d slowloris connections (%d bytes trickled, %d closed by the "
          "server): /healthz at most %.3f s, authenticated list at most %.3f s over %d rounds; "
          "the create's event reached %d of %d watches in %.2f s"
          % (a.watches, a.slow, trickled[0], trickled[1], worst["healthz"], worst["list"],
             a.rounds, got, a.watches, spread), flush=True)
    if closed:
        failures.append("%d watches closed by the server" % len(closed))
    if got != a.watches:
        failures.append("the event reached %d of %d watches" % (got, a.watches))
    for s in socks:
        s.close()
    if failures:
        print("FAIL: " + "; ".join(failures[:10]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
