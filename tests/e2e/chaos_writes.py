#!/usr/bin/env python3
"""kill -9 the keel server at random moments during a stream of writes.

Runs `keel server --controllers=none` over one data directory, and several
client threads that send a stream of Task creates (POST) and server-side
applies (PATCH, application/apply-patch+json) to it. At KILLS random points
of the stream the server is killed with SIGKILL; the clients pause, the
server is started again on the same data directory, and the checks below run
before the stream goes on:

  - every acknowledged (2xx) object is present, with a resourceVersion >= the
    last one acknowledged for it, and > only if a write of that object was
    sent and left unanswered since (in flight at a kill);
  - nothing is stored that no client sent;
  - the objects' resourceVersions are distinct, and the list's revision is >=
    every one of them and every acknowledged one;
  - a write after the restart gets a larger revision than any before;
  - `keel get tasks` lists them all;
  - a watch from the previous restart's revision replays every acknowledged
    write since, in revision order, ending at each object's stored state;
  - the server's log has no warn/error line (a store that opened cleanly).

A request on a fresh connection that fails with "connection refused" was never
sent; one that fails any other way after it was sent is in flight: it may or
may not have been committed. Each client owns its names, so per name the
writes are ordered.

Usage: chaos_writes.py KEEL DATA_DIR LOG [--ops 2000] [--clients 4]
       [--kills 5] [--seed N] [--server-flag=--history=100 ...]
Prints one line per kill cycle and a summary; exits 1 with the reason on the
first violated check. Stdlib only.
"""

import argparse
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

NS_PATH = "/apis/keel/v1/namespaces/default/tasks"
# libmicrohttpd's warning when a client closes a watch stream (the replay
# check below does): not about the store
class Fail(Exception):
    pass


class Server:
    """One `keel server` process at a time over the data directory."""

    def __init__(self, keel, data, log, flags=()):
        self.keel, self.data, self.log, self.flags = keel, data, log, list(flags)
        self.proc = None
        self.host = self.port = self.token = None

    def start(self):
        logf = open(self.log, "ab")
        offset = logf.tell()
        self.proc = subprocess.Popen(
            [self.keel, "server", "--data-dir", self.data, "--listen",
             "127.0.0.1:0", "--controllers=none"] + self.flags,
            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        logf.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Fail("server exited %d on start; log:\n%s" %
                           (self.proc.returncode, self.log_since(offset)))
            m = re.search(r"listening on http://([0-9.]+):([0-9]+)",
                          self.log_since(offset))
            if m:
                self.host, self.port = m.group(1), int(m.group(2))
                with open(os.path.join(self.data, "admin.token")) as f:
                    self.token = f.read().strip()
                if self.healthy():
                    return offset
            time.sleep(0.02)
        raise Fail("server did not answer /healthz within 30 s")

    def log_since(self, offset):
        with open(self.log, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def healthy(self):
        try:
            return request(self, "GET", "/healthz")[0] == 200
        except OSError:
            return False

    def kill(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()


def request(srv, method, path, body=None, ctype="application/json"):
    """One request on a fresh connection: (status, parsed body or None).
    Raises ConnectionRefusedError when nothing was sent, other OSErrors
    (and http.client's) when the answer was lost."""
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=20)
    try:
        headers = {"Authorization": "Bearer " + (srv.token or "")}
        if body is not None:
            headers["Content-Type"] = ctype
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        return resp.status, parsed
    finally:
        conn.close()


class Ledger:
    """What the clients know, per object name (guarded by one lock)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}      # name -> last acknowledged resourceVersion
        self.acks = []       # every acknowledged (name, resourceVersion)
        self.sent = set()    # every name a write was sent for
        self.unanswered = set()  # names with a write in flight since their last ack
        self.max_acked = 0
        self.n_acked = 0
        self.n_inflight = 0  # in flight at the current cycle's kill
        self.n_refused = 0
        self.landed = 0      # writes in flight at the last kill found committed

    def ack(self, name, rv):
        with self.lock:
            self.acked[name] = max(self.acked.get(name, 0), rv)
            self.acks.append((name, rv))
            self.unanswered.discard(name)
            self.max_acked = max(self.max_acked, rv)
            self.n_acked += 1


class Stream:
    """The clients' shared op counter, pause gate and kill trigger."""

    def __init__(self, total, kill_at):
        self.lock = threading.Condition()
        self.next_op = 0
        self.done = 0
        self.total = total
        self.kill_at = list(kill_at)
        self.running = True     # the server answers; clients may send
        self.busy = 0           # clients inside a request
        self.retry = []         # refused ops, to send again
        self.kill_due = threading.Event()
        self.stop = False

    def take(self):
        """The next op number, or None at the end; waits while paused."""
        with self.lock:
            while not self.running and not self.stop:
                self.lock.wait()
            if self.stop:
                return None
            if self.retry:
                op = self.retry.pop()
            elif self.next_op < self.total:
                op = self.next_op
                self.next_op += 1
            else:
                return None
            self.busy += 1
            return op

    def finished(self):
        with self.lock:
            self.busy -= 1
            self.done += 1
            if self.kill_at and self.done >= self.kill_at[0]:
                self.kill_at.pop(0)
                self.kill_due.set()
            self.lock.notify_all()

    def retry_later(self, op):
        """op was refused (never sent): pause and hand it out again."""
        with self.lock:
            self.running = False
            self.busy -= 1
            self.retry.append(op)
            self.lock.notify_all()

    def server_lost(self):
        """A client saw the server gone: pause every client."""
        with self.lock:
            self.running = False

    def wait_idle(self):
        with self.lock:
            while self.busy:
                self.lock.wait()

    def resume(self):
        with self.lock:
            self.running = True
            self.lock.notify_all()


def task_body(name, op, client):
    return json.dumps({
        "apiVersion": "keel/v1", "kind": "Task",
        "metadata": {"name": name, "labels": {"client": str(client)},
                     "annotations": {"chaos/op": str(op)}},
        "spec": {"image": "busybox", "args": ["op-%d" % op]},
    })


def client(cid, srv, ledger, stream, rng, errors):
    try:
        client_loop(cid, srv, ledger, stream, rng, errors)
    except Exception as e:  # a bug here must fail the run, not hang it
        errors.append("client %d: %r" % (cid, e))
        with stream.lock:
            stream.busy = max(stream.busy - 1, 0)
            stream.lock.notify_all()


def client_loop(cid, srv, ledger, stream, rng, errors):
    mine = []
    while True:
        op = stream.take()
        if op is None:
            return
        if not mine or rng.random() < 0.5:
            name = "c%d-%d" % (cid, op)
            mine.append(name)
            method, path, ctype = "POST", NS_PATH, "application/json"
        else:
            name = rng.choice(mine)
            method, path = "PATCH", "%s/%s?fieldManager=chaos" % (NS_PATH, name)
            ctype = "application/apply-patch+json"
        body = task_body(name, op, cid)
        with ledger.lock:
            ledger.sent.add(name)
        try:
            status, obj = request(srv, method, path, body, ctype)
        except ConnectionRefusedError:
            # never sent: wait for the server to be back, then send it again
            with ledger.lock:
                ledger.n_refused += 1
            stream.retry_later(op)
            continue
        except (OSError, http.client.HTTPException):
            with ledger.lock:
                ledger.unanswered.add(name)
                ledger.n_inflight += 1
            stream.server_lost()
            stream.finished()
            continue
        if 200 <= status < 300:
            rv = int(obj["metadata"]["resourceVersion"])
            ledger.ack(name, rv)
        elif not (method == "POST" and status == 409):
            # 409: a create that was in flight at the kill and committed
            errors.append("%s %s: HTTP %d %s" % (method, name, status,
                                                 json.dumps(obj)))
        stream.finished()


def check(srv, ledger, log_offset, cycle, last_rev):
    """The checks after a restart; returns (objects found, list revision)."""
    status, lst = request(srv, "GET", NS_PATH)
    if status != 200:
        raise Fail("cycle %d: list answered %d" % (cycle, status))
    found = {o["metadata"]["name"]: int(o["metadata"]["resourceVersion"])
             for o in lst["items"]}
    rev = int(lst["metadata"]["resourceVersion"])
    with ledger.lock:
        for name, rv in ledger.acked.items():
            if name not in found:
                raise Fail("cycle %d: acknowledged %s (rv %d) is missing" %
                           (cycle, name, rv))
            if found[name] < rv:
                raise Fail("cycle %d: %s has rv %d, older than the acknowledged %d"
                           % (cycle, name, found[name], rv))
            if found[name] > rv and name not in ledger.unanswered:
                raise Fail("cycle %d: %s has rv %d, newer than the acknowledged %d, "
                           "with no write in flight" % (cycle, name, found[name], rv))
        stray = set(found) - ledger.sent
        if stray:
            raise Fail("cycle %d: stored but never sent: %s" % (cycle, sorted(stray)[:5]))
        if rev < ledger.max_acked:
            raise Fail("cycle %d: list revision %d < an acknowledged %d" %
                       (cycle, rev, ledger.max_acked))
        # The writes in flight at the kill are settled now, committed or not:
        # what is stored is the new baseline for the next cycle's check.
        landed = 0
        for name in ledger.unanswered:
            if name in found and found[name] > ledger.acked.get(name, 0):
                landed += 1
                ledger.acked[name] = found[name]
        ledger.landed = landed
        ledger.unanswered.clear()
    rvs = list(found.values())
    if len(set(rvs)) != len(rvs):
        raise Fail("cycle %d: resourceVersions not distinct" % cycle)
    if rvs and rev < max(rvs):
        raise Fail("cycle %d: list revision %d < object rv %d" % (cycle, rev, max(rvs)))
    if rev < last_rev:
        raise Fail("cycle %d: revision went back from %d to %d" % (cycle, last_rev, rev))
    # and the CLI reads it, as a user would
    cli = subprocess.run([srv.keel, "get", "tasks", "-o", "name"], capture_output=True,
                         env=dict(os.environ, KEEL_CONFIG=os.path.join(srv.data, "config")),
                         timeout=60)
    if cli.returncode != 0 or len(cli.stdout.splitlines()) != len(found):
        raise Fail("cycle %d: keel get tasks exited %d with %d lines for %d objects: %s"
                   % (cycle, cli.returncode, len(cli.stdout.splitlines()), len(found),
                      cli.stderr.decode(errors="replace")))
    bad = [l for l in srv.log_since(log_offset).splitlines()
           if re.match(r"\S+ (warn|error) ", l)]
    if bad:
        raise Fail("cycle %d: server log after restart:\n%s" % (cycle, "\n".join(bad)))
    return found, rev


def replay(srv, ledger, cycle, since, upto, found):
    """A watch from revision `since` replays the change log up to `upto`:
    every acknowledged write after `since` is an event at its revision, the
    revisions increase, and each object's last event is its stored state.
    The stream is read up to the last stored object's revision when that is
    lower than `upto`: on etcd the list's revision is etcd's global one,
    which moves with writes that are not Tasks (the server's start marks
    the store), so no Task event may ever reach it."""
    upto = min(upto, max([r for r in found.values()] + [since]))
    if upto <= since:
        return 0
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=20)
    conn.request("GET", "%s?watch=1&resourceVersion=%d" % (NS_PATH, since),
                 headers={"Authorization": "Bearer " + srv.token})
    resp = conn.getresponse()
    if resp.status != 200:
        raise Fail("cycle %d: watch from %d answered %d" % (cycle, since, resp.status))
    events, last, rev = {}, {}, since
    while rev < upto:
        line = resp.readline()
        if not line:
            raise Fail("cycle %d: the watch from %d ended at %d, before %d"
                       % (cycle, since, rev, upto))
        ev = json.loads(line)
        if ev["type"] == "BOOKMARK":
            continue
        meta = ev["object"]["metadata"]
        r = int(meta["resourceVersion"])
        if r <= rev:
            raise Fail("cycle %d: watch event at %d after %d" % (cycle, r, rev))
        rev = r
        events[(meta["name"], r)] = ev["type"]
        last[meta["name"]] = r
    conn.close()
    with ledger.lock:
        missing = [a for a in ledger.acks if since < a[1] <= upto and a not in events]
    if missing:
        raise Fail("cycle %d: acknowledged writes missing from the change log: %s"
                   % (cycle, missing[:5]))
    for name, r in last.items():
        if found.get(name) != r:
            raise Fail("cycle %d: %s: last event at %d, stored at %s"
                       % (cycle, name, r, found.get(name)))
    return len(events)


def probe(srv, cycle, before):
    """A write after the restart gets a larger revision than any before."""
    name = "probe-%d" % cycle
    status, obj = request(srv, "POST", NS_PATH, task_body(name, -1, "probe"))
    if status != 201:
        raise Fail("cycle %d: probe create answered %d" % (cycle, status))
    rv = int(obj["metadata"]["resourceVersion"])
    if rv <= before:
        raise Fail("cycle %d: a write after restart got rv %d, not above %d" %
                   (cycle, rv, before))
    return name, rv


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("keel")
    ap.add_argument("data")
    ap.add_argument("log")
    ap.add_argument("--ops", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--server-flag", action="append", default=[],
                    help="an extra `keel server` flag (e.g. --history=100), repeatable")
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    print("seed %d" % seed, flush=True)

    # kill points: random, at least 5% of the stream apart, none at the ends
    span = a.ops // (a.kills + 1)
    kill_at = [span * (i + 1) + rng.randrange(-span // 3, span // 3)
               for i in range(a.kills)]

    srv = Server(a.keel, a.data, a.log, a.server_flag)
    ledger = Ledger()
    stream = Stream(a.ops, kill_at)
    errors = []
    srv.start()
    threads = [threading.Thread(target=client,
                                args=(i, srv, ledger, stream,
                                      random.Random(seed + i + 1), errors))
               for i in range(a.clients)]
    for t in threads:
        t.start()
    last_rev, probes = 0, {}
    try:
        for cycle in range(1, a.kills + 1):
            if not stream.kill_due.wait(120):
                raise Fail("cycle %d: the stream stalled at op %d; %s"
                           % (cycle, stream.done, "; ".join(errors[:3])))
            stream.kill_due.clear()
            # a little later still, so the kill lands at a random point of a request
            time.sleep(rng.random() * 0.02)
            srv.kill()
            stream.server_lost()
            stream.wait_idle()
            with ledger.lock:
                acked, inflight, refused = ledger.n_acked, ledger.n_inflight, ledger.n_refused
                ledger.n_inflight = ledger.n_refused = 0
                known = len(ledger.acked)
            offset = srv.start()
            found, rev = check(srv, ledger, offset, cycle, last_rev)
            # the probe objects are the checker's own: they must be there as written
            for name, prv in probes.items():
                if found.get(name) != prv:
                    raise Fail("cycle %d: probe %s has rv %s, wrote %d" %
                               (cycle, name, found.get(name), prv))
            # (from 1, not 0: resourceVersion=0 would list, not replay)
            n_events = replay(srv, ledger, cycle, max(last_rev, 1), rev, found)
            name, prv = probe(srv, cycle, max(rev, ledger.max_acked))
            probes[name] = prv
            with ledger.lock:
                ledger.sent.add(name)
            last_rev = prv
            print("cycle %d: killed after %d ops: %d writes acknowledged, %d objects "
                  "acknowledged, all found, %d objects stored; %d writes in flight at the kill, "
                  "%d of them committed; %d refused and resent; revision %d; the change log "
                  "replays %d events since the last restart"
                  % (cycle, stream.done, acked, known, len(found) - (cycle - 1),
                     inflight, ledger.landed, refused, rev, n_events), flush=True)
            stream.resume()
        for t in threads:
            t.join(120)
            if t.is_alive():
                raise Fail("a client did not finish: %s" % "; ".join(errors[:3]))
        found, rev = check(srv, ledger, offset, a.kills + 1, last_rev)
        if errors:
            raise Fail("unexpected answers:\n" + "\n".join(errors[:10]))
        print("done: %d ops, %d writes acknowledged, %d objects stored, revision %d"
              % (a.ops, ledger.n_acked, len(found), rev), flush=True)
    except Fail as e:
        print("FAIL: %s" % e, flush=True)
        stream.stop = True
        stream.resume()
        return 1
    finally:
        srv.stop()
        stream.stop = True
        stream.resume()
    return 0


if __name__ == "__main__":
    sys.exit(main())
