#!/usr/bin/env bats
# High availability (issue 9): a 3-member etcd, two keel servers on it
# (--store etcd, one token file, --leader-lease 3s, every controller in
# both), three simulated nodes and the CLI given both servers. kill -9 of
# the server that leads the controllers in the middle of a rolling update:
# the other serves, takes the leases and finishes the update; kill -9 of an
# etcd member: apply, scale and get keep working. Every write acknowledged
# is there, and a watch resumed on the other server from its last
# resourceVersion sees every change once, in order.

load helpers

TOKEN=ha-admin-token

setup() {
	needs_etcd
	export -f keel
	SRV_PIDS=()
	AGENT_PID=""
	WRITER_PID=""
	WATCH_PIDS=()
	etcd_cluster_start 3
	printf '%s,admin\n' "$TOKEN" >"$BATS_TEST_TMPDIR/tokens"
	export KEEL_TOKEN=$TOKEN
	unset KEEL_CONFIG
}

teardown() {
	local p
	for p in "$WRITER_PID" "${WATCH_PIDS[@]}" "$AGENT_PID" "${SRV_PIDS[@]}"; do
		[ -n "$p" ] && kill -KILL "$p" 2>/dev/null
	done
	for p in "$WRITER_PID" "${WATCH_PIDS[@]}" "$AGENT_PID" "${SRV_PIDS[@]}"; do
		[ -n "$p" ] && wait "$p" 2>/dev/null
	done
	etcd_cluster_stop
	# sanitizer builds: any report in a server's or agent's log fails the test
	! grep -sE "AddressSanitizer|LeakSanitizer|runtime error:" "$BATS_TEST_TMPDIR"/*.log
}

# ha_server NAME PORT: a keel server on the etcd cluster; pid in PID_NAME.
ha_server() {
	"$KEEL" server --data-dir "$BATS_TEST_TMPDIR/$1" --listen "127.0.0.1:$2" \
		--store etcd --etcd-endpoints "$ETCD_ENDPOINTS" --token-file "$BATS_TEST_TMPDIR/tokens" \
		--leader-lease 3s --node-grace-period 10s >>"$BATS_TEST_TMPDIR/server-$1.log" 2>&1 &
	SRV_PIDS+=($!)
	eval "PID_$1=$!"
	local i
	for i in $(seq 1 200); do
		curl -sf "http://127.0.0.1:$2/readyz" >/dev/null 2>&1 && return 0
		kill -0 "$!" 2>/dev/null || break
		sleep 0.05
	done
	cat "$BATS_TEST_TMPDIR/server-$1.log" >&2
	return 1
}

# wait_for TRIES CMD...: runs CMD every 0.1 s until it succeeds.
wait_for() {
	local n=$1 i
	shift
	for i in $(seq 1 "$n"); do
		"$@" && return 0
		sleep 0.1
	done
	echo "timed out waiting for: $*" >&2
	keel get nodes >&2 || true
	keel get tasks -o wide >&2 || true
	keel get deploy -o json 2>/dev/null | jq -c '.items[] | .status' >&2 || true
	holders >&2 || true
	return 1
}

# holders: "LEASE HOLDER" of the controllers' leader leases.
holders() {
	local l
	for l in keel-scheduler keel-tasks keel-nodes keel-gc; do
		echo "$l $(curl -s -H "Authorization: Bearer $TOKEN" "$1/apis/keel/v1/leases/$l" |
			jq -r '.spec.holderIdentity // ""')"
	done
}
# identity NAME: the holder identity of server NAME's controllers (kept in
# its data directory)
identity() { cat "$BATS_TEST_TMPDIR/$1/controller-identity"; }

# all_held_by URL NAME: every controller lease is held by server NAME
all_held_by() {
	[ "$(holders "$1" | awk -v id="$(identity "$2")" '$2 == id' | wc -l)" = 4 ]
}

# web IMAGE [REPLICAS]: a Deployment, surge 1, unavailable 0
web() {
	cat >"$BATS_TEST_TMPDIR/web.yaml" <<YAML
apiVersion: keel/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: ${2:-6}
  strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata: {labels: {app: web}}
    spec:
      image: $1
      resources: {requests: {cpu: 100m, memory: 64Mi}}
YAML
	keel apply -f "$BATS_TEST_TMPDIR/web.yaml"
}

# Live (not Failed/Succeeded, not being deleted) Tasks of web: "NAME HASH IMAGE PHASE".
live_tasks() {
	keel get tasks -l app=web -o json | jq -r '.items[] |
		select(.status.phase != "Failed" and .status.phase != "Succeeded" and .metadata.deletionTimestamp == null) |
		"\(.metadata.name) \(.metadata.labels["keel/template-hash"]) \(.spec.image) \(.status.phase)"'
}
updated_between() {
	local n
	n=$(live_tasks | grep -c " $2 ")
	[ "$n" -ge "$1" ] && [ "$n" -lt 6 ]
}
# settled N IMAGE: N live Tasks, all of IMAGE and Running, and no others
settled() {
	[ "$(live_tasks | grep -c " $2 Running$")" = "$1" ] && [ "$(live_tasks | wc -l)" = "$1" ] &&
		[ "$(keel get tasks -l app=web -o name | wc -l)" = "$1" ]
}

# writer: creates Events w-1, w-2, ... in namespace ha (a kind no
# controller rewrites, unlike Tasks, so each is one change), one at a time, each
# on the first server that takes it; "NAME RV" of each 201 goes to acked.
# A request that fails after it was sent (the server killed under it) is
# tried again under the same name on the next server: 201 or 409 there.
writer() {
	local i=0 url code
	while [ ! -f "$BATS_TEST_TMPDIR/stop-writer" ]; do
		i=$((i + 1))
		for url in $URLS_SPACED $URLS_SPACED; do
			code=$(curl -s -m 10 -o "$BATS_TEST_TMPDIR/w.out" -w '%{http_code}' -X POST \
				-H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
				--data "$(ev_json "w-$i")" "$url/apis/keel/v1/namespaces/ha/events") || true # 000: refused, or cut
			case $code in
			201) echo "w-$i $(jq -r .metadata.resourceVersion "$BATS_TEST_TMPDIR/w.out")" >>"$BATS_TEST_TMPDIR/acked"
				break ;;
			409) break ;; # an earlier attempt was committed: the list has it
			*) sleep 0.05 ;;
			esac
		done
		sleep 0.02
	done
	return 0
}

# ev_json NAME: an Event in namespace ha
ev_json() {
	echo "{\"apiVersion\":\"keel/v1\",\"kind\":\"Event\",\"metadata\":{\"name\":\"$1\",\"namespace\":\"ha\"},\"involvedObject\":{\"kind\":\"Task\",\"name\":\"x\"},\"reason\":\"HA\",\"message\":\"$1\"}"
}

# watch_from URL RV OUT: a watch of namespace ha's Events from RV, its
# events (one JSON line each) to OUT, in the background.
watch_from() {
	curl -sN -H "Authorization: Bearer $TOKEN" \
		"$1/apis/keel/v1/namespaces/ha/events?watch=1&resourceVersion=$2" >"$3" 2>/dev/null &
	WATCH_PIDS+=($!)
}
# events FILE: "TYPE NAME RV" of its events (BOOKMARKs left out)
events() {
	jq -r 'select(.type != "BOOKMARK") | "\(.type) \(.object.metadata.name) \(.object.metadata.resourceVersion)"' "$1" 2>/dev/null
}

@test "ha: kill -9 of the leading server mid rolling update, then of an etcd member: the other server serves, leads and finishes; no acknowledged write lost, a resumed watch has no gap or duplicate" {
	pa=$(free_port)
	pb=$(free_port)
	A=http://127.0.0.1:$pa
	B=http://127.0.0.1:$pb
	# A first, so that its controllers take the leases; B waits as standby
	ha_server a "$pa"
	wait_for 100 all_held_by "$A" a
	ha_server b "$pb"
	export KEEL_SERVER=$A,$B
	URLS_SPACED="$A $B"
	"$KEEL" agent --server "$A,$B" --token "$TOKEN" --runtime sim --simulate 3 --name sim \
		--cpus 4 --memory 8Gi --sim-start-delay 500ms --heartbeat-interval 500ms \
		>>"$BATS_TEST_TMPDIR/agent.log" 2>&1 &
	AGENT_PID=$!
	wait_for 150 bash -c "[ \"\$(keel get nodes | grep -c ' Ready ')\" = 3 ]"
	# both servers see one cluster state
	[ "$(KEEL_SERVER=$B keel get nodes -o name | sort)" = "$(KEEL_SERVER=$A keel get nodes -o name | sort)" ]

	web nginx:1
	run keel rollout status deployment web --timeout 60s
	assert_success
	old_hash=$(live_tasks | awk '{print $2}' | sort -u)

	# writes and a watch on A, from before the first write
	keel apply -f - <<<'{"apiVersion":"keel/v1","kind":"Namespace","metadata":{"name":"ha"}}'
	rv0=$(curl -s -H "Authorization: Bearer $TOKEN" "$A/apis/keel/v1/namespaces/ha/events" | jq -r .metadata.resourceVersion)
	watch_from "$A" "$rv0" "$BATS_TEST_TMPDIR/watch-a"
	watch_a=$!
	writer &
	WRITER_PID=$!
	wait_for 100 bash -c "[ -f '$BATS_TEST_TMPDIR/acked' ] && [ \$(wc -l <'$BATS_TEST_TMPDIR/acked') -ge 20 ]"

	# the rolling update, and kill -9 of A (the leader, the watch's server) in it
	web nginx:2
	wait_for 300 updated_between 2 nginx:2
	acked_before_kill=$(wc -l <"$BATS_TEST_TMPDIR/acked")
	kill -9 "$PID_a"
	wait "$PID_a" 2>/dev/null || true
	echo "# killed server a at $(live_tasks | awk '{print $3}' | sort | uniq -c | xargs), $acked_before_kill writes acknowledged" >&3

	# the watch on A ended with A; resume it on B from its last resourceVersion
	wait "$watch_a" 2>/dev/null || true
	last=$(events "$BATS_TEST_TMPDIR/watch-a" | tail -1 | awk '{print $3}')
	[ -n "$last" ]
	watch_from "$B" "$last" "$BATS_TEST_TMPDIR/watch-b"

	# B serves, and its controllers take over the leases (3 s lease)
	run keel get deployment web -o name
	assert_success
	assert_output deployment/web
	t0=$(date +%s)
	wait_for 200 all_held_by "$B" b
	echo "# leases held by b after $(($(date +%s) - t0)) s: $(holders "$B" | awk '{print $2}' | sort -u | xargs)" >&3
	# as a user sees it
	run keel get leases
	assert_success
	[ "$(grep -c -- " $(identity b) " <<<"$output")" -ge 4 ]
	run keel rollout status deployment web --timeout 90s
	assert_success
	assert_output --partial 'deployment "web" successfully rolled out'
	wait_for 300 settled 6 nginx:2
	[ "$(keel get tasks -l "keel/template-hash=$old_hash" -o name | wc -l)" = 0 ]
	[ "$(live_tasks | awk '{print $1}' | sort -u | wc -l)" = 6 ]

	# kill -9 of an etcd member: apply, scale and get keep working
	etcd_member_kill 1
	run keel scale deployment web --replicas 4
	assert_success
	wait_for 300 settled 4 nginx:2
	keel apply -f - <<<"$(ev_json after-etcd-kill)"
	run keel get event after-etcd-kill -n ha -o name
	assert_success
	assert_output event/after-etcd-kill
	sleep 1

	# stop the writer; every acknowledged write is there, at its resourceVersion
	touch "$BATS_TEST_TMPDIR/stop-writer"
	wait "$WRITER_PID"
	WRITER_PID=""
	stored=$(keel get events -n ha -o json | jq -r '.items[] | "\(.metadata.name) \(.metadata.resourceVersion)"' | sort)
	acked=$(sort "$BATS_TEST_TMPDIR/acked")
	echo "# $(wc -l <<<"$acked") writes acknowledged, $(wc -l <<<"$stored") Events stored in ha" >&3
	[ "$(wc -l <<<"$acked")" -gt "$acked_before_kill" ]
	missing=$(comm -23 <(echo "$acked") <(echo "$stored"))
	[ -z "$missing" ] || { echo "acknowledged but not stored: $missing" >&2; false; }

	# the watch, A's part then B's, is the stored Events: each ADDED once,
	# in increasing revisions, none missing
	wait_for 100 bash -c "grep -q after-etcd-kill '$BATS_TEST_TMPDIR/watch-b'"
	seen=$( (events "$BATS_TEST_TMPDIR/watch-a"; events "$BATS_TEST_TMPDIR/watch-b"))
	echo "# watch: $(events "$BATS_TEST_TMPDIR/watch-a" | wc -l) events on a, $(events "$BATS_TEST_TMPDIR/watch-b" | wc -l) on b from rv $last" >&3
	[ -z "$(awk '$1 != "ADDED"' <<<"$seen")" ]
	revs=$(awk '{print $3}' <<<"$seen")
	[ "$revs" = "$(sort -n -u <<<"$revs")" ] # increasing: no duplicate, no reordering
	assert_equal "$(awk '{print $2, $3}' <<<"$seen" | sort)" "$stored"
}
