#!/usr/bin/env python3
"""A fake agent log server for auth.bats: what a malicious node would run
behind the logEndpoint it writes into its own Node's status. Listens on
127.0.0.1 (a free port), writes the port to PORTFILE, and for every
request appends its Authorization header (or "(none)") as one line to
HEADERFILE, then answers 200 with "fake log\n".

usage: log_listener.py PORTFILE HEADERFILE
"""
import http.server
import sys

port_file, header_file = sys.argv[1], sys.argv[2]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(header_file, "a") as f:
            f.write((self.headers.get("Authorization") or "(none)") + "\n")
        body = b"fake log\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os

os.rename(port_file + ".tmp", port_file)
srv.serve_forever()
