#!/usr/bin/env bats
# Deployments end to end on real Docker containers: a `keel server` running
# every controller (scheduler, tasks, nodes, gc) with short
# --node-grace-period / --node-eviction-timeout, and three
# `keel agent --runtime docker` nodes on this host, each with its own name
# and data directory. A Deployment of keel/busybox:latest (built by
# tests/e2e/busybox-image.sh; .ci/docker-up starts the engine and builds
# it) comes up as labelled containers spread over the agents, rolls out a
# template change, survives the loss of a node, and leaves nothing behind
# when deleted. Every test skips, saying why, where no engine answers or
# the image is missing.
#
# The three agents share one host, and the docker runtime reports the
# host's usage as each node's. E-PVM's load is the larger of bound requests
# and usage, so every replica requests all of the host's CPUs (Docker's
# ceiling for a limit) and memory: at least any usage, so that a bound
# replica always makes its node dearer and the placement is the test's to
# predict. Each agent claims 8 times that (--cpus, --memory). Requests are
# the containers' limits too; nothing is reserved.

load helpers

GRACE=(--node-grace-period 2s --node-eviction-timeout 4s)
NODES=(a b c)

setup_file() {
	export HOST_CPUS HOST_MEM_MI
	HOST_CPUS=$(nproc)
	HOST_MEM_MI=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
	if ! docker info >/dev/null 2>&1; then
		export DOCKER_SKIP="no Docker engine answers (run .ci/docker-up)"
	elif ! docker image inspect keel/busybox:latest >/dev/null 2>&1; then
		export DOCKER_SKIP="no image keel/busybox:latest (run tests/e2e/busybox-image.sh)"
	fi
}

setup() {
	[ -z "${DOCKER_SKIP:-}" ] || skip "$DOCKER_SKIP"
	# Node names are unique to this run and test: teardown removes the
	# containers of these nodes, and only those.
	PREFIX=dd-${BATS_ROOT_PID:-$$}-$BATS_TEST_NUMBER
	declare -gA AGENT_PIDS=()
	WATCH_PID=""
	keel_server_start "${GRACE[@]}"
	local n
	for n in "${NODES[@]}"; do
		agent_start "$n"
	done
	wait_for 30 nodes_ready 3
}

teardown() {
	[ -z "${DOCKER_SKIP:-}" ] || return 0
	if [ -n "$WATCH_PID" ]; then
		kill "$WATCH_PID" 2>/dev/null || true
		wait "$WATCH_PID" 2>/dev/null || true
	fi
	local n ids logs=("$SERVER_LOG") sanitizer=""
	for n in "${NODES[@]}"; do
		agent_stop "$n" TERM
		logs+=("$(agent_log "$n")")
	done
	keel_server_stop
	for n in "${NODES[@]}"; do
		ids=$(docker ps -aq --filter "label=keel.node=$(node "$n")")
		[ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
	done
	# Sanitizer builds: any report in an agent's or the server's log fails the test.
	grep -E "AddressSanitizer|LeakSanitizer|runtime error:" "${logs[@]}" >&2 && sanitizer=1
	if [ -n "${BATS_TEST_COMPLETED:-}" ] && [ -z "$sanitizer" ]; then return 0; fi
	for f in "${logs[@]}"; do
		echo "--- $f" >&2
		tail -n 25 "$f" >&2 || true
	done
	[ -z "$sanitizer" ]
}

node() { echo "$PREFIX-$1"; }
agent_log() { echo "$BATS_TEST_TMPDIR/agent-$1.log"; }

# agent_start N: starts node N's agent (again: same name and data directory).
agent_start() {
	"$KEEL" agent --server "$KEEL_URL" --token "$KEEL_TOKEN_VALUE" --name "$(node "$1")" \
		--runtime docker --data-dir "$BATS_TEST_TMPDIR/agent-$1" --heartbeat-interval 500ms \
		--backoff-base 1s --backoff-max 4s --cpus $((HOST_CPUS * 8)) --memory $((HOST_MEM_MI * 8))Mi \
		>>"$(agent_log "$1")" 2>&1 &
	AGENT_PIDS[$1]=$!
}

# agent_stop N [SIGNAL]: signals node N's agent (TERM by default) and waits.
agent_stop() {
	local pid=${AGENT_PIDS[$1]:-}
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -"${2:-TERM}" "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	AGENT_PIDS[$1]=""
}

# wait_for SECONDS CMD...: retries CMD every 0.2 s until it succeeds.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		if [ $SECONDS -ge $deadline ]; then
			echo "timed out waiting for: $*" >&2
			keel get nodes >&2 || true
			keel get tasks -o wide >&2 || true
			keel get deploy -o json 2>/dev/null | jq -c '.items[] | .status' >&2 || true
			docker ps -a --filter label=keel.managed=true --format \
				'{{.Label "keel.node"}} {{.Label "keel.task.name"}} {{.Label "keel.task.uid"}} {{.Status}}' >&2 || true
			return 1
		fi
		sleep 0.2
	done
}

ready_of() {
	keel get node "$1" -o json 2>/dev/null |
		jq -r '.status.conditions[]? | select(.type == "Ready") | .status'
}
node_ready_is() { [ "$(ready_of "$(node "$1")")" = "$2" ]; }
nodes_ready() {
	local n k=0
	for n in "${NODES[@]}"; do
		[ "$(ready_of "$(node "$n")")" = True ] && k=$((k + 1))
	done
	[ "$k" -ge "$1" ]
}

# deployment NAME VERSION: a Deployment of 4 busybox sleepers, VERSION in
# their environment. Default strategy: maxSurge 25% -> 1, maxUnavailable
# 25% -> 1. sleep as the container's pid 1 ignores SIGTERM: a stop waits
# out the 1 s grace period, then kills.
deployment() {
	cat >"$BATS_TEST_TMPDIR/$1.yaml" <<YAML
apiVersion: keel/v1
kind: Deployment
metadata: {name: $1}
spec:
  replicas: 4
  template:
    metadata: {labels: {app: $1}}
    spec:
      image: keel/busybox:latest
      command: [sh, -c, 'exec sleep 600']
      env: [{name: VERSION, value: "$2"}]
      terminationGracePeriodSeconds: 1
      resources:
        requests: {cpu: "$HOST_CPUS", memory: ${HOST_MEM_MI}Mi}
YAML
	keel apply -f "$BATS_TEST_TMPDIR/$1.yaml"
}

tasks_json() { keel get tasks -l "app=$1" -o json; }

# Ready Tasks as sorted "UID NODE" lines.
ready_tasks() {
	tasks_json "$1" | jq -r '.items[] | select(.status.phase == "Running" and .status.ready == true) |
		"\(.metadata.uid) \(.spec.nodeName)"' | sort
}

# Running containers of the given nodes (letters; default all) as sorted
# "UID NODE" lines.
running_containers() {
	local n
	for n in "${@:-${NODES[@]}}"; do
		docker ps --filter label=keel.managed=true --filter "label=keel.node=$(node "$n")" \
			--format '{{.Label "keel.task.uid"}} {{.Label "keel.node"}}'
	done | sort
}

# all_up NAME N [NODE...]: the Deployment has exactly N Tasks, all Running
# and ready, its status says so, and the running containers on NODEs (all
# by default) are exactly one per Task, on the Task's node.
all_up() {
	local name=$1 n=$2
	shift 2
	[ "$(tasks_json "$name" | jq '.items | length')" = "$n" ] || return 1
	local tasks
	tasks=$(ready_tasks "$name")
	[ "$(grep -c . <<<"$tasks")" = "$n" ] || return 1
	[ "$(running_containers "$@")" = "$tasks" ] || return 1
	keel get deploy "$name" -o json | jq -e "
		.status.observedGeneration == .metadata.generation and .status.replicas == $n and
		.status.readyReplicas == $n and .status.updatedReplicas == $n" >/dev/null
}

# The template hashes of the Deployment's Tasks, sorted, unique.
hashes() { tasks_json "$1" | jq -r '[.items[].metadata.labels["keel/template-hash"]] | unique | .[]'; }

@test "deployments docker: 4 replicas run as containers over 3 agents; an env change rolls out within maxUnavailable" {
	deployment web 1
	run keel rollout status deployment web --timeout 60s
	assert_success
	wait_for 60 all_up web 4
	# spread: every agent runs at least one replica (E-PVM, equal nodes)
	[ "$(running_containers | awk '{print $2}' | sort -u | wc -l)" = 3 ]
	old_hash=$(hashes web)
	[ "$(wc -l <<<"$old_hash")" = 1 ]
	old_uids=$(ready_tasks web | awk '{print $1}')
	for n in "${NODES[@]}"; do
		for cid in $(docker ps -q --filter "label=keel.node=$(node "$n")"); do
			docker inspect -f '{{join .Config.Env " "}}' "$cid" | grep -qw VERSION=1
		done
	done

	samples=$BATS_TEST_TMPDIR/samples
	(for _ in $(seq 1 600); do
		keel get deploy web -o json |
			jq -c '"deploy \([.status.readyReplicas, .status.replicas, .status.updatedReplicas])"'
		tasks_json web | jq -c '"tasks \([([.items[] | select(.status.ready == true)] | length), (.items | length)])"'
		echo "\"containers $(running_containers | wc -l)\""
		sleep 0.1
	done) >"$samples" 2>&1 &
	sampler=$!
	deployment web 2
	run keel rollout status deployment web --timeout 60s
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	assert_success
	assert_output --partial 'deployment "web" successfully rolled out'
	sort "$samples" | uniq -c >&2
	# never below replicas - maxUnavailable = 3 ready, never above replicas + maxSurge = 5
	field() { grep "^\"$1 " "$samples" | tr -d '"' | sed "s/^$1 //"; }
	[ -z "$(field deploy | jq -c 'select(.[0] < 3 or .[1] > 5)')" ]
	[ -z "$(field tasks | jq -c 'select(.[0] < 3 or .[1] > 5)')" ]
	[ -z "$(field containers | awk '$1 < 3')" ]
	# it went through intermediate states (some but not all updated)
	[ -n "$(field deploy | jq -c 'select(.[2] > 0 and .[2] < 4)')" ]

	wait_for 60 all_up web 4
	new_hash=$(hashes web)
	[ "$(wc -l <<<"$new_hash")" = 1 ] && [ "$new_hash" != "$old_hash" ]
	# every running container is a new Task's, with the new environment
	for n in "${NODES[@]}"; do
		for cid in $(docker ps -q --filter "label=keel.node=$(node "$n")"); do
			uid=$(docker inspect -f '{{index .Config.Labels "keel.task.uid"}}' "$cid")
			keel get tasks -o json | jq -e --arg u "$uid" --arg h "$new_hash" \
				'[.items[] | select(.metadata.uid == $u and .metadata.labels["keel/template-hash"] == $h)] | length == 1' >/dev/null
			docker inspect -f '{{join .Config.Env " "}}' "$cid" | grep -qw VERSION=2
		done
	done
	# the old Tasks' containers are gone, not only stopped
	for uid in $old_uids; do
		wait_for 30 bash -c "[ -z \"\$(docker ps -aq --filter label=keel.task.uid=$uid)\" ]"
	done
}

@test "deployments docker: kill -9 of an agent: its Tasks are Failed NodeLost, replaced on the others; back, it stops their containers" {
	deployment web 1
	wait_for 60 all_up web 4
	# the victim: a node with the most replicas
	victim_node=$(ready_tasks web | awk '{print $2}' | sort | uniq -c | sort -rn | head -1 | awk '{print $2}')
	victim=${victim_node##*-}
	survivors=()
	for n in "${NODES[@]}"; do [ "$n" = "$victim" ] || survivors+=("$n"); done
	lost=$(ready_tasks web | awk -v n="$victim_node" '$2 == n {print $1}')
	[ -n "$lost" ]
	# record every change of the Tasks from here on
	rv=$(tasks_json web | jq -r .metadata.resourceVersion)
	curl -sN -H "Authorization: Bearer $KEEL_TOKEN_VALUE" \
		"$KEEL_URL/apis/keel/v1/namespaces/default/tasks?watch=1&resourceVersion=$rv" \
		>"$BATS_TEST_TMPDIR/watch" 2>/dev/null &
	WATCH_PID=$!

	agent_stop "$victim" KILL
	# Docker does not stop the containers of a dead agent
	for uid in $lost; do
		[ -n "$(docker ps -q --filter "label=keel.task.uid=$uid")" ]
	done
	wait_for 30 node_ready_is "$victim" Unknown
	lost_as_nodelost() {
		local uid
		for uid in $lost; do
			# -R/fromjson?: the last line may still be half written
			jq -R --arg u "$uid" 'fromjson? | select(.object.metadata.uid == $u and
				.object.status.phase == "Failed" and .object.status.reason == "NodeLost") | .type' \
				"$BATS_TEST_TMPDIR/watch" | grep -q . || return 1
		done
	}
	wait_for 60 lost_as_nodelost
	# replaced on the surviving agents: 4 ready Tasks with a container each there
	wait_for 60 all_up web 4 "${survivors[@]}"
	[ -z "$(ready_tasks web | awk -v n="$victim_node" '$2 == n')" ]
	keel get deploy web -o json | jq -e '.status.readyReplicas == 4 and .status.availableReplicas == 4'
	# ... while the lost containers still run on the silent node
	for uid in $lost; do
		[ -n "$(docker ps -q --filter "label=keel.task.uid=$uid")" ]
	done
	run keel get events
	assert_output --partial "Failed (NodeLost): replacing it"

	# the agent comes back with the same name and data directory: it stops
	# (and removes) the containers of the Tasks no longer bound to it. The
	# tasks controller has deleted those Tasks by now, yet each container
	# gets its Task's 1 s grace period (recorded on the container), not
	# the agent's 30 s default: sleep as pid 1 ignores SIGTERM, so that
	# default would keep two of them running for a minute.
	agent_start "$victim"
	wait_for 30 node_ready_is "$victim" True
	no_lost_running() {
		local uid
		for uid in $lost; do
			[ -z "$(docker ps -q --filter "label=keel.task.uid=$uid")" ] || return 1
		done
	}
	wait_for 20 no_lost_running
	# the replacements were left alone, and nothing else runs on the node that came back
	all_up web 4
	[ -z "$(running_containers "$victim")" ]
	for uid in $lost; do
		wait_for 20 bash -c "[ -z \"\$(docker ps -aq --filter label=keel.task.uid=$uid)\" ]"
	done
}

@test "deployments docker: deleting the Deployment leaves no Tasks and no containers" {
	deployment web 1
	wait_for 60 all_up web 4
	[ "$(running_containers | wc -l)" = 4 ]
	run keel delete deployment web
	assert_success
	wait_for 60 bash -c "[ \"\$('$KEEL' get tasks -o json | jq '.items | length')\" = 0 ]"
	no_containers() {
		local n
		for n in "${NODES[@]}"; do
			[ -z "$(docker ps -aq --filter "label=keel.node=$(node "$n")")" ] || return 1
		done
	}
	wait_for 60 no_containers
	run keel get deploy web
	assert_failure
}
