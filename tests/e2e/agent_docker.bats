#!/usr/bin/env bats
# The node agent with the docker runtime, against a real keel server, a real
# Docker engine and the keel/busybox:latest image (tests/e2e/busybox-image.sh;
# .ci/docker-up starts the engine and builds it). Every test skips, saying
# why, where no engine answers or the image is missing.

load helpers

setup_file() {
	if ! docker info >/dev/null 2>&1; then
		export DOCKER_SKIP="no Docker engine answers (run .ci/docker-up)"
	elif ! docker image inspect keel/busybox:latest >/dev/null 2>&1; then
		export DOCKER_SKIP="no image keel/busybox:latest (run tests/e2e/busybox-image.sh)"
	fi
}

setup() {
	[ -z "${DOCKER_SKIP:-}" ] || skip "$DOCKER_SKIP"
	keel_server_start --controllers=none
	NODE=dk-${BATS_ROOT_PID:-$$}-$BATS_TEST_NUMBER
	AGENT_LOG=$BATS_TEST_TMPDIR/agent.log
	AGENT_PID=""
}

# Starts dockerd again (after the restart test), logging beside this run.
restart_dockerd() {
	# 3>&-: bats waits for every holder of its output pipe (fd 3) to close it;
	# the engine outlives the test on purpose.
	setsid dockerd >>/tmp/keel-test-dockerd.log 2>&1 </dev/null 3>&- &
	wait_for 30 docker info
}

teardown() {
	[ -z "${DOCKER_SKIP:-}" ] || return 0
	docker info >/dev/null 2>&1 || restart_dockerd || true
	agent_stop TERM
	keel_server_stop
	local sanitizer=""
	# Sanitizer builds: any report in the agent's or server's log fails the test.
	grep -E "AddressSanitizer|LeakSanitizer|runtime error:" "$AGENT_LOG" "$SERVER_LOG" >&2 &&
		sanitizer=1
	local ids
	ids=$(docker ps -aq --filter "label=keel.node=$NODE")
	[ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
	if [ -n "${BATS_TEST_COMPLETED:-}" ] && [ -z "$sanitizer" ]; then return 0; fi
	echo "--- agent log" >&2
	tail -n 40 "$AGENT_LOG" >&2 || true
	[ -z "$sanitizer" ]
}

agent_start() {
	"$KEEL" agent --server "$KEEL_URL" --token "$KEEL_TOKEN_VALUE" --name "$NODE" \
		--runtime docker --data-dir "$BATS_TEST_TMPDIR/agent" --heartbeat-interval 1s \
		--backoff-base 1s --backoff-max 4s --log-level debug "$@" >>"$AGENT_LOG" 2>&1 &
	AGENT_PID=$!
	wait_for 20 node_ready_or_dead
	kill -0 "$AGENT_PID" 2>/dev/null || { echo "keel agent exited:" >&2; tail -n 20 "$AGENT_LOG" >&2; return 1; }
}

node_ready_or_dead() { ! kill -0 "$AGENT_PID" 2>/dev/null || node_ready; }

agent_stop() {
	if [ -n "${AGENT_PID:-}" ] && kill -0 "$AGENT_PID" 2>/dev/null; then
		kill -"${1:-TERM}" "$AGENT_PID" 2>/dev/null || true
		wait "$AGENT_PID" 2>/dev/null || true
	fi
	AGENT_PID=""
}

node_ready() {
	[ "$(keel get node "$NODE" -o json 2>/dev/null |
		jq -r '.status.conditions[]? | select(.type=="Ready") | .status')" = True ]
}

# wait_for SECONDS CMD...: retries CMD every 0.2 s until it succeeds.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -lt $deadline ] || { echo "timed out waiting for: $*" >&2; return 1; }
		sleep 0.2
	done
}

task_field() { keel get task "$1" -o json | jq -r "$2"; }
task_is() { [ "$(task_field "$1" .status.phase)" = "$2" ]; }
restarts_at_least() { [ "$(task_field "$1" '.status.restartCount // 0')" -ge "$2" ]; }
# Containers of a task by uid: running ones (ps), or all with -a.
containers() { docker ps -q --no-trunc "${@:2}" --filter "label=keel.task.uid=$1"; }

# task NAME RESTART SCRIPT [IMAGE]: applies a Task bound to this node.
task() {
	cat >"$BATS_TEST_TMPDIR/$1.yaml" <<EOF
apiVersion: keel/v1
kind: Task
metadata:
  name: $1
spec:
  nodeName: $NODE
  image: ${4:-keel/busybox:latest}
  command: ["sh", "-c"]
  args: ["$3"]
  restartPolicy: $2
  terminationGracePeriodSeconds: 1
  resources:
    limits:
      memory: 48Mi
      cpu: 500m
EOF
	keel apply -f "$BATS_TEST_TMPDIR/$1.yaml"
}

@test "docker: a Task runs as a labelled container, Running with its containerID, logs and limits" {
	agent_start
	task web Always 'echo started web; exec sleep 300'
	wait_for 30 task_is web Running
	uid=$(task_field web .metadata.uid)
	cid=$(task_field web .status.containerID)
	[ -n "$cid" ] && [ "$cid" != null ]
	run containers "$uid"
	assert_success
	assert_output "$cid"
	run docker inspect -f '{{index .Config.Labels "keel.managed"}} {{index .Config.Labels "keel.node"}} {{index .Config.Labels "keel.task.namespace"}}/{{index .Config.Labels "keel.task.name"}} {{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.RestartPolicy.Name}}' "$cid"
	assert_output "true $NODE default/web 50331648 500000000 no"
	run docker ps --filter "label=keel.node=$NODE" --format '{{.Names}}'
	assert_output --partial "keel-default-web-0-"
	wait_for 10 bash -c "'$KEEL' logs web | grep -q 'started web'"
	run keel logs web
	assert_success
	assert_output "started web"
}

@test "docker: exit 3 with restartPolicy Never ends Failed with exitCode 3 and no restart" {
	agent_start
	task fails Never 'echo failing; exit 3'
	wait_for 30 task_is fails Failed
	assert_equal "$(task_field fails .status.exitCode)" 3
	assert_equal "$(task_field fails '.status.restartCount // 0')" 0
	sleep 2
	uid=$(task_field fails .metadata.uid)
	assert_equal "$(containers "$uid" -a | wc -l)" 1
	assert_equal "$(task_field fails .status.phase)" Failed
}

@test "docker: exit 0 with OnFailure ends Succeeded" {
	agent_start
	task once OnFailure 'echo done'
	wait_for 30 task_is once Succeeded
	assert_equal "$(task_field once .status.exitCode)" 0
}

# running_other NAME CID: the task runs a container other than CID.
running_other() {
	local st
	st=$(keel get task "$1" -o json | jq -c .status)
	[ "$(jq -r .phase <<<"$st")" = Running ] && [ "$(jq -r '.reason // ""' <<<"$st")" = "" ] &&
		[ "$(jq -r .containerID <<<"$st")" != "$2" ]
}
# Seconds between the end of the last attempt and the start of this one.
restart_gap() {
	keel get task "$1" -o json |
		jq '(.status.startedAt | fromdate) - (.status.lastState.finishedAt | fromdate)'
}

@test "docker: a killed container is restarted, restartCount rises, with growing gaps" {
	agent_start --backoff-base 3s --backoff-max 30s
	task crashy Always 'echo run-$(cat /proc/sys/kernel/random/uuid); exec sleep 300'
	wait_for 30 task_is crashy Running
	uid=$(task_field crashy .metadata.uid)
	first=$(task_field crashy .status.containerID)
	docker kill "$first" >/dev/null
	wait_for 30 running_other crashy "$first"
	assert_equal "$(task_field crashy .status.restartCount)" 1
	assert_equal "$(task_field crashy .status.lastState.exitCode)" 137
	gap1=$(restart_gap crashy)
	second=$(task_field crashy .status.containerID)
	docker kill "$second" >/dev/null
	wait_for 30 running_other crashy "$second"
	assert_equal "$(task_field crashy .status.restartCount)" 2
	gap2=$(restart_gap crashy)
	# keel logs: this run's line; --previous: the run before, a different line.
	wait_for 10 bash -c "'$KEEL' logs crashy | grep -q '^run-'"
	cur=$(keel logs crashy)
	prev=$(keel logs crashy --previous)
	[[ "$prev" == run-* ]] && [ "$prev" != "$cur" ]
	echo "gaps: ${gap1}s then ${gap2}s" >&2
	# Second-precision times: a 3 s backoff shows as at least 2 s, a 6 s one as at least 5.
	[ "$gap1" -ge 2 ] && [ "$gap2" -ge 5 ] && [ "$gap2" -gt "$gap1" ]
	# One running container, of attempt 2, for the task.
	run docker ps --filter "label=keel.task.uid=$uid" --format '{{.Label "keel.task.attempt"}}'
	assert_output 2
}

@test "docker: deleting the Task removes its container" {
	agent_start
	task doomed Always 'exec sleep 300'
	wait_for 30 task_is doomed Running
	uid=$(task_field doomed .metadata.uid)
	[ -n "$(containers "$uid")" ]
	keel delete task doomed
	wait_for 30 bash -c "[ -z \"\$(docker ps -aq --filter label=keel.task.uid=$uid)\" ]"
}

@test "docker: kill -9 of the agent and a restart adopt the container, no duplicate" {
	agent_start
	task steady Always 'exec sleep 300'
	wait_for 30 task_is steady Running
	uid=$(task_field steady .metadata.uid)
	cid=$(task_field steady .status.containerID)
	agent_stop KILL
	agent_start
	sleep 3
	run containers "$uid"
	assert_output "$cid"
	assert_equal "$(containers "$uid" -a | wc -l)" 1
	assert_equal "$(task_field steady .status.containerID)" "$cid"
	assert_equal "$(task_field steady '.status.restartCount // 0')" 0
}

@test "docker: a missing image is reason ImageNotFound, not an agent error" {
	agent_start
	task ghost Always 'true' keel/no-such-image:1
	wait_for 30 bash -c "[ \"\$('$KEEL' get task ghost -o json | jq -r .status.reason)\" = ImageNotFound ]"
	run task_field ghost .status.message
	assert_output --partial 'image "keel/no-such-image:1" not found'
	assert_equal "$(task_field ghost .status.phase)" Pending
	kill -0 "$AGENT_PID"
}

@test "docker: the agent keeps working across a dockerd restart" {
	[ "${KEEL_TEST_DOCKERD_RESTART:-}" = 1 ] ||
		skip "restarts dockerd, which kills every container on the host: set KEEL_TEST_DOCKERD_RESTART=1"
	[ -f /var/run/docker.pid ] || skip "dockerd's pid file is not /var/run/docker.pid"
	agent_start
	task survivor Always 'exec sleep 300'
	wait_for 30 task_is survivor Running
	restarts=$(task_field survivor '.status.restartCount // 0')
	dpid=$(cat /var/run/docker.pid)
	kill "$dpid"
	# The old engine must be gone (pid file released) before a new one starts.
	wait_for 60 bash -c "! kill -0 $dpid 2>/dev/null"
	restart_dockerd
	uid=$(task_field survivor .metadata.uid)
	# The engine stopped the container; the agent sees it ended and restarts it.
	wait_for 60 restarts_at_least survivor $((restarts + 1))
	wait_for 30 task_is survivor Running
	wait_for 30 bash -c "[ \$(docker ps -q --filter label=keel.task.uid=$uid | wc -l) -eq 1 ]"
	kill -0 "$AGENT_PID"
}
