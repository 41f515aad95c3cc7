#!/usr/bin/env bats
# Crash and chaos tests against the real binaries: kill -9 of the server at
# random moments of a write stream and in the middle of a rolling update,
# kill -9 of an agent under a Deployment (process runtime), a full store and
# a restart with another --store-size, and 1,000 idle watches plus a
# slowloris client while /healthz and reads must still answer promptly.
# The Docker variants are in chaos_docker.bats and deployments_docker.bats.

load helpers

setup() {
	export -f keel # for the bash -c conditions of wait_for
	AGENT_LOGS=()
	AGENT_PIDS=()
}

teardown() {
	local p
	for p in "${AGENT_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	keel_server_stop KILL
	kill_sleepers
	# sanitizer builds: any report in a server's or agent's log fails the test
	! grep -sE "AddressSanitizer|LeakSanitizer|runtime error:" "${SERVER_LOG:-/dev/null}" \
		"$BATS_TEST_TMPDIR"/*.log "${AGENT_LOGS[@]}"
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
	tail -20 "$SERVER_LOG" >&2 || true
	return 1
}

@test "chaos: kill -9 five times during 2,000 creates and applies from 4 clients: every acknowledged write is there, at its revision" {
	# The writer starts, kills and restarts the server itself (its port
	# changes every start) and checks after each restart; see its header.
	# With KEEL_TEST_STORE=etcd it gets the helpers' --store flags.
	KEEL_DATA=$BATS_TEST_TMPDIR/data
	local store=() flags=() i
	keel_store_flags store
	for ((i = 0; i < ${#store[@]}; i += 2)); do
		flags+=("--server-flag=${store[i]}=${store[i + 1]}")
	done
	run python3 "$KEEL_SRC/tests/e2e/chaos_writes.py" "$KEEL" "$BATS_TEST_TMPDIR/data" \
		"$BATS_TEST_TMPDIR/writes-server.log" --ops 2000 --clients 4 --kills 5 "${flags[@]}"
	printf '%s\n' "${lines[@]}" | sed 's/^/# /' >&3
	assert_success
	[ "$(grep -c '^cycle [0-9]: killed after' <<<"$output")" = 5 ]
	stored=$(sed -n 's/^done: .* \([0-9]*\) objects stored, revision \([0-9]*\)$/\1 \2/p' <<<"$output")
	[ -n "$stored" ]
	# and once more by hand, as a user would: the store opens, keel get works
	keel_server_start --controllers=none
	run keel get tasks -o json
	assert_success
	if on_lmdb; then
		assert_equal "$(jq '.items | length' <<<"$output") $(jq -r .metadata.resourceVersion <<<"$output")" "$stored"
	else # etcd's global revision moved with this start's marker
		assert_equal "$(jq '.items | length' <<<"$output")" "${stored% *}"
		[ "$(jq -r .metadata.resourceVersion <<<"$output")" -ge "${stored#* }" ]
	fi
	! grep -E '^\S+ (warn|error) ' "$SERVER_LOG"
}

# fill NAME-PREFIX: creates 60 KB Tasks until the store refuses one; the
# acknowledged names go to $BATS_TEST_TMPDIR/acked, the last answer to
# $BATS_TEST_TMPDIR/answer. Prints the last HTTP code.
fill() {
	local big i code=""
	big=$(head -c 60000 /dev/zero | tr '\0' a)
	for i in $(seq 1 200); do
		printf '{"apiVersion":"keel/v1","kind":"Task","metadata":{"name":"%s-%d"},"spec":{"image":"b","args":["%s"]}}' \
			"$1" "$i" "$big" >"$BATS_TEST_TMPDIR/obj"
		code=$(api POST /apis/keel/v1/namespaces/default/tasks --data-binary @"$BATS_TEST_TMPDIR/obj" \
			-o "$BATS_TEST_TMPDIR/answer" -w '%{http_code}')
		[ "$code" = 201 ] || break
		echo "$1-$i $(jq -r .metadata.resourceVersion "$BATS_TEST_TMPDIR/answer")" >>"$BATS_TEST_TMPDIR/acked"
	done
	echo "$code"
}

# stored: "NAME RV" lines of every Task, sorted.
stored() { keel get tasks -o json | jq -r '.items[] | "\(.metadata.name) \(.metadata.resourceVersion)"' | sort; }

@test "chaos: a full store is 507 and reads keep working; restarted with a larger --store-size nothing is lost, and with a smaller one nothing breaks" {
	: >"$BATS_TEST_TMPDIR/acked"
	keel_server_start --controllers=none --store-size 1Mi
	run fill a
	assert_output 507
	[ "$(jq -r .reason "$BATS_TEST_TMPDIR/answer")" = InsufficientStorage ]
	jq -r .message "$BATS_TEST_TMPDIR/answer" | grep -F -- "--store-size"
	n_full=$(wc -l <"$BATS_TEST_TMPDIR/acked")
	[ "$n_full" -ge 5 ]
	# reads keep working; so does a delete (the map keeps a reserve for them)
	run keel get task a-1 -o name
	assert_success
	assert_equal "$(stored)" "$(sort "$BATS_TEST_TMPDIR/acked")"

	# kill -9 on a full store, then a larger map: everything is there, as it was
	keel_server_stop KILL
	keel_server_start --controllers=none --store-size 4Mi
	assert_equal "$(stored)" "$(sort "$BATS_TEST_TMPDIR/acked")"
	rev_before=$(keel get tasks -o json | jq -r .metadata.resourceVersion)
	run fill b
	assert_output 507
	n_more=$(($(wc -l <"$BATS_TEST_TMPDIR/acked") - n_full))
	[ "$n_more" -gt "$n_full" ]
	[ "$(keel get task b-1 -o json | jq -r .metadata.resourceVersion)" -gt "$rev_before" ]
	assert_equal "$(stored)" "$(sort "$BATS_TEST_TMPDIR/acked")"

	# a map smaller than the data: the server still opens it (LMDB keeps
	# the file's size), every object reads back, and writes that would
	# grow it are 507 -- nothing is cut off or corrupted
	keel_server_stop TERM
	keel_server_start --controllers=none --store-size 1Mi
	assert_equal "$(stored)" "$(sort "$BATS_TEST_TMPDIR/acked")"
	run fill c
	assert_output 507
	[ "$(jq -r .reason "$BATS_TEST_TMPDIR/answer")" = InsufficientStorage ]
	run keel delete task a-1
	assert_success
	sed -i '/^a-1 /d' "$BATS_TEST_TMPDIR/acked"
	keel_server_stop KILL
	# the old flag name still works, as an alias
	keel_server_start --controllers=none --store-max-bytes 16Mi
	assert_equal "$(stored)" "$(sort "$BATS_TEST_TMPDIR/acked")"
	[ "$(api POST /apis/keel/v1/namespaces/default/tasks -o /dev/null -w '%{http_code}' \
		-d '{"apiVersion":"keel/v1","kind":"Task","metadata":{"name":"d"},"spec":{"image":"b"}}')" = 201 ]
	run "$KEEL" server --help
	assert_output --partial "--store-size SIZE"
	# the log's warnings are the 507 answers and the one at the start with
	# the smaller map, and nothing else
	run grep -E '^\S+ (warn|error) ' "$SERVER_LOG"
	[ "$(grep -v ': 507 store is full' <<<"$output" | grep -vc 'more than --store-size 1Mi (1048576 bytes)')" = 0 ]
	grep -q 'more than --store-size 1Mi (1048576 bytes): writes that grow it get 507' <<<"$output"
}

# sim_agents: three simulated nodes; Created -> Running takes 500 ms, so a
# rollout of 6 replicas takes a few seconds.
sim_agents() {
	AGENT_LOGS+=("$BATS_TEST_TMPDIR/agent.log")
	"$KEEL" agent --runtime sim --simulate 3 --name sim --cpus 4 --memory 8Gi \
		--sim-start-delay 500ms --heartbeat-interval 500ms >>"$BATS_TEST_TMPDIR/agent.log" 2>&1 &
	AGENT_PIDS+=($!)
	wait_for 100 bash -c "[ \"\$(keel get nodes | grep -c ' Ready ')\" = 3 ]"
}

# web IMAGE: a Deployment of 6 replicas, surge 1, unavailable 0 (one Task at a time)
web() {
	cat >"$BATS_TEST_TMPDIR/web.yaml" <<YAML
apiVersion: keel/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 6
  strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata: {labels: {app: web}}
    spec:
      image: $1
      resources: {requests: {cpu: 100m, memory: 64Mi}}
YAML
	keel apply -f "$BATS_TEST_TMPDIR/web.yaml"
}

# Live (not Failed/Succeeded, not being deleted) Tasks of web as "NAME HASH IMAGE PHASE" lines.
live_tasks() {
	keel get tasks -l app=web -o json | jq -r '.items[] |
		select(.status.phase != "Failed" and .status.phase != "Succeeded" and .metadata.deletionTimestamp == null) |
		"\(.metadata.name) \(.metadata.labels["keel/template-hash"]) \(.spec.image) \(.status.phase)"'
}
# updated_between N: at least N live Tasks of the new image, and fewer than 6
updated_between() {
	local n
	n=$(live_tasks | grep -c ' nginx:2 ')
	[ "$n" -ge "$1" ] && [ "$n" -lt 6 ]
}

@test "chaos: kill -9 of the server twice in a rolling update: it finishes, 6 Tasks of the new template, no duplicates" {
	port=$(free_port)
	keel_server_start --listen "127.0.0.1:$port"
	sim_agents
	web nginx:1
	run keel rollout status deployment web --timeout 60s
	assert_success
	old_hash=$(live_tasks | awk '{print $2}' | sort -u)
	[ "$(wc -w <<<"$old_hash")" = 1 ]
	web nginx:2
	# sample the live Tasks all along, across the kills
	(while :; do
		live_tasks 2>/dev/null | wc -l
		sleep 0.05
	done) >"$BATS_TEST_TMPDIR/samples" 2>/dev/null &
	sampler=$!
	for at in 1 3; do
		wait_for 300 updated_between "$at"
		before=$(live_tasks | awk '{print $3}' | sort | uniq -c | xargs)
		kill -9 "$SERVER_PID"
		wait "$SERVER_PID" 2>/dev/null || true
		keel_server_start --listen "127.0.0.1:$port"
		echo "# kill at live Tasks: $before; after the restart: $(live_tasks | awk '{print $3}' | sort | uniq -c | xargs)" >&3
	done
	run keel rollout status deployment web --timeout 60s
	assert_success
	assert_output --partial 'deployment "web" successfully rolled out'
	settled() {
		[ "$(live_tasks | grep -c ' nginx:2 Running$')" = 6 ] && [ "$(live_tasks | wc -l)" = 6 ] &&
			[ "$(keel get tasks -l app=web -o name | wc -l)" = 6 ]
	}
	wait_for 200 settled
	kill "$sampler"
	wait "$sampler" 2>/dev/null || true
	# never more than replicas + maxSurge live Tasks, before, during or after a restart
	max=$(sort -n "$BATS_TEST_TMPDIR/samples" | tail -1)
	echo "# live Tasks at most $max over $(wc -l <"$BATS_TEST_TMPDIR/samples") samples" >&3
	[ "$max" -le 7 ]
	new_hash=$(live_tasks | awk '{print $2}' | sort -u)
	[ "$(wc -w <<<"$new_hash")" = 1 ]
	[ "$new_hash" != "$old_hash" ]
	[ "$(keel get tasks -l "keel/template-hash=$old_hash" -o name | wc -l)" = 0 ]
	# six distinct Tasks, each Running on a Ready node
	[ "$(live_tasks | awk '{print $1}' | sort -u | wc -l)" = 6 ]
	keel get deploy web -o json | jq -e '.status.replicas == 6 and .status.updatedReplicas == 6 and
		.status.readyReplicas == 6 and .status.observedGeneration == .metadata.generation'
}

# Process-runtime workloads exec `sleep 4200.RUN`: the patterns below match
# this run's only.
RUN=${BATS_ROOT_PID:-$$}
sleepers() { pgrep -f "^sleep 4200\\.$RUN\$" | sort; }
kill_sleepers() {
	local p
	for p in $(sleepers); do kill -9 "$p" 2>/dev/null || true; done
}

# proc_agent N: (re)starts process agent N (same name and data directory).
proc_agent() {
	AGENT_LOGS+=("$BATS_TEST_TMPDIR/agent-$1.log")
	"$KEEL" agent --runtime process --name "$1" --data-dir "$BATS_TEST_TMPDIR/agent-$1" \
		--cpus 4 --memory 8Gi --heartbeat-interval 500ms >>"$BATS_TEST_TMPDIR/agent-$1.log" 2>&1 &
	AGENT_PIDS+=($!)
	eval "PID_$1=$!"
}

# pids_on N: pids of the workloads agent N runs (its attempts' pid files
# with no exit file, whose process is one of ours and alive).
pids_on() {
	local d p
	for d in "$BATS_TEST_TMPDIR/agent-$1"/tasks/*/*/; do
		[ -f "$d/pid" ] && [ ! -f "$d/exit" ] || continue
		p=$(cat "$d/pid")
		grep -qx "$p" <<<"$(sleepers)" && echo "$p"
	done | sort
}

# Ready Tasks of app=web as "NAME NODE".
ready_web() {
	keel get tasks -l app=web -o json | jq -r '.items[] |
		select(.status.phase == "Running" and .status.ready == true) | "\(.metadata.name) \(.spec.nodeName)"' | sort
}
# up_on N NODE...: N ready Tasks, all on the NODEs, and exactly one process
# each there.
up_on() {
	local n=$1 node total=0 k
	shift
	[ "$(ready_web | wc -l)" = "$n" ] || return 1
	[ "$(keel get tasks -l app=web -o name | wc -l)" = "$n" ] || return 1
	for node in "$@"; do
		k=$(ready_web | awk -v n="$node" '$2 == n' | wc -l)
		[ "$(pids_on "$node" | grep -c .)" = "$k" ] || return 1
		total=$((total + k))
	done
	[ "$total" = "$n" ]
}
# only N: the host runs N sleepers in all
only() { [ "$(sleepers | grep -c .)" = "$1" ]; }

@test "chaos: kill -9 of one process agent of three: its Tasks are replaced on the others; back, it stops its orphans and nothing runs twice" {
	keel_server_start --node-grace-period 2s --node-eviction-timeout 2s
	for n in a b c; do proc_agent $n; done
	wait_for 100 bash -c "[ \"\$(keel get nodes | grep -c ' Ready ')\" = 3 ]"
	cat >"$BATS_TEST_TMPDIR/web.yaml" <<YAML
apiVersion: keel/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 6
  template:
    metadata: {labels: {app: web}}
    spec:
      image: host
      command: [sh, -c, 'exec sleep 4200.$RUN']
      terminationGracePeriodSeconds: 1
      resources: {requests: {cpu: 100m, memory: 64Mi}}
YAML
	keel apply -f "$BATS_TEST_TMPDIR/web.yaml"
	wait_for 200 up_on 6 a b c
	only 6
	# the victim: a node with the most replicas
	victim=$(ready_web | awk '{print $2}' | sort | uniq -c | sort -rn | head -1 | awk '{print $2}')
	survivors=$(printf '%s\n' a b c | grep -vx "$victim" | xargs)
	lost=$(pids_on "$victim")
	n_lost=$(grep -c . <<<"$lost")
	[ "$n_lost" -ge 2 ]
	t0=$(date +%s.%N)
	eval "kill -9 \$PID_$victim"
	# the lost Tasks' processes outlive their agent (no one stops them)
	wait_for 200 up_on 6 $survivors
	t1=$(date +%s.%N)
	# replaced, while the orphans still run on the silent node: 6 + n_lost sleepers
	only $((6 + n_lost))
	[ "$(ready_web | awk -v n="$victim" '$2 == n' | wc -l)" = 0 ]
	echo "# $n_lost Tasks of node $victim replaced on $survivors $(echo "$t1 - $t0" | bc) s after its kill -9 (grace 2s + eviction 2s)" >&3
	run keel get events
	assert_output --partial "Failed (NodeLost): replacing it"

	# the agent comes back: it stops its orphans (within their 1 s grace),
	# and the host runs exactly 6 sleepers, one per Task, on the survivors
	proc_agent "$victim"
	wait_for 100 bash -c "[ \"\$(keel get nodes | grep -c ' Ready ')\" = 3 ]"
	t2=$(date +%s.%N)
	orphans_gone() { [ -z "$(sleepers | grep -xF "$lost")" ]; }
	wait_for 100 orphans_gone
	echo "# its $n_lost orphans stopped $(echo "$(date +%s.%N) - $t2" | bc) s after it was Ready again" >&3
	up_on 6 $survivors
	only 6
	[ -z "$(pids_on "$victim")" ]
	# and it stays so: the returning agent starts nothing, stops nothing else
	sleep 2
	up_on 6 a b c
	only 6
	kill_sleepers
}

@test "chaos: with 1,000 idle watches open and 20 slowloris clients, /healthz and an authenticated list answer within 2 s" {
	# the server needs a descriptor per watch (the default --max-watchers,
	# 10000, is far above 1,000); so does the client
	if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 2500 ]; then
		ulimit -n 4096 || skip "cannot raise ulimit -n to 4096 (hard limit $(ulimit -Hn))"
	fi
	keel_server_start --controllers=none
	run python3 "$KEEL_SRC/tests/e2e/chaos_watch.py" "$KEEL_URL" "$KEEL_TOKEN_VALUE" \
		--watches 1000 --slow 20 --rounds 10 --max-latency 2
	printf '%s\n' "${lines[@]}" | sed 's/^/# /' >&3
	assert_success
	assert_line --partial "the create's event reached 1000 of 1000 watches"
	# the server is still whole
	run curl -sf "$KEEL_URL/healthz"
	assert_success
	run keel get task watched -o name
	assert_output task/watched
}
