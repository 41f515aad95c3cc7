#!/usr/bin/env bats
# End-to-end tests of `keel agent` with the process runtime (real host
# processes) and the sim runtime (1,000 simulated nodes), against a real
# `keel server`.

load helpers

setup() {
	keel_server_start --controllers=none
	export -f keel # for the bash -c conditions of wait_for
	AGENT_LOG=$BATS_TEST_TMPDIR/agent.log
	AGENT_PID=""
}

teardown() {
	# delete every task so the agent stops its processes, then stop it
	if [ -n "$AGENT_PID" ] && kill -0 "$AGENT_PID" 2>/dev/null; then
		for t in $(keel get tasks -o name 2>/dev/null); do
			keel delete task "${t#*/}" >/dev/null 2>&1 || true
		done
		for _ in $(seq 1 50); do
			sleepers '300[0-9]' >/dev/null || break
			sleep 0.1
		done
		kill "$AGENT_PID" 2>/dev/null || true
		wait "$AGENT_PID" 2>/dev/null || true
	fi
	pkill_marker
	keel_server_stop
	# sanitizer builds: any report in the agent's or server's log fails the test
	! grep -E "AddressSanitizer|LeakSanitizer|runtime error:" "$AGENT_LOG" "$SERVER_LOG"
}

# What this run starts is marked as this run's (RUN_ID: the root bats
# pid), so that pgrep, and teardown's kill, see only this run's processes,
# never those of another run or anyone else on the host. Each test's
# shells carry the marker in their command line ($0 of sh -c); the
# long-running ones exec `sleep $(dur 300N)`, N per test: `sleep
# 300N.RUN_ID`, whose command line has no room for a marker.
RUN_ID=${BATS_ROOT_PID:-$$}
marker() { echo "keel-e2e-$RUN_ID-$BATS_TEST_NUMBER"; }
dur() { echo "$1.$RUN_ID"; }
# sleepers REGEX: pids of this run's `sleep $(dur N)` processes, N matching REGEX.
sleepers() { pgrep -f "^sleep $1\\.$RUN_ID\$"; }
has_sleepers() { sleepers "$1" >/dev/null; }
no_sleepers() { ! has_sleepers "$1"; }
pkill_marker() {
	local p
	for p in $(pgrep -f " keel-e2e-$RUN_ID-[0-9]+\$" || true) $(sleepers '300[0-9]' || true); do
		kill -9 "$p" 2>/dev/null || true
	done
}

agent_start() {
	"$KEEL" agent --runtime process --name n1 --data-dir "$BATS_TEST_TMPDIR/agent" \
		--backoff-base 200ms --backoff-max 2s --heartbeat-interval 1s "$@" >>"$AGENT_LOG" 2>&1 &
	AGENT_PID=$!
	wait_for 100 node_ready n1
}

node_ready() { keel get nodes "$1" 2>/dev/null | grep -q " Ready "; }

# wait_for TRIES CMD...: runs CMD every 0.1 s until it succeeds.
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

status_of() { keel get task "$1" -o json | jq -r ".status.$2 // empty"; }
phase_is() { [ "$(status_of "$1" phase)" = "$2" ]; }

# task NAME POLICY SCRIPT [GRACE]: a Task on n1 running sh -c SCRIPT
# (terminationGracePeriodSeconds GRACE, default 2).
task() {
	cat >"$BATS_TEST_TMPDIR/$1.yaml" <<YAML
apiVersion: keel/v1
kind: Task
metadata: {name: $1}
spec:
  image: host
  command: [sh, -c, '$3', $(marker)]
  restartPolicy: $2
  nodeName: n1
  terminationGracePeriodSeconds: ${4:-2}
YAML
	keel apply -f "$BATS_TEST_TMPDIR/$1.yaml"
}

@test "agent: the node registers Ready with capacity, runtime and log endpoint; leases renew" {
	agent_start --labels zone=a,disk=ssd
	run keel get nodes n1 -o json
	assert_success
	echo "$output" | jq -e '.status.capacity.cpu and .status.capacity.memory'
	echo "$output" | jq -e '.status.nodeInfo.runtime == "process"'
	echo "$output" | jq -e '.status.logEndpoint | startswith("http://127.0.0.1:")'
	echo "$output" | jq -e '.metadata.labels.zone == "a" and .metadata.labels.disk == "ssd"'
	echo "$output" | jq -e '.status.conditions[] | select(.type == "Ready") | .status == "True"'
	run api GET /apis/keel/v1/leases/n1
	# the holder is the agent's identity, kept in its data directory
	id=$(cat "$BATS_TEST_TMPDIR/agent/agent-identity")
	[[ "$id" == "$(hostname)-"* ]]
	assert_output --partial "\"holderIdentity\":\"$id\""
	first=$(echo "$output" | jq -r .spec.renewTime)
	sleep 2.2
	run api GET /apis/keel/v1/leases
	echo "$output" | jq -e '.kind == "LeaseList"'
	[ "$(echo "$output" | jq -r '.items[] | select(.metadata.name == "n1") | .spec.renewTime')" != "$first" ]
	# an idle node does not rewrite its Node object
	rv1=$(keel get nodes n1 -o json | jq -r .metadata.resourceVersion)
	sleep 2
	rv2=$(keel get nodes n1 -o json | jq -r .metadata.resourceVersion)
	[ "$rv1" = "$rv2" ]
}

@test "agent: a task runs as a process, shows Running with containerID, logs work, delete stops it" {
	agent_start
	task sleeper Always "echo hello from the sleeper; echo to stderr >&2; exec sleep $(dur 3000)"
	wait_for 100 phase_is sleeper Running
	cid=$(status_of sleeper containerID)
	[[ "$cid" == proc-* ]]
	[ "$(status_of sleeper ready)" = "true" ]
	run keel get task sleeper
	assert_output --partial Running
	wait_for 50 has_sleepers 3000
	run keel logs sleeper
	assert_success
	assert_output --partial "hello from the sleeper"
	assert_output --partial "to stderr"
	run keel logs sleeper --tail 1
	assert_output "to stderr"
	keel delete task sleeper
	wait_for 100 no_sleepers 3000
	run keel logs sleeper
	assert_failure
	assert_output --partial NotFound
}

@test "agent: exit 0 with OnFailure ends Succeeded; exit 3 with Never ends Failed with exitCode 3" {
	agent_start
	task ok OnFailure 'echo done; exit 0'
	task bad Never 'echo failing; exit 3'
	wait_for 100 phase_is ok Succeeded
	wait_for 100 phase_is bad Failed
	[ "$(status_of bad exitCode)" = "3" ]
	[ "$(status_of ok exitCode)" = "0" ]
	[ "$(status_of bad restartCount)" = "0" ]
	[ "$(status_of bad lastState.output)" = "failing" ]
	run keel logs bad
	assert_output "failing"
	# terminal tasks are not started again
	sleep 1.5
	[ "$(status_of ok restartCount)" = "0" ]
	phase_is bad Failed
}

# missing NAME POLICY: a Task on n1 whose command does not exist.
missing() {
	cat >"$BATS_TEST_TMPDIR/$1.yaml" <<YAML
apiVersion: keel/v1
kind: Task
metadata: {name: $1}
spec:
  image: host
  command: ["/no/such/binary", $(marker)]
  restartPolicy: $2
  nodeName: n1
YAML
	keel apply -f "$BATS_TEST_TMPDIR/$1.yaml"
}
start_failures() { grep -c "task default/$1.*start failed" "$AGENT_LOG" || true; }

@test "agent: a command that does not exist fails a Never task (StartError, not retried); OnFailure keeps backing off" {
	agent_start
	missing never Never
	missing again OnFailure
	wait_for 100 phase_is never Failed
	[ "$(status_of never reason)" = "StartError" ]
	[[ "$(status_of never message)" == *"/no/such/binary"* ]]
	[ "$(status_of never restartCount)" = "0" ]
	run keel logs never
	assert_failure
	assert_output --partial "never started"
	assert_output --partial "StartError"
	# ended for good: no further attempt
	n=$(start_failures never)
	[ "$n" = "1" ]
	sleep 3
	[ "$(start_failures never)" = "$n" ]
	phase_is never Failed
	# OnFailure: still Pending, retried with a back-off (as before)
	phase_is again Pending
	[ "$(status_of again reason)" = "StartError" ]
	[ "$(start_failures again)" -ge 3 ]
	grep -q "task default/again: start failed: .*retrying in" "$AGENT_LOG"
}

@test "agent: a killed process is restarted, restartCount rises with growing gaps (CrashLoopBackOff)" {
	agent_start
	task sleeper Always "exec sleep $(dur 3001)"
	wait_for 100 phase_is sleeper Running
	# Running can be reported between the supervisor's fork and the exec.
	wait_for 50 has_sleepers 3001
	pid=$(sleepers 3001 | head -1)
	kill "$pid"
	wait_for 100 bash -c "[ \"\$(keel get task sleeper -o json | jq .status.restartCount)\" = 1 ]"
	wait_for 100 phase_is sleeper Running
	wait_for 50 has_sleepers 3001
	[ "$(sleepers 3001 | head -1)" != "$pid" ]
	[ "$(status_of sleeper lastState.exitCode)" = "143" ]

	task crasher Always 'exit 1'
	seen_backoff=0 last=0 times=()
	for _ in $(seq 1 150); do
		s=$(keel get task crasher -o json | jq -c .status)
		rc=$(echo "$s" | jq -r '.restartCount // 0')
		[ "$(echo "$s" | jq -r '.reason // empty')" = CrashLoopBackOff ] && seen_backoff=1
		if [ "$rc" != "$last" ]; then
			times+=("$(date +%s.%N)")
			last=$rc
		fi
		[ "$rc" -ge 5 ] && break
		sleep 0.1
	done
	[ "$seen_backoff" = 1 ]
	[ "$last" -ge 5 ]
	# gaps: 1->2 waits 0.4 s of backoff, 3->4 waits 1.6 s
	g1=$(echo "${times[1]} - ${times[0]}" | bc)
	g3=$(echo "${times[3]} - ${times[2]}" | bc)
	echo "gaps: $g1 $g3"
	[ "$(echo "$g3 > $g1" | bc)" = 1 ]
	[ "$(status_of crasher lastState.exitCode)" = "1" ]
}

@test "agent: after kill -9 and a restart the agent adopts its task and starts no duplicate" {
	agent_start
	task sleeper Always "exec sleep $(dur 3002)"
	wait_for 100 phase_is sleeper Running
	wait_for 50 has_sleepers 3002
	pid=$(sleepers 3002)
	cid=$(status_of sleeper containerID)
	kill -9 "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null || true
	agent_start
	sleep 2.5
	[ "$(sleepers 3002 | wc -l)" = 1 ]
	[ "$(sleepers 3002)" = "$pid" ]
	[ "$(status_of sleeper containerID)" = "$cid" ]
	[ "$(status_of sleeper restartCount)" = "0" ]
	# deleted while the agent was down: the new agent stops it
	kill -9 "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null || true
	keel delete task sleeper
	agent_start
	wait_for 100 no_sleepers 3002
}

@test "agent: --log-listen off loopback needs --insecure-listen (exit 2 naming both flags)" {
	run "$KEEL" agent --runtime process --name n1 --data-dir "$BATS_TEST_TMPDIR/agent" --log-listen 0.0.0.0:0
	[ "$status" = 2 ]
	assert_output --partial "--log-listen 0.0.0.0:0 is not a loopback address"
	assert_output --partial "give --insecure-listen to serve it there anyway"
	run keel get node n1
	assert_failure # it never registered
	# with the flag it serves there, and keel logs works
	agent_start --log-listen 0.0.0.0:0 --insecure-listen
	keel get node n1 -o json | jq -e '.status.logEndpoint | test("^http://.*:[0-9]+$")'
	cat >"$BATS_TEST_TMPDIR/hi.yaml" <<YAML
apiVersion: keel/v1
kind: Task
metadata: {name: hi}
spec: {image: host, command: [echo, hello], nodeName: n1, restartPolicy: Never}
YAML
	keel apply -f "$BATS_TEST_TMPDIR/hi.yaml"
	wait_for 100 bash -c '[ "$(keel get task hi -o json | jq -r .status.phase)" = Succeeded ]'
	run keel logs hi
	assert_success
	assert_output hello
}

@test "agent: 300 idle sockets do not lock keel logs out; they are cut, a quiet follow is not" {
	agent_start
	task quiet Always "echo started; exec sleep $(dur 3008)"
	wait_for 100 bash -c '[ "$(keel get task quiet -o json | jq -r .status.phase)" = Running ]'
	# a follow that stays quiet longer than the agent's request deadline (10s)
	keel logs -f quiet >"$BATS_TEST_TMPDIR/follow.out" 2>&1 &
	follow=$!
	ep=$(keel get node n1 -o json | jq -r .status.logEndpoint)
	python3 "$BATS_TEST_DIRNAME/idle_sockets.py" "${ep#http://}" 300 20 >"$BATS_TEST_TMPDIR/idle.out" &
	idle=$!
	wait_for 100 grep -q '^open 300' "$BATS_TEST_TMPDIR/idle.out"
	t0=$(date +%s%N)
	run timeout 10 "$KEEL" logs quiet
	t1=$(date +%s%N)
	assert_success
	assert_output started
	echo "keel logs took $(((t1 - t0) / 1000000)) ms with 300 idle sockets open"
	[ $(((t1 - t0) / 1000000)) -lt 5000 ]
	# the agent cuts them at its deadline, not before a few seconds
	wait "$idle"
	cat "$BATS_TEST_TMPDIR/idle.out"
	grep -Eq '^closed 300 of 300 after (9|1[0-5])\.' "$BATS_TEST_TMPDIR/idle.out"
	# the quiet follow, older than the deadline, is still open
	kill -0 "$follow"
	grep -qx started "$BATS_TEST_TMPDIR/follow.out"
	kill "$follow"; wait "$follow" 2>/dev/null || true
}

@test "agent: logs of a task on no node or a missing node say why" {
	agent_start
	cat >"$BATS_TEST_TMPDIR/lost.yaml" <<YAML
apiVersion: keel/v1
kind: Task
metadata: {name: lost}
spec: {image: x, command: ["true"], nodeName: gone-node}
YAML
	keel apply -f "$BATS_TEST_TMPDIR/lost.yaml"
	run keel logs lost
	assert_failure
	assert_output --partial 'nodes "gone-node" not found'
	run keel logs nothing-here
	assert_failure
	assert_output --partial 'NotFound'
}

@test "agent: --runtime sim --simulate 1000 registers 1000 Ready nodes and idles cheaply" {
	"$KEEL" agent --runtime sim --simulate 1000 --name sim --cpus 4 --memory 8Gi \
		--sim-start-delay 200ms >>"$AGENT_LOG" 2>&1 &
	AGENT_PID=$!
	wait_for 600 bash -c "[ \"\$(keel get nodes -o name | wc -l)\" = 1000 ]"
	wait_for 100 bash -c "[ \"\$(keel get nodes | grep -c ' Ready ')\" = 1000 ]"
	keel get nodes sim-0999 -o json | jq -e '.status.capacity.cpu == "4" and .status.capacity.memory == "8Gi"'
	# a task on one simulated node runs there, with its requests as usage
	cat >"$BATS_TEST_TMPDIR/s.yaml" <<YAML
apiVersion: keel/v1
kind: Task
metadata: {name: s1}
spec:
  image: x
  nodeName: sim-0042
  resources: {requests: {cpu: 250m, memory: 64Mi}}
YAML
	keel apply -f "$BATS_TEST_TMPDIR/s.yaml"
	wait_for 100 phase_is s1 Running
	run keel logs s1
	assert_output --partial "sim-0042"
	sleep 1
	# idle CPU: utime+stime over 5 s below 10% of one core
	hz=$(getconf CLK_TCK)
	t0=$(awk '{print $14 + $15}' /proc/$AGENT_PID/stat)
	sleep 5
	t1=$(awk '{print $14 + $15}' /proc/$AGENT_PID/stat)
	# 10% of a core; a sanitizer build (libasan) gets 3 times that
	pct=10
	ldd "$KEEL" 2>/dev/null | grep -q libasan && pct=30
	echo "agent used $((t1 - t0)) ticks of $((5 * hz)) in 5 s (limit $pct%)"
	[ $((t1 - t0)) -lt $((5 * hz * pct / 100)) ]
}

@test "agent: an exec health check sets ready, and failing it restarts the task (Unhealthy)" {
	agent_start
	flag=$BATS_TEST_TMPDIR/healthy
	touch "$flag"
	cat >"$BATS_TEST_TMPDIR/h.yaml" <<YAML
apiVersion: keel/v1
kind: Task
metadata: {name: checked}
spec:
  image: host
  command: [sh, -c, 'exec sleep $(dur 3003)', $(marker)]
  restartPolicy: Always
  nodeName: n1
  terminationGracePeriodSeconds: 1
  healthCheck:
    exec: {command: [test, -f, "$flag"]}
    periodSeconds: 1
    failureThreshold: 2
YAML
	keel apply -f "$BATS_TEST_TMPDIR/h.yaml"
	wait_for 100 phase_is checked Running
	wait_for 50 bash -c "[ \"\$(keel get task checked -o json | jq .status.ready)\" = true ]"
	rm "$flag"
	wait_for 100 bash -c "[ \"\$(keel get task checked -o json | jq -r .status.lastState.reason)\" = Unhealthy ]"
	wait_for 100 bash -c "[ \"\$(keel get task checked -o json | jq .status.restartCount)\" -ge 1 ]"
	keel get task checked -o json | jq -e '.status.lastState.message | test("health check")'
	run keel get task checked -o json
	echo "$output" | jq -e '.status.ready == false'
}

lease_holder_is() { [ "$(api GET /apis/keel/v1/leases/n1 | jq -r .spec.holderIdentity)" = "$1" ]; }
logs_say() { keel logs "$1" 2>/dev/null | grep -qx "$2"; }

@test "agent: editing a running Task's spec replaces its process with one of the new spec" {
	agent_start
	task v Always "echo version-one; exec sleep $(dur 3004)"
	wait_for 100 phase_is v Running
	wait_for 50 has_sleepers 3004
	wait_for 50 logs_say v version-one
	pid=$(sleepers 3004)
	gen=$(keel get task v -o json | jq .metadata.generation)
	run task v Always "echo version-two; exec sleep $(dur 3004)"
	assert_output --partial configured
	[ "$(keel get task v -o json | jq .metadata.generation)" -gt "$gen" ]
	# the old process is stopped (grace period) and one of the new spec runs
	wait_for 100 logs_say v version-two
	wait_for 50 has_sleepers 3004
	[ "$(sleepers 3004 | wc -l)" = 1 ]
	[ "$(sleepers 3004)" != "$pid" ]
	wait_for 50 phase_is v Running
	[ "$(status_of v restartCount)" = 1 ]
	[ "$(status_of v lastState.reason)" = SpecChanged ]
	keel get task v -o json | jq -e '.status.lastState.message | test("spec changed")'
	run keel logs v --previous
	assert_output version-one
	grep -q "spec changed (generation" "$AGENT_LOG"
	# editing what the agent applies live (the grace period) restarts nothing
	pid=$(sleepers 3004)
	task v Always "echo version-two; exec sleep $(dur 3004)" 3
	sleep 2
	[ "$(sleepers 3004)" = "$pid" ]
	[ "$(status_of v restartCount)" = 1 ]
	# edited while the agent was down: the new agent compares the spec the
	# process records and replaces it too, instead of adopting it
	kill -9 "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null || true
	task v Always "echo version-three; exec sleep $(dur 3004)" 3
	agent_start
	wait_for 100 logs_say v version-three
	wait_for 50 has_sleepers 3004
	[ "$(sleepers 3004 | wc -l)" = 1 ]
	[ "$(sleepers 3004)" != "$pid" ]
	[ "$(status_of v restartCount)" = 2 ]
}

@test "agent: a Task waiting out its grace period holds up no other start or stop" {
	agent_start
	# ignores SIGTERM: its stop takes the whole 20 s grace period
	task stubborn Always "trap \"\" TERM; exec sleep $(dur 3005)" 20
	task quick Always "exec sleep $(dur 3006)"
	wait_for 100 phase_is stubborn Running
	wait_for 100 phase_is quick Running
	wait_for 50 has_sleepers 3005
	wait_for 50 has_sleepers 3006
	keel delete task stubborn
	sleep 0.5
	start=$(date +%s)
	task fresh OnFailure "echo fresh; exit 0"
	keel delete task quick
	wait_for 80 phase_is fresh Succeeded
	wait_for 80 no_sleepers 3006
	# both within seconds, while stubborn still sits in its grace period
	[ $(($(date +%s) - start)) -lt 10 ]
	has_sleepers 3005
	kill -9 $(sleepers 3005)
	wait_for 50 no_sleepers 3005
}

@test "agent: simulated tasks pass their health checks (nothing listens for them)" {
	"$KEEL" agent --runtime sim --name simn --sim-start-delay 100ms \
		--heartbeat-interval 1s >>"$AGENT_LOG" 2>&1 &
	AGENT_PID=$!
	wait_for 100 node_ready simn
	cat >"$BATS_TEST_TMPDIR/hc.yaml" <<YAML
apiVersion: keel/v1
kind: Task
metadata: {name: web}
spec:
  image: keel/busybox:latest
  nodeName: simn
  ports: [{containerPort: 1}]
  healthCheck:
    httpGet: {path: /, port: 1}
    periodSeconds: 1
    failureThreshold: 1
---
apiVersion: keel/v1
kind: Task
metadata: {name: cmd}
spec:
  image: keel/busybox:latest
  nodeName: simn
  healthCheck:
    exec: {command: [/bin/false]}
    periodSeconds: 1
    failureThreshold: 1
YAML
	keel apply -f "$BATS_TEST_TMPDIR/hc.yaml"
	wait_for 100 phase_is web Running
	wait_for 100 phase_is cmd Running
	sleep 3.5
	for t in web cmd; do
		keel get task $t -o json | jq -e '.status.phase == "Running" and .status.ready == true and (.status.restartCount // 0) == 0'
	done
	! grep -q Unhealthy "$AGENT_LOG"
}

@test "agent: a second agent with the same --name is refused while the first holds the lease" {
	agent_start
	task sleeper Always "exec sleep $(dur 3007)"
	wait_for 100 phase_is sleeper Running
	wait_for 50 has_sleepers 3007
	holder=$(cat "$BATS_TEST_TMPDIR/agent/agent-identity")
	# another data directory: another agent, which must not run n1's tasks too
	run timeout 30 "$KEEL" agent --runtime process --name n1 --data-dir "$BATS_TEST_TMPDIR/other" \
		--heartbeat-interval 1s
	assert_failure 1
	assert_output --partial "node n1 is run by another agent"
	assert_output --partial "lease n1 is held by $holder"
	sleep 1
	[ "$(sleepers 3007 | wc -l)" = 1 ]
	pid=$(sleepers 3007)
	# the same agent (same --data-dir) restarted after kill -9 takes over at once
	kill -9 "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null || true
	agent_start
	sleep 2
	[ "$(sleepers 3007)" = "$pid" ]
	[ "$(status_of sleeper restartCount)" = 0 ]
	run api GET /apis/keel/v1/leases/n1
	echo "$output" | jq -e --arg h "$holder" '.spec.holderIdentity == $h and .spec.leaseDurationSeconds == 4'
	# a lease that expired (its agent is gone) passes to a new holder
	kill -9 "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null || true
	sleep 4.5
	"$KEEL" agent --runtime process --name n1 --data-dir "$BATS_TEST_TMPDIR/other" \
		--heartbeat-interval 1s >>"$AGENT_LOG" 2>&1 &
	AGENT_PID=$!
	wait_for 50 test -s "$BATS_TEST_TMPDIR/other/agent-identity"
	wait_for 100 lease_holder_is "$(cat "$BATS_TEST_TMPDIR/other/agent-identity")"
}

@test "agent: a CA file it cannot read exits 2 at start naming it; a token the server refuses (401) exits 1 saying so" {
	run timeout 30 "$KEEL" agent --runtime sim --name n1 --data-dir "$BATS_TEST_TMPDIR/agent" \
		--ca "$BATS_TEST_TMPDIR/no-such-ca.crt"
	assert_failure 2
	assert_output --partial "cannot read the CA file $BATS_TEST_TMPDIR/no-such-ca.crt (--ca)"
	KEEL_CA=$BATS_TEST_TMPDIR KEEL_TOKEN=x run timeout 30 "$KEEL" agent --runtime sim --name n1 \
		--data-dir "$BATS_TEST_TMPDIR/agent"
	assert_failure 2
	assert_output --partial "cannot read the CA file $BATS_TEST_TMPDIR (\$KEEL_CA)"
	# a server that refuses the token: no endless retries, exit 1 promptly
	SECONDS=0
	run timeout 30 "$KEEL" agent --runtime sim --name n1 --data-dir "$BATS_TEST_TMPDIR/agent" \
		--token not-a-token
	assert_failure 1
	assert_output --partial "the token is not valid for $KEEL_URL"
	[ "$SECONDS" -lt 20 ]
	! keel get nodes n1 2>/dev/null
}
