#!/usr/bin/env bats
# The store keeps what it acknowledged across a clean restart. kill -9 in
# the middle of a stream of writes (five times, creates and applies, every
# acknowledged resourceVersion checked) is in chaos.bats.

load helpers

setup() { keel_server_start --controllers=none; }
teardown() { keel_server_stop KILL; }

@test "examples apply and read back, and survive a restart" {
	# (not all of examples/ at once: web-v2/ redefines web/'s Deployment)
	run keel apply -R -f "$KEEL_SRC/examples/hello" -f "$KEEL_SRC/examples/web"
	assert_success
	assert_line "namespace/web created"
	assert_line "deployment/web created"
	assert_line "task/hello created"
	before=$(keel get deployments -A -o json | jq -S '[.items[] | {name: .metadata.name, rv: .metadata.resourceVersion, uid: .metadata.uid, spec}]')
	rev_before=$(keel get tasks -A -o json | jq -r .metadata.resourceVersion)

	keel_server_stop TERM
	keel_server_start --controllers=none
	after=$(keel get deployments -A -o json | jq -S '[.items[] | {name: .metadata.name, rv: .metadata.resourceVersion, uid: .metadata.uid, spec}]')
	rev_after=$(keel get tasks -A -o json | jq -r .metadata.resourceVersion)
	assert_equal "$after" "$before"
	# on etcd the list's revision is etcd's global one, which the start moved
	if on_lmdb; then assert_equal "$rev_after" "$rev_before"; else [ "$rev_after" -ge "$rev_before" ]; fi
	run keel get task hello -o name
	assert_success
	assert_output "task/hello"

	# and applying the same manifests again changes nothing
	run keel apply -R -f "$KEEL_SRC/examples/hello" -f "$KEEL_SRC/examples/web"
	assert_success
	refute_line --partial "created"
	refute_line --partial "configured"
	rev_again=$(keel get tasks -A -o json | jq -r .metadata.resourceVersion)
	assert_equal "$rev_again" "$rev_after"
}

@test "a second server on the same data directory is refused" {
	lmdb_only "the data directory's flock guards the LMDB store; on etcd several servers share one store by design"
	run "$KEEL" server --data-dir "$KEEL_DATA" --listen 127.0.0.1:0
	assert_failure
	assert_output --partial "in use"
	# the first one is unharmed
	run curl -sf "$KEEL_URL/healthz"
	assert_success
}

# metric NAME: a counter of /metrics.
metric() { api GET /metrics | awk -v n="$1" '$1 == n {print $2}'; }

# stored_tasks: "NAME RV" of every Task in default, sorted.
stored_tasks() { keel get tasks -o json | jq -r '.items[] | "\(.metadata.name) \(.metadata.resourceVersion)"' | sort; }

@test "creates from 32 clients on one HTTP thread share commits; every 201 is the object as stored" {
	# A create waits for its commit with its connection suspended, not on
	# the thread: with --threads 1 the 32 clients' writes still group.
	keel_server_stop KILL
	keel_server_start --controllers=none --threads 1
	commits0=$(metric keel_store_commits_total)
	writes0=$(metric keel_store_writes_total)
	run python3 "$KEEL_SRC/tests/e2e/concurrent_creates.py" "$KEEL_URL" "$KEEL_TOKEN_VALUE" 32 20 \
		"$BATS_TEST_TMPDIR/acked"
	assert_success
	[ "$(wc -l <"$BATS_TEST_TMPDIR/acked")" = 640 ]
	commits=$(($(metric keel_store_commits_total) - commits0))
	writes=$(($(metric keel_store_writes_total) - writes0))
	echo "# $writes writes in $commits commits" >&3
	[ "$writes" = 640 ]
	# One commit per write (640) when a write holds its thread. Grouped:
	# ~50 when a commit waited for both its flushes; with the meta flush
	# pipelined (store_writer.c) the writer commits again as soon as the
	# data flush returns, so on a fast disk the batches are smaller (~330
	# on a quiet machine, where the one HTTP thread is the limit).
	# (LMDB's group commit; on etcd each write is one txn, batched by etcd)
	if on_lmdb; then [ "$commits" -le $((writes * 3 / 4)) ]; fi
	assert_equal "$(stored_tasks)" "$(cat "$BATS_TEST_TMPDIR/acked")"
}

@test "SIGTERM during a stream of creates from 32 clients: it stops cleanly and every 201 is there after the restart" {
	keel_server_stop KILL
	keel_server_start --controllers=none --threads 2
	python3 "$KEEL_SRC/tests/e2e/concurrent_creates.py" "$KEEL_URL" "$KEEL_TOKEN_VALUE" 32 100000 \
		"$BATS_TEST_TMPDIR/acked" --until-refused &
	writer=$!
	for _ in $(seq 1 100); do
		[ "$(metric keel_store_writes_total)" -gt 200 ] && break
		sleep 0.05
	done
	keel_server_stop TERM
	wait "$writer"
	grep -q 'stopped cleanly' "$SERVER_LOG"
	acked=$(wc -l <"$BATS_TEST_TMPDIR/acked")
	echo "# $acked creates acknowledged before the stop" >&3
	[ "$acked" -gt 200 ]
	keel_server_start --controllers=none
	# everything acknowledged is stored at its revision (what was in flight may be too)
	stored_tasks >"$BATS_TEST_TMPDIR/stored"
	missing=$(comm -23 "$BATS_TEST_TMPDIR/acked" "$BATS_TEST_TMPDIR/stored" | head -5)
	assert_equal "$missing" ""
}

@test "clients that hang up while their create waits for its commit: nothing is left suspended, the server stops cleanly" {
	keel_server_stop KILL
	keel_server_start --controllers=none --threads 1
	python3 - "$KEEL_URL" "$KEEL_TOKEN_VALUE" <<'PY'
import socket, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
for i in range(100):
    body = '{"apiVersion":"keel/v1","kind":"Task","metadata":{"name":"gone-%d"},"spec":{"image":"b"}}' % i
    s = socket.create_connection((u.hostname, u.port))
    s.sendall(("POST /apis/keel/v1/namespaces/default/tasks HTTP/1.1\r\nHost: x\r\n"
               "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
               "Content-Length: %d\r\n\r\n%s" % (sys.argv[2], len(body), body)).encode())
    s.close()  # before the answer: the create is in flight
PY
	# every create committed (the writes were accepted), and the server still answers
	for _ in $(seq 1 100); do [ "$(keel get tasks -o name | grep -c gone-)" = 100 ] && break; sleep 0.05; done
	[ "$(keel get tasks -o name | grep -c gone-)" = 100 ]
	run timeout 10 kill -TERM "$SERVER_PID"
	for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.05; done
	! kill -0 "$SERVER_PID" 2>/dev/null
	grep -q 'stopped cleanly' "$SERVER_LOG"
}
