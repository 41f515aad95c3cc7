#!/usr/bin/env python3
"""Many clients creating Tasks at once, each on its own kept-alive connection.

Usage: concurrent_creates.py URL TOKEN CLIENTS PER_CLIENT OUT [--until-refused]

Client c creates Tasks cc-N (N = 0..PER_CLIENT-1) in namespace default, one
request at a time. Every 201 must carry the object as stored (its name, a uid,
a resourceVersion); its "NAME RV" line goes to OUT. Exits 1 naming the first
other answer, unless --until-refused: then a client stops quietly at the first
failed request (the server is being stopped under it) and the answers it got
are still checked and written. Stdlib only.
"""

import http.client
import json
import sys
import threading
import urllib.parse


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    until_refused = "--until-refused" in sys.argv
    url, token, clients, per, out = args[0], args[1], int(args[2]), int(args[3]), args[4]
    u = urllib.parse.urlparse(url)
    acked, errors, lock = [], [], threading.Lock()

    def client(c):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        for n in range(per):
            name = "c%d-%d" % (c, n)
            body = json.dumps({"apiVersion": "keel/v1", "kind": "Task",
                               "metadata": {"name": name}, "spec": {"image": "busybox"}})
            try:
                conn.request("POST", "/apis/keel/v1/namespaces/default/tasks", body,
                             {"Authorization": "Bearer " + token,
                              "Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as e:
                if not until_refused:
                    with lock:
                        errors.append("%s: %s" % (name, e))
                return
            if resp.status != 201:
                if not until_refused or resp.status < 500:
                    with lock:
                        errors.append("%s: HTTP %d %s" % (name, resp.status, data[:200]))
                return
            obj = json.loads(data)
            md = obj.get("metadata", {})
            if md.get("name") != name or not md.get("uid") or not md.get("resourceVersion"):
                with lock:
                    errors.append("%s: 201 without the stored object: %s" % (name, data[:200]))
                return
            with lock:
                acked.append("%s %s" % (name, md["resourceVersion"]))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(out, "w") as f:
        f.write("".join(line + "\n" for line in sorted(acked)))
    if errors:
        print("\n".join(errors[:5]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
