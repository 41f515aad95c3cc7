#!/usr/bin/env bats
# High availability under faults (issue 9): what the README's "High
# availability" section promises when etcd or a server misbehaves, first
# written by a fresh-eyes audit as failing tests, then fixed. A real
# 3-member etcd, real keel servers and a simulated agent on loopback:
# quorum lost (the servers keep answering: /healthz 200, /readyz and the API
# 503 at once); quorum lost and regained (no healthy node declared lost); a
# frozen (SIGSTOPped) server (watches move to the other one within a few
# bookmark intervals); a stalled etcd member with quorum intact (writes are
# answered, and the answer is the truth).

load helpers

TOKEN=audit-ha-admin-token

setup() {
	needs_etcd
	export -f keel
	SRV_PIDS=()
	AGENT_PID=""
	etcd_cluster_start 3
	printf '%s,admin,admin\n' "$TOKEN" >"$BATS_TEST_TMPDIR/tokens"
	chmod 600 "$BATS_TEST_TMPDIR/tokens"
	export KEEL_TOKEN=$TOKEN
	unset KEEL_CONFIG
}

teardown() {
	local p
	for p in "$AGENT_PID" "${SRV_PIDS[@]}"; do
		[ -n "$p" ] && kill -KILL "$p" 2>/dev/null
	done
	for p in "$AGENT_PID" "${SRV_PIDS[@]}"; do
		[ -n "$p" ] && wait "$p" 2>/dev/null
	done
	etcd_cluster_stop
}

# audit_server NAME PORT [FLAGS...]: a keel server on the etcd cluster.
audit_server() {
	local name=$1 port=$2
	shift 2
	"$KEEL" server --data-dir "$BATS_TEST_TMPDIR/$name" --listen "127.0.0.1:$port" \
		--store etcd --etcd-endpoints "$ETCD_ENDPOINTS" --token-file "$BATS_TEST_TMPDIR/tokens" \
		--leader-lease 3s "$@" >>"$BATS_TEST_TMPDIR/server-$name.log" 2>&1 &
	SRV_PIDS+=($!)
	local i
	for i in $(seq 1 200); do
		curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
		kill -0 "$!" 2>/dev/null || break
		sleep 0.05
	done
	cat "$BATS_TEST_TMPDIR/server-$name.log" >&2
	return 1
}

# README: "running, /readyz answers 503 while no endpoint is healthy (quorum
# lost), /healthz stays 200". By hand (two servers, an agent, a writer) both
# endpoints hung (408 after 30 s, or no answer for minutes) and new
# connections timed out.
@test "quorum lost: /healthz answers 200 and /readyz 503, promptly, while clients keep writing" {
	local port
	port=$(etcd_free_port)
	audit_server a "$port"
	local A=http://127.0.0.1:$port
	export KEEL_SERVER=$A
	"$KEEL" agent --server "$A" --token "$TOKEN" --runtime sim --simulate 2 --name sim \
		--heartbeat-interval 500ms --data-dir "$BATS_TEST_TMPDIR/agent" \
		>>"$BATS_TEST_TMPDIR/agent.log" 2>&1 &
	AGENT_PID=$!
	etcd_member_kill 2
	etcd_member_kill 3
	# a few writers, as users and agents keep writing during an outage
	local i
	for i in 1 2 3 4 5 6; do
		(printf 'apiVersion: keel/v1\nkind: Namespace\nmetadata: {name: q-%d}\n' "$i" |
			timeout 40 "$KEEL" apply -f - >/dev/null 2>&1 &)
	done
	sleep 5
	run curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$A/healthz"
	echo "healthz: $output" >&2
	[ "$output" = 200 ]
	run curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$A/readyz"
	echo "readyz: $output" >&2
	[ "$output" = 503 ]
}

# Quorum lost for 10 s, then regained: no agent could renew its lease
# meanwhile (the store took no writes), so a nodes controller counting that
# time against the nodes marked healthy ones NotReady and failed their
# running Tasks (NodeLost) right after; it must count only the silence it
# could have observed (nodes_observed_since).
@test "quorum lost then regained: no healthy node is declared lost and no running Task fails" {
	local port
	port=$(etcd_free_port)
	audit_server a "$port" --node-grace-period 3s --node-eviction-timeout 2s
	local A=http://127.0.0.1:$port
	export KEEL_SERVER=$A
	"$KEEL" agent --server "$A" --token "$TOKEN" --runtime sim --simulate 2 --name sim \
		--heartbeat-interval 500ms --sim-start-delay 200ms --data-dir "$BATS_TEST_TMPDIR/agent" \
		>>"$BATS_TEST_TMPDIR/agent.log" 2>&1 &
	AGENT_PID=$!
	cat >"$BATS_TEST_TMPDIR/d.yaml" <<'EOF'
apiVersion: keel/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      image: nginx:1
      resources: {requests: {cpu: 100m, memory: 64Mi}}
EOF
	keel apply -f "$BATS_TEST_TMPDIR/d.yaml" --wait --timeout 60s
	local before
	before=$(keel get tasks -o name | sort)
	etcd_member_kill 2
	etcd_member_kill 3
	sleep 10 # longer than grace + eviction
	etcd_member_start 2
	etcd_member_start 3
	etcd_wait_healthy
	sleep 8 # controllers reacquire (lease 3s), agents renew (500ms)
	run keel get events -A
	echo "$output" >&2
	! grep -E 'NodeNotReady|NodeLost' <<<"$output"
	[ "$(keel get tasks -o name | sort)" = "$before" ]
}

# README: "A watch whose stream breaks resumes on the next server". A server
# that is frozen (SIGSTOP, a hung host) keeps the TCP connection open: by
# hand `keel get tasks -w` given both servers saw nothing for 90 s (the
# client's idle timeout) although the other server was serving and Tasks
# were being created; the bookmark interval is 15 s.
@test "a watch on a frozen server resumes on the other one within a few bookmark intervals" {
	local pa pb
	pa=$(etcd_free_port)
	pb=$(etcd_free_port)
	audit_server a "$pa" --bookmark-interval 1s
	audit_server b "$pb" --bookmark-interval 1s
	local A=http://127.0.0.1:$pa B=http://127.0.0.1:$pb
	export KEEL_SERVER=$A,$B
	keel get ns -o name >/dev/null
	("$KEEL" get namespaces -w -o name --server "$A,$B" >"$BATS_TEST_TMPDIR/watch.out" 2>&1 &
		echo $! >"$BATS_TEST_TMPDIR/watch.pid")
	sleep 1
	kill -STOP "${SRV_PIDS[0]}"
	printf 'apiVersion: keel/v1\nkind: Namespace\nmetadata: {name: after-stop}\n' |
		KEEL_SERVER=$B keel apply -f -
	local i ok=1
	for i in $(seq 1 150); do # 15 s: several bookmark intervals
		grep -q after-stop "$BATS_TEST_TMPDIR/watch.out" && { ok=0; break; }
		sleep 0.1
	done
	kill -CONT "${SRV_PIDS[0]}"
	kill "$(cat "$BATS_TEST_TMPDIR/watch.pid")" 2>/dev/null || true
	cat "$BATS_TEST_TMPDIR/watch.out" >&2
	[ "$ok" = 0 ]
}

# By hand: SIGSTOP of the first etcd member (the other two keep quorum) made
# every `keel apply` on the server fail after the client's 30 s ("did not
# answer in time"), for as long as the member stayed stopped (90 s tried),
# yet each write WAS applied; /readyz said ok, the server logged nothing.
# The server's one etcd watch stays on the stalled member, and a write is
# answered only once that watch delivered it. README's "a stalled etcd
# member is not yet detected quickly (below)" points nowhere.
@test "a stalled etcd member (quorum intact): writes are answered, and the answer is the truth" {
	local port
	port=$(etcd_free_port)
	audit_server a "$port"
	export KEEL_SERVER=http://127.0.0.1:$port
	keel get ns -o name >/dev/null
	local m1
	m1=$(cat "$ETCD_DIR/m1/pid")
	kill -STOP "$m1"
	run timeout 20 "$KEEL" apply -f - <<<'{"apiVersion":"keel/v1","kind":"Namespace","metadata":{"name":"while-stalled"}}'
	local st=$status out=$output
	run keel get ns while-stalled
	local applied=$status
	kill -CONT "$m1"
	echo "apply: status $st: $out; applied afterwards: $([ "$applied" = 0 ] && echo yes || echo no)" >&2
	# an answer within 20 s, and success exactly when the write was applied
	[ "$st" = 0 ]
	[ "$applied" = 0 ]
}
