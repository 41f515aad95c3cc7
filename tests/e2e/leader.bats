#!/usr/bin/env bats
# Leader election end to end: one `keel server --controllers=none` (LMDB),
# three sim nodes, and two `keel controller all` processes (A and B) with
# short leader leases. Exactly one process leads each controller (its
# Lease keel-NAME names it); killing (-9), stopping (SIGTERM) or pausing
# (SIGSTOP) the leader hands every lease to the other, which then does
# the work.

load helpers

setup() {
	CTRLS=()
	keel_server_start --controllers=none
	export -f keel
	AGENT_LOG=$BATS_TEST_TMPDIR/agent.log
	"$KEEL" agent --runtime sim --simulate 3 --name sim --cpus 4 --memory 8Gi \
		--sim-start-delay 100ms >>"$AGENT_LOG" 2>&1 &
	AGENT_PID=$!
}

teardown() {
	local p
	for p in "${CTRLS[@]}" ${AGENT_PID:-}; do
		kill -CONT "$p" 2>/dev/null || true
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	keel_server_stop
	! grep -E "AddressSanitizer|LeakSanitizer|runtime error:" "$BATS_TEST_TMPDIR"/*.log
}

# start_ctrl NAME LEASE: `keel controller all` logging to ctrl-NAME.log;
# sets PID_NAME and ID_NAME (its holder identity).
start_ctrl() {
	local log=$BATS_TEST_TMPDIR/ctrl-$1.log i id=""
	"$KEEL" controller all --server "$KEEL_URL" --token "$KEEL_TOKEN_VALUE" \
		--leader-lease "$2" >>"$log" 2>&1 &
	CTRLS+=($!)
	printf -v "PID_$1" %s $!
	for i in $(seq 1 100); do
		id=$(grep -o 'holder [^ )]*' "$log" | head -1 | cut -d' ' -f2)
		[ -n "$id" ] && break
		sleep 0.05
	done
	[ -n "$id" ]
	printf -v "ID_$1" %s "$id"
}

# holders: "LEASE HOLDER" for the four leader leases, sorted.
holders() {
	keel get leases -o json | jq -r '.items[] | select(.metadata.name | startswith("keel-")) |
		"\(.metadata.name) \(.spec.holderIdentity)"' | sort
}

# all_led_by ID: every leader lease is held by ID.
all_led_by() {
	[ "$(holders)" = "keel-gc $1
keel-nodes $1
keel-scheduler $1
keel-tasks $1" ]
}

wait_for() {
	local n=$1 i
	shift
	for i in $(seq 1 "$n"); do
		"$@" && return 0
		sleep 0.1
	done
	echo "timed out waiting for: $*" >&2
	holders >&2 || true
	keel get tasks -o wide >&2 || true
	tail -5 "$BATS_TEST_TMPDIR"/ctrl-*.log >&2 || true
	return 1
}

deployment() {
	local f=$BATS_TEST_TMPDIR/$1.yaml
	printf 'apiVersion: keel/v1\nkind: Deployment\nmetadata: {name: %s}\nspec:\n  replicas: %s\n  template:\n    metadata: {labels: {app: %s}}\n    spec:\n      image: x\n      resources: {requests: {cpu: 100m, memory: 64Mi}}\n' \
		"$1" "$2" "$1" >"$f"
	echo "$f"
}

all_running() {
	[ "$(keel get tasks -l "app=$1" -o json | jq '[.items[] | select(.status.phase == "Running")] | length')" = "$2" ] &&
		[ "$(keel get tasks -l "app=$1" -o json | jq '.items | length')" = "$2" ]
}

ms() { echo $(($(date +%s%N) / 1000000)); }

nodes_ready() { [ "$(keel get nodes | grep -c ' Ready ')" = 3 ]; }

@test "leader: one process leads every controller; kill -9 of the leader hands every lease over within the lease duration" {
	wait_for 100 nodes_ready
	start_ctrl A 3s
	wait_for 50 all_led_by "$ID_A"
	start_ctrl B 3s
	keel apply -f "$(deployment web 3)"
	wait_for 150 all_running web 3
	# B stood by the whole time
	all_led_by "$ID_A"
	! grep -q 'became leader' "$BATS_TEST_TMPDIR/ctrl-B.log"
	run keel get leases
	assert_output --partial "keel-tasks       $ID_A"
	assert_output --partial "Held"
	# the nodes' own leases are listed too
	assert_output --partial "sim-0000"

	kill -9 "$PID_A"
	local t0
	t0=$(ms)
	wait_for 100 all_led_by "$ID_B"
	local took=$(($(ms) - t0))
	echo "takeover after kill -9: ${took} ms" >&3
	# lease 3 s; the standby looks every 300 ms
	[ "$took" -lt 4500 ]
	grep -q 'became leader for tasks' "$BATS_TEST_TMPDIR/ctrl-B.log"
	grep -q 'became leader for scheduler' "$BATS_TEST_TMPDIR/ctrl-B.log"
	keel scale deploy web --replicas 5
	wait_for 150 all_running web 5
}

@test "leader: SIGTERM releases the leases and the standby takes over at once" {
	wait_for 100 nodes_ready
	start_ctrl A 10s
	wait_for 50 all_led_by "$ID_A"
	start_ctrl B 10s
	sleep 1
	all_led_by "$ID_A"
	kill -TERM "$PID_A"
	local t0
	t0=$(ms)
	wait "$PID_A"
	wait_for 50 all_led_by "$ID_B"
	local took=$(($(ms) - t0))
	echo "takeover after SIGTERM: ${took} ms (lease 10 s)" >&3
	# released, not expired: well under the 10 s lease
	[ "$took" -lt 4000 ]
	grep -q 'released lease keel-tasks' "$BATS_TEST_TMPDIR/ctrl-A.log"
	keel apply -f "$(deployment web 2)"
	wait_for 150 all_running web 2
}

@test "leader: a leader paused past its deadline stops its controllers, stays a standby, and leads again when the other dies" {
	wait_for 100 nodes_ready
	start_ctrl A 3s
	wait_for 50 all_led_by "$ID_A"
	start_ctrl B 3s
	keel apply -f "$(deployment web 2)"
	wait_for 150 all_running web 2
	kill -STOP "$PID_A"
	wait_for 100 all_led_by "$ID_B"
	keel scale deploy web --replicas 3
	wait_for 150 all_running web 3
	kill -CONT "$PID_A"
	# A notices on its own clock that its term ended, and stops acting
	# (each elector on its own thread)
	for c in scheduler tasks nodes gc; do
		wait_for 50 grep -q "lost leadership for $c" "$BATS_TEST_TMPDIR/ctrl-A.log"
	done
	sleep 2
	all_led_by "$ID_B"
	[ "$(grep -c 'became leader for tasks' "$BATS_TEST_TMPDIR/ctrl-A.log")" = 1 ]
	all_running web 3
	# and A restarts its controllers when it leads again
	kill -9 "$PID_B"
	wait_for 100 all_led_by "$ID_A"
	[ "$(grep -c 'became leader for tasks' "$BATS_TEST_TMPDIR/ctrl-A.log")" = 2 ]
	keel scale deploy web --replicas 4
	wait_for 150 all_running web 4
}

@test "leader: the Lease API: rules, preconditions, and leases survive a server restart" {
	L=/apis/keel/v1/leases/n9
	run api PUT $L -d '{"spec":{"holderIdentity":"a","leaseDurationSeconds":30}}'
	rv=$(echo "$output" | jq -r .metadata.resourceVersion)
	[ "$(echo "$output" | jq -r .spec.holderIdentity)" = a ]
	# held by a: b is refused, naming the holder
	run api PUT $L -d '{"spec":{"holderIdentity":"b"}}'
	[ "$(echo "$output" | jq -r .code)" = 409 ]
	assert_output --partial 'lease n9 is held by a'
	# a stale resourceVersion is a conflict even for the holder
	run api PUT $L -d '{"metadata":{"resourceVersion":"1"},"spec":{"holderIdentity":"a"}}'
	[ "$(echo "$output" | jq -r .reason)" = Conflict ]
	# a release needs the version held
	run api PUT $L -d '{"spec":{"holderIdentity":""}}'
	[ "$(echo "$output" | jq -r .code)" = 400 ]
	assert_output --partial 'spec.holderIdentity: an empty holder releases the lease and needs metadata.resourceVersion'
	run api PUT $L -d "{\"metadata\":{\"resourceVersion\":\"$rv\"},\"spec\":{\"holderIdentity\":\"\"}}"
	[ "$(echo "$output" | jq -r .spec.holderIdentity)" = "" ]
	run keel get lease n9
	assert_output --partial Released
	run api PUT $L -d '{"spec":{"holderIdentity":"b","leaseDurationSeconds":30}}'
	[ "$(echo "$output" | jq -r .spec.leaseTransitions)" = 1 ]
	# durable: the store keeps it across a restart
	keel_server_stop
	keel_server_start --controllers=none
	run api GET $L
	[ "$(echo "$output" | jq -r .spec.holderIdentity)" = b ]
	run keel get lease n9 -o yaml
	assert_output --partial 'holderIdentity: b'
	# leader lease names are not Node names
	run api POST /apis/keel/v1/nodes -d '{"apiVersion":"keel/v1","kind":"Node","metadata":{"name":"keel-tasks"}}'
	assert_output --partial 'reserved for the leader Lease of the tasks controller'
	# nor can a node token take one
	ntok=$(keel token create --role node --node keel-tasks 2>/dev/null)
	run curl -s -X PUT -H "Authorization: Bearer $ntok" -d '{}' "$KEEL_URL/apis/keel/v1/leases/keel-tasks"
	[ "$(echo "$output" | jq -r .code)" = 403 ]
	assert_output --partial 'cannot update leases \"keel-tasks\": it is the leader lease of the tasks controller'
	run keel get leases -w
	[ "$status" -eq 2 ]
	assert_output --partial 'leases cannot be watched'
	run "$KEEL" controller all --leader-lease 0
	[ "$status" -eq 2 ]
	assert_output --partial '--leader-lease'
}

@test "leader: keel server's in-process controllers release their leases on SIGTERM, so a restart leads at once" {
	keel_server_stop
	PORT=$(free_port)
	keel_server_start --leader-lease 10s --listen "127.0.0.1:$PORT"
	wait_for 50 bash -c "[ \"\$(keel get leases | grep -c ' Held')\" = 4 ]"
	old=$(holders | head -1 | cut -d' ' -f2)
	keel_server_stop
	grep -q 'released lease keel-tasks' "$SERVER_LOG"
	keel_server_start --leader-lease 10s --listen "127.0.0.1:$PORT"
	# released: taken at the first look, not after the 10 s lease
	t0=$(ms)
	wait_for 50 bash -c "[ \"\$(keel get leases | grep -c ' Held')\" = 4 ]"
	[ $(($(ms) - t0)) -lt 3000 ]
	# the same holder: its identity is kept in the data directory
	[ "$(holders | head -1 | cut -d' ' -f2)" = "$old" ]
	[ "$old" = "$(cat "$KEEL_DATA/controller-identity")" ]
}

@test "leader: keel server restarted after kill -9 on its data directory leads at once, not after its old leases lapse" {
	keel_server_stop
	PORT=$(free_port)
	keel_server_start --leader-lease 30s --listen "127.0.0.1:$PORT"
	# the agent of setup knows the first server's URL; this one the port
	# that outlives the restart
	kill "$AGENT_PID"; wait "$AGENT_PID" || true
	"$KEEL" agent --server "$KEEL_URL" --runtime sim --simulate 3 --name sim --cpus 4 \
		--memory 8Gi >>"$AGENT_LOG" 2>&1 &
	AGENT_PID=$!
	wait_for 50 bash -c "[ \"\$(keel get leases | grep -c ' Held')\" = 7 ]"
	old=$(holders | head -1 | cut -d' ' -f2)
	keel_server_stop KILL
	keel_server_start --leader-lease 30s --listen "127.0.0.1:$PORT"
	t0=$(ms)
	keel apply -f "$(deployment web 2)"
	# held for 30 s by the killed process under another identity, the
	# leases would keep the tasks controller and the scheduler idle that
	# long
	wait_for 100 all_running web 2
	[ $(($(ms) - t0)) -lt 10000 ]
	[ "$(holders)" = "keel-gc $old
keel-nodes $old
keel-scheduler $old
keel-tasks $old" ]
}
