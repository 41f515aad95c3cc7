#!/usr/bin/env bats
# Node loss end to end: a `keel server` with the nodes controller and short
# --node-grace-period / --node-eviction-timeout, a real process agent with
# a Task bound to it; kill -9 the agent and the Node goes Ready=Unknown,
# then its Task Failed (NodeLost); restart the agent and the Node is Ready
# again, and the lost Task's process is stopped, not restarted.

load helpers

GRACE=(--node-grace-period 2s --node-eviction-timeout 4s)
# Task processes exec `sleep 410N.RUN`: the patterns below match this run's only.
RUN=${BATS_ROOT_PID:-$$}

setup() {
	export -f keel
	AGENT_LOG=$BATS_TEST_TMPDIR/agent.log
	AGENT_PID=""
}

teardown() {
	if [ -n "$AGENT_PID" ] && kill -0 "$AGENT_PID" 2>/dev/null; then
		for t in $(keel get tasks -o name 2>/dev/null); do
			keel delete task "${t#*/}" >/dev/null 2>&1 || true
		done
		for _ in $(seq 1 50); do
			pgrep -f "^sleep 410[0-9]\\.$RUN\$" >/dev/null || break
			sleep 0.1
		done
		kill "$AGENT_PID" 2>/dev/null || true
		wait "$AGENT_PID" 2>/dev/null || true
	fi
	local p
	for p in $(pgrep -f "keel-e2e-nodes-$$" || true) $(pgrep -f "^sleep 410[0-9]\\.$RUN\$" || true); do
		kill -9 "$p" 2>/dev/null || true
	done
	for p in ${SIM_PIDS:-}; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	keel_server_stop
	! grep -E "AddressSanitizer|LeakSanitizer|runtime error:" "$AGENT_LOG" "$SERVER_LOG"
}

agent_start() {
	"$KEEL" agent --runtime process --name n1 --data-dir "$BATS_TEST_TMPDIR/agent" \
		--heartbeat-interval 500ms "$@" >>"$AGENT_LOG" 2>&1 &
	AGENT_PID=$!
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
	cat "$SERVER_LOG" "$AGENT_LOG" >&2 || true
	return 1
}

ready_is() {
	[ "$(keel get node n1 -o json | jq -r '.status.conditions[] | select(.type == "Ready") | .status')" = "$1" ]
}
status_of() { keel get task "$1" -o json | jq -r ".status.$2 // empty"; }
sleeper_gone() { ! pgrep -f "^sleep 4101\\.$RUN\$" >/dev/null; }
phase_is() { [ "$(status_of "$1" phase)" = "$2" ]; }

task() { # task NAME SECONDS: sleeps on n1
	cat >"$BATS_TEST_TMPDIR/$1.yaml" <<YAML
apiVersion: keel/v1
kind: Task
metadata: {name: $1}
spec:
  image: host
  command: [sh, -c, 'exec sleep $2.$RUN', keel-e2e-nodes-$$]
  nodeName: n1
  terminationGracePeriodSeconds: 1
YAML
	keel apply -f "$BATS_TEST_TMPDIR/$1.yaml"
}

@test "nodes: a silent node goes Ready=Unknown, then its tasks Failed NodeLost; back, it is Ready" {
	keel_server_start --controllers=nodes "${GRACE[@]}"
	agent_start
	wait_for 100 ready_is True
	task sleeper 4101
	wait_for 100 phase_is sleeper Running
	# alive and renewing: nothing happens past the grace period
	sleep 3
	ready_is True
	phase_is sleeper Running

	kill -9 "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null || true
	wait_for 60 ready_is Unknown
	run bash -c "keel get node n1 -o json | jq -r '.status.conditions[] | select(.type == \"Ready\") | .reason + \": \" + .message'"
	assert_output "NodeStatusUnknown: keel agent stopped renewing its lease"
	# Unknown is not yet lost
	phase_is sleeper Running
	wait_for 80 phase_is sleeper Failed
	[ "$(status_of sleeper reason)" = NodeLost ]
	[ "$(status_of sleeper message)" = "node n1 was lost: keel agent stopped renewing its lease" ]
	run bash -c "keel get events -o json | jq -r '.items[] | select(.involvedObject.name == \"sleeper\") | .reason'"
	assert_output --partial NodeLost
	run bash -c "keel get events -o json | jq -r '.items[] | select(.involvedObject.name == \"n1\") | .reason'"
	assert_output --partial NodeNotReady
	# the process outlived the agent (the supervisor keeps it)
	pgrep -f "^sleep 4101\\.$RUN\$" >/dev/null

	# the agent comes back: Ready again, and the lost task's process is stopped, not restarted
	agent_start
	wait_for 100 ready_is True
	wait_for 100 sleeper_gone
	sleep 1.5
	phase_is sleeper Failed
	[ "$(status_of sleeper reason)" = NodeLost ]
	! pgrep -f "^sleep 4101\\.$RUN\$" >/dev/null
	ready_is True
}

@test "nodes: a stopped (not killed) agent that resumes marks its Node Ready again" {
	keel_server_start --controllers=nodes "${GRACE[@]}"
	agent_start
	wait_for 100 ready_is True
	kill -STOP "$AGENT_PID"
	wait_for 60 ready_is Unknown || { kill -CONT "$AGENT_PID"; false; }
	kill -CONT "$AGENT_PID"
	wait_for 60 ready_is True
	grep -q "Ready=Unknown" "$SERVER_LOG"
}

@test "nodes: a Deployment's tasks lost with their node come back on the other one" {
	keel_server_start "${GRACE[@]}" # every controller: scheduler, tasks, nodes, gc
	SIM_PIDS=""
	for n in a b; do
		"$KEEL" agent --runtime sim --simulate 1 --name "$n" --cpus 4 --memory 8Gi \
			--heartbeat-interval 500ms >>"$AGENT_LOG" 2>&1 &
		SIM_PIDS="$SIM_PIDS $!"
	done
	a_pid=$(echo $SIM_PIDS | cut -d" " -f1)
	wait_for 100 bash -c "[ \"\$(keel get nodes | grep -c ' Ready ')\" = 2 ]"
	node_a=$(keel get nodes -o json | jq -r '.items[].metadata.name' | grep '^a')
	node_b=$(keel get nodes -o json | jq -r '.items[].metadata.name' | grep '^b')
	cat >"$BATS_TEST_TMPDIR/web.yaml" <<YAML
apiVersion: keel/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 4
  template:
    metadata: {labels: {app: web}}
    spec:
      image: nginx
      resources: {requests: {cpu: 100m, memory: 64Mi}}
YAML
	keel apply -f "$BATS_TEST_TMPDIR/web.yaml"
	on() { keel get tasks -l app=web -o json | jq "[.items[] | select(.spec.nodeName == \"$1\" and .status.phase == \"Running\")] | length"; }
	wait_for 150 bash -c "[ \"\$(keel get tasks -l app=web -o json | jq '[.items[] | select(.status.phase == \"Running\")] | length')\" = 4 ]"
	[ "$(on "$node_a")" -ge 1 ] # E-PVM spreads two equal nodes
	kill -9 "$a_pid"
	# lost tasks are Failed NodeLost, then replaced on b; the Deployment is whole again
	wait_for 200 bash -c "[ \"\$(keel get tasks -l app=web -o json | jq '[.items[] | select(.spec.nodeName == \"$node_b\" and .status.phase == \"Running\")] | length')\" = 4 ]"
	wait_for 100 bash -c "keel get deploy web -o json | jq -e '.status.readyReplicas == 4' >/dev/null"
	grep -q "marked Failed (NodeLost)" "$SERVER_LOG"
}

@test "nodes: Tasks bound to a deleted Node are Failed NodeLost after the grace period, and replaced" {
	keel_server_start "${GRACE[@]}" # every controller: scheduler, tasks, nodes, gc
	SIM_PIDS=""
	for n in a b; do
		"$KEEL" agent --runtime sim --simulate 1 --name "$n" --cpus 4 --memory 8Gi \
			--heartbeat-interval 500ms >>"$AGENT_LOG" 2>&1 &
		SIM_PIDS="$SIM_PIDS $!"
	done
	a_pid=$(echo $SIM_PIDS | cut -d" " -f1)
	wait_for 100 bash -c "[ \"\$(keel get nodes | grep -c ' Ready ')\" = 2 ]"
	node_a=$(keel get nodes -o json | jq -r '.items[].metadata.name' | grep '^a')
	node_b=$(keel get nodes -o json | jq -r '.items[].metadata.name' | grep '^b')
	cat >"$BATS_TEST_TMPDIR/pinned.yaml" <<YAML
apiVersion: keel/v1
kind: Task
metadata: {name: pinned}
spec: {image: x, nodeName: $node_a}
---
apiVersion: keel/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 4
  template:
    metadata: {labels: {app: web}}
    spec: {image: nginx}
YAML
	keel apply -f "$BATS_TEST_TMPDIR/pinned.yaml"
	wait_for 100 phase_is pinned Running
	wait_for 150 bash -c "[ \"\$(keel get tasks -l app=web -o json | jq '[.items[] | select(.status.phase == \"Running\")] | length')\" = 4 ]"
	kill -9 "$a_pid"
	keel delete node "$node_a"
	# still Running within the grace period (2 s) ...
	phase_is pinned Running
	# ... then lost: the node does not exist
	wait_for 100 phase_is pinned Failed
	[ "$(status_of pinned reason)" = NodeLost ]
	[ "$(status_of pinned message)" = "node $node_a does not exist (the Task was bound to it)" ]
	run bash -c "keel get events -o json | jq -r '.items[] | select(.involvedObject.name == \"pinned\" and .reason == \"NodeLost\") | .message'"
	assert_output --partial "does not exist"
	# the Deployment's Tasks on the deleted node are replaced on b
	wait_for 200 bash -c "[ \"\$(keel get tasks -l app=web -o json | jq '[.items[] | select(.spec.nodeName == \"$node_b\" and .status.phase == \"Running\")] | length')\" = 4 ]"
	wait_for 100 bash -c "keel get deploy web -o json | jq -e '.status.readyReplicas == 4' >/dev/null"
}
