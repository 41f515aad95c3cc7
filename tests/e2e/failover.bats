#!/usr/bin/env bats
# End-to-end tests of clients given several servers (--server URL1,URL2,
# KEEL_SERVER, the config file's "servers"): the CLI and `keel agent` skip
# a server that does not answer (a free loopback port nobody listens on)
# and use the next; when none answers, the error names each. One real
# `keel server` on LMDB: two LMDB servers do not share data, so the
# several-live-servers case is the etcd tests'.

load helpers

setup() {
	keel_server_start
	export -f keel
	AGENT_LOG=$BATS_TEST_TMPDIR/agent.log
	AGENT_PID="" CTRL_PID="" B_PID="" W_PID=""
	TLS_PIDS=()
	DEAD=http://127.0.0.1:$(free_port)
	DEAD2=http://127.0.0.1:$(free_port)
}

teardown() {
	local p
	for p in "$W_PID" "$CTRL_PID" "$AGENT_PID" "$B_PID" "${TLS_PIDS[@]}"; do
		if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
			kill "$p" 2>/dev/null || true
			wait "$p" 2>/dev/null || true
		fi
	done
	keel_server_stop
	! grep -E "AddressSanitizer|LeakSanitizer|runtime error:" "$AGENT_LOG" "$SERVER_LOG" 2>/dev/null
}

node_ready() { keel get nodes "$1" 2>/dev/null | grep -q " Ready "; }

wait_for() {
	local n=$1 i
	shift
	for i in $(seq 1 "$n"); do
		"$@" && return 0
		sleep 0.1
	done
	echo "timed out waiting for: $*" >&2
	cat "$AGENT_LOG" >&2 || true
	return 1
}

phase_is() { [ "$(keel get task "$1" -o json | jq -r '.status.phase // empty')" = "$2" ]; }

@test "failover: keel --server DEAD,URL get/version work; version names the server that answered and the list" {
	run keel --server "$DEAD,$KEEL_URL" get nodes
	assert_success
	run keel --server "$DEAD, $KEEL_URL/" version
	assert_success
	assert_line --index 1 --partial "$KEEL_URL of $DEAD,$KEEL_URL)"
	KEEL_SERVER="$DEAD,$KEEL_URL" run keel get tasks
	assert_success
}

@test "failover: keel apply with the dead server first creates the object; get sees it" {
	cat >"$BATS_TEST_TMPDIR/t.yaml" <<YAML
apiVersion: keel/v1
kind: Task
metadata: {name: fo1}
spec:
  image: x
YAML
	run keel --server "$DEAD,$DEAD2,$KEEL_URL" apply -f "$BATS_TEST_TMPDIR/t.yaml"
	assert_success
	assert_output --partial "created"
	run keel --server "$KEEL_URL" get task fo1 -o name
	assert_success
	assert_output "task/fo1"
}

@test "failover: the config file's \"servers\" list (and \"server\": \"A,B\") fail over" {
	token=$(jq -r .token "$KEEL_CONFIG")
	jq -n --arg a "$DEAD" --arg b "$KEEL_URL" --arg t "$token" \
		'{servers: [$a, $b], token: $t}' >"$BATS_TEST_TMPDIR/cfg"
	run keel --config "$BATS_TEST_TMPDIR/cfg" get nodes
	assert_success
	jq -n --arg s "$DEAD,$KEEL_URL" --arg t "$token" '{server: $s, token: $t}' >"$BATS_TEST_TMPDIR/cfg"
	run keel --config "$BATS_TEST_TMPDIR/cfg" get nodes
	assert_success
	jq -n --arg a "$DEAD" '{servers: [$a, "localhost:1"]}' >"$BATS_TEST_TMPDIR/cfg"
	run keel --config "$BATS_TEST_TMPDIR/cfg" get nodes
	assert_failure
	assert_output --partial "config file $BATS_TEST_TMPDIR/cfg: invalid server URL \"localhost:1\" (entry 2 of the list)"
}

@test "failover: every server dead: the error names each; a bad entry is named" {
	run keel --server "$DEAD,$DEAD2" get nodes
	assert_failure
	assert_output --partial "cannot reach any keel server ($DEAD: Connection refused; $DEAD2: Connection refused)"
	run keel --server "$KEEL_URL,,$DEAD" get nodes
	assert_failure
	assert_output --partial "--server: server list \"$KEEL_URL,,$DEAD\": entry 2 is empty"
	run keel --server "$KEEL_URL,$KEEL_URL/" get nodes
	assert_failure
	assert_output --partial "is listed twice (entries 1 and 2)"
	run "$KEEL" agent --runtime sim --name bad --server "$DEAD,nohttp"
	assert_failure
	assert_output --partial "invalid server URL \"nohttp\" (entry 2 of the list)"
}

@test "failover: an agent given DEAD,URL registers its node, runs a task; logs fail over too" {
	"$KEEL" agent --runtime sim --name fon --server "$DEAD,$KEEL_URL" \
		--sim-start-delay 100ms --heartbeat-interval 1s >>"$AGENT_LOG" 2>&1 &
	AGENT_PID=$!
	wait_for 100 node_ready fon
	cat >"$BATS_TEST_TMPDIR/s.yaml" <<YAML
apiVersion: keel/v1
kind: Task
metadata: {name: s1}
spec:
  image: x
  nodeName: fon
YAML
	keel --server "$DEAD,$KEEL_URL" apply -f "$BATS_TEST_TMPDIR/s.yaml"
	wait_for 100 phase_is s1 Running
	run keel --server "$DEAD,$KEEL_URL" logs s1
	assert_success
	assert_output --partial "fon"
	# heartbeats keep the node Ready through the dead entry
	sleep 2
	node_ready fon
}

# A second server over a copy of the first one's data: the same objects at
# the same revisions, as two servers over one etcd would show them.
server_b_start() {
	B_LOG=$BATS_TEST_TMPDIR/server-b.log
	"$KEEL" server --data-dir "$1" --listen "127.0.0.1:$2" --controllers=none >>"$B_LOG" 2>&1 &
	B_PID=$!
	local i
	for i in $(seq 1 200); do
		curl -sf "http://127.0.0.1:$2/healthz" >/dev/null 2>&1 && return 0
		kill -0 "$B_PID" 2>/dev/null || break
		sleep 0.05
	done
	cat "$B_LOG" >&2
	return 1
}

@test "failover: a watch (keel get -w) whose server is killed resumes on the next from its last revision: no gap, no duplicate" {
	keel_server_stop
	keel_server_start --controllers=none
	for n in t1 t2; do
		printf 'apiVersion: keel/v1\nkind: Task\nmetadata: {name: %s}\nspec: {image: x}\n' $n |
			keel apply -f - >/dev/null
	done
	keel delete task t2 >/dev/null
	sleep 0.5 # idle: what the copy takes is durable
	cp -a "$KEEL_DATA" "$BATS_TEST_TMPDIR/data-b"
	rm -f "$BATS_TEST_TMPDIR/data-b/LOCK"
	pb=$(free_port)
	server_b_start "$BATS_TEST_TMPDIR/data-b" "$pb"
	B=http://127.0.0.1:$pb
	keel --server "$KEEL_URL,$B" get tasks -w -o json >"$BATS_TEST_TMPDIR/watch.out" 2>"$BATS_TEST_TMPDIR/watch.err" &
	W_PID=$!
	wait_for 50 grep -q '"t1"' "$BATS_TEST_TMPDIR/watch.out"
	keel_server_stop KILL
	printf 'apiVersion: keel/v1\nkind: Task\nmetadata: {name: t3}\nspec: {image: x}\n' |
		keel --server "$B" apply -f - >/dev/null
	wait_for 50 grep -q '"t3"' "$BATS_TEST_TMPDIR/watch.out"
	kill "$W_PID" 2>/dev/null || true
	wait "$W_PID" 2>/dev/null || true
	kill "$B_PID" 2>/dev/null || true
	wait "$B_PID" 2>/dev/null || true
	W_PID="" B_PID=""
	cat "$BATS_TEST_TMPDIR/watch.err" >&2
	# the list first, then only what followed it: t3 once, nothing repeated
	run jq -r 'if .items then "LIST \([.items[].metadata.name] | join(","))"
		else "\(.type) \(.object.metadata.name)" end' "$BATS_TEST_TMPDIR/watch.out"
	assert_output "LIST t1
ADDED t3"
	! grep -E "AddressSanitizer|LeakSanitizer|runtime error:" "$B_LOG"
}

@test "failover: an out-of-process controller (keel controller scheduler) given DEAD,URL schedules a task" {
	keel_server_stop
	keel_server_start --controllers=none
	"$KEEL" agent --runtime sim --name fos --server "$DEAD,$KEEL_URL" \
		--sim-start-delay 100ms --heartbeat-interval 1s >>"$AGENT_LOG" 2>&1 &
	AGENT_PID=$!
	wait_for 100 node_ready fos
	printf 'apiVersion: keel/v1\nkind: Task\nmetadata: {name: u1}\nspec: {image: x}\n' |
		keel apply -f - >/dev/null
	"$KEEL" controller scheduler --server "$DEAD,$KEEL_URL" --token "$KEEL_TOKEN_VALUE" \
		>>"$BATS_TEST_TMPDIR/ctrl.log" 2>&1 &
	CTRL_PID=$!
	wait_for 100 phase_is u1 Running
	run keel get task u1 -o json
	assert_output --partial '"nodeName": "fos"'
	kill -TERM "$CTRL_PID"
	wait "$CTRL_PID"
	CTRL_PID=""
	! grep -E "AddressSanitizer|LeakSanitizer|runtime error:" "$BATS_TEST_TMPDIR/ctrl.log"
}

# tls_server NAME: keel server --tls, data dir $BATS_TEST_TMPDIR/NAME;
# sets URL_<NAME> (https).
tls_server() {
	local name=$1 data=$BATS_TEST_TMPDIR/$1 log=$BATS_TEST_TMPDIR/$1.log i url=""
	"$KEEL" server --data-dir "$data" --listen 127.0.0.1:0 --tls --controllers=none >"$log" 2>&1 &
	TLS_PIDS+=($!)
	for i in $(seq 1 200); do
		url=$(grep -o 'listening on https://[0-9.:]*' "$log" | head -1 | sed 's/listening on //')
		[ -n "$url" ] && break
		sleep 0.05
	done
	[ -n "$url" ] || { cat "$log" >&2; return 1; }
	printf -v "URL_$name" %s "$url"
}

@test "failover: https servers: one whose certificate the CA does not verify is skipped; none verifying names each and the CA" {
	tls_server a
	tls_server b
	A=$BATS_TEST_TMPDIR/a
	TOKEN=$(cat "$A/admin.token")
	wait_for 50 curl -sf --cacert "$A/tls/ca.crt" "$URL_a/healthz" -o /dev/null
	# b's certificate is from another CA: a TLS handshake failure, never a request
	run keel --server "https://127.0.0.1:${DEAD##*:},$URL_b,$URL_a" --token "$TOKEN" \
		--ca "$A/tls/ca.crt" version
	assert_success
	assert_line --index 1 --partial "$URL_a of "
	run keel --server "$URL_b" --token "$TOKEN" --ca "$A/tls/ca.crt" get namespaces
	assert_failure
	assert_output --partial "does not verify with CA file"
	run keel --server "$URL_b,$URL_a" --token "$TOKEN" get namespaces
	assert_failure
	assert_output --partial "cannot reach any keel server ($URL_b: "
	assert_output --partial "; $URL_a: "
	assert_output --partial "one CA verifies them all: pass it with --ca FILE"
	for p in "${TLS_PIDS[@]}"; do
		kill "$p"
		wait "$p" || true
	done
	TLS_PIDS=()
	! grep -E "AddressSanitizer|LeakSanitizer|runtime error:" "$BATS_TEST_TMPDIR"/[ab].log
}
